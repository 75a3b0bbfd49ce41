"""Bounds on what one request may make the server hold or store (issue 15: L1, L2, I7).

Each is a setting (docs/settings.md) with a safe default; going over one is a 400 with
OpenAI's envelope, before anything is looked up or stored:

* ``max_id_length``: a client's item id (``items[].id``, an ``item_reference``'s id)
  and the ``x-ms-user-isolation-key`` header. OpenAI's ids are a few dozen characters;
  PostgreSQL's btree cannot index a key over ~2.7 kB (that was a 500).
* ``max_json_depth``: nesting of a request body's JSON anywhere, free-form fields
  included (a tool's ``input_schema``, ``text.format.schema``): orjson encodes at most
  254 levels (that was a 500).
* ``max_item_parts``: the length of every array directly under an item (a message's
  ``content``, a reasoning item's ``summary``, a ``function_call_output``'s ``output``).
* ``max_item_bytes``: an item as stored (its JSON), however it arrives.
* The spec's ``maxLength`` of an ``input_text`` part's ``text`` (10 MiB), in messages too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convostore import errors

INPUT_TEXT_MAX = 10_485_760  # the spec's maxLength of InputTextContent.text


@dataclass(frozen=True, slots=True)
class Limits:
    max_id_length: int = 256
    max_json_depth: int = 64
    max_item_parts: int = 1000
    max_item_bytes: int = 32 * 1024 * 1024

    def check_depth(self, value: Any) -> None:
        """Refuse JSON nested deeper than ``max_json_depth`` (one pass, no recursion: a
        level of containers at a time)."""
        limit = self.max_json_depth
        if type(value) is not dict and type(value) is not list:
            return  # a scalar nests nothing (the body's schema says whether it may be one)
        level: list[Any] = [value]
        depth = 1
        while level:
            if depth > limit:
                raise errors.InvalidRequest(
                    f"Invalid body: JSON nested deeper than {limit} levels.",
                    code="invalid_value",
                )
            below: list[Any] = []
            add = below.append
            for node in level:
                for child in node.values() if type(node) is dict else node:
                    if type(child) is dict or type(child) is list:
                        add(child)
            if len(below) > 1_000_000:  # unreachable below the body cap; a guard
                raise errors.InvalidRequest("Invalid body: too many JSON values.")
            level = below
            depth += 1

    def check_body_depth(self, raw: bytes | bytearray, value: Any) -> None:
        """:meth:`check_depth` of a body decoded from ``raw``, without the walk when ``raw``
        has too few ``{`` and ``[`` bytes to nest that deep (JSON nests no deeper than it
        has containers, and each opens with one of those bytes)."""
        if (type(value) is dict or type(value) is list) and (
            raw.count(b"{") + raw.count(b"[") <= self.max_json_depth
        ):
            return
        self.check_depth(value)

    def check_id(self, value: str, param: str) -> None:
        if len(value) > self.max_id_length:
            raise errors.string_length(param, len(value), minimum=None, maximum=self.max_id_length)

    def check_item(self, raw: Any, path: str) -> None:
        """The bounds of one input item, before the item's own validation."""
        if type(raw) is not dict:
            return  # the validator says what is wrong with it
        item_id = raw.get("id")
        if type(item_id) is str:
            self.check_id(item_id, f"{path}.id")
        for key, value in raw.items():
            if type(value) is list and len(value) > self.max_item_parts:
                raise errors.array_length(
                    f"{path}.{key}", len(value), minimum=None, maximum=self.max_item_parts
                )
        content = raw.get("content")
        if type(content) is list:
            for index, part in enumerate(content):
                if type(part) is dict and part.get("type") == "input_text":
                    text = part.get("text")
                    if type(text) is str and len(text) > INPUT_TEXT_MAX:
                        raise errors.string_length(
                            f"{path}.content[{index}].text",
                            len(text),
                            minimum=None,
                            maximum=INPUT_TEXT_MAX,
                        )

    def check_stored(self, size: int, path: str) -> None:
        if size > self.max_item_bytes:
            raise errors.InvalidRequest(
                f"Invalid '{path}': the item is {size} bytes as stored; at most"
                f" {self.max_item_bytes} bytes are allowed.",
                param=path,
                code="invalid_value",
            )
