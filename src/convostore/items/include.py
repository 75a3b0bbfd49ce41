"""The ``include`` query parameter (CONTRACT.md D10, §5).

Each include value unlocks one field of some item types. Stored items keep every field;
what a read leaves out depends on the request. To avoid decoding and re-encoding stored
JSON on every read, each item is stored with a bit mask of the include values whose
field it actually carries (``gated_mask``). A read whose include set covers that mask
(always the case for plain text messages) sends the stored bytes as they are; only
items that carry a gated field the request did not ask for are decoded and trimmed.

When not asked for, a field is left out, except where the schema requires it:
``output_text.logprobs`` becomes ``[]`` and ``code_interpreter_call.outputs`` ``null``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from convostore import errors

Item = dict[str, Any]

FILE_SEARCH_RESULTS = "file_search_call.results"
WEB_SEARCH_RESULTS = "web_search_call.results"
WEB_SEARCH_SOURCES = "web_search_call.action.sources"
INPUT_IMAGE_URL = "message.input_image.image_url"
COMPUTER_OUTPUT_IMAGE_URL = "computer_call_output.output.image_url"
CODE_INTERPRETER_OUTPUTS = "code_interpreter_call.outputs"
REASONING_ENCRYPTED = "reasoning.encrypted_content"
OUTPUT_TEXT_LOGPROBS = "message.output_text.logprobs"

VALUES: tuple[str, ...] = (
    FILE_SEARCH_RESULTS,
    WEB_SEARCH_RESULTS,
    WEB_SEARCH_SOURCES,
    INPUT_IMAGE_URL,
    COMPUTER_OUTPUT_IMAGE_URL,
    CODE_INTERPRETER_OUTPUTS,
    REASONING_ENCRYPTED,
    OUTPUT_TEXT_LOGPROBS,
)
BIT = {value: 1 << index for index, value in enumerate(VALUES)}
ALL = (1 << len(VALUES)) - 1


def parse(values: Iterable[str]) -> int:
    """The include mask of a request; an unknown value is a 400 (D10)."""
    mask = 0
    for value in values:
        bit = BIT.get(value)
        if bit is None:
            raise errors.invalid_value("include", value, VALUES)
        mask |= bit
    return mask


def _parts(item: Item, part_type: str) -> list[dict[str, Any]]:
    content = item.get("content")
    if not isinstance(content, list):
        return []
    return [p for p in content if isinstance(p, dict) and p.get("type") == part_type]


_IMAGE_URL_BIT = 1 << VALUES.index(INPUT_IMAGE_URL)
_LOGPROBS_BIT = 1 << VALUES.index(OUTPUT_TEXT_LOGPROBS)


def _message_mask(item: Item) -> int:
    """One pass over the parts (a text-only message is the common case)."""
    content = item.get("content")
    if not isinstance(content, list):
        return 0
    mask = 0
    for part in content:
        if isinstance(part, dict):
            kind = part.get("type")
            if kind == "input_image":
                if part.get("image_url") is not None:
                    mask |= _IMAGE_URL_BIT
            elif kind == "output_text" and part.get("logprobs"):
                mask |= _LOGPROBS_BIT
    return mask


def _action_sources(item: Item) -> int:
    action = item.get("action")
    return BIT[WEB_SEARCH_SOURCES] if isinstance(action, dict) and "sources" in action else 0


def _output_image(item: Item) -> int:
    output = item.get("output")
    return (
        BIT[COMPUTER_OUTPUT_IMAGE_URL] if isinstance(output, dict) and "image_url" in output else 0
    )


_MASKERS: dict[str, Callable[[Item], int]] = {
    "message": _message_mask,
    "file_search_call": lambda i: BIT[FILE_SEARCH_RESULTS] if i.get("results") is not None else 0,
    "web_search_call": _action_sources,
    "computer_call_output": _output_image,
    "code_interpreter_call": lambda i: (
        BIT[CODE_INTERPRETER_OUTPUTS] if i.get("outputs") is not None else 0
    ),
    "reasoning": lambda i: (
        BIT[REASONING_ENCRYPTED] if i.get("encrypted_content") is not None else 0
    ),
}


def gated_mask(item: Item) -> int:
    """The include values whose field this stored item carries."""
    masker = _MASKERS.get(item["type"])
    return masker(item) if masker is not None else 0


def _trim(item: Item, hide: int) -> None:
    if hide & BIT[FILE_SEARCH_RESULTS]:
        item.pop("results", None)
    if hide & BIT[WEB_SEARCH_SOURCES]:
        item["action"].pop("sources", None)
    if hide & BIT[COMPUTER_OUTPUT_IMAGE_URL]:
        item["output"].pop("image_url", None)
    if hide & BIT[CODE_INTERPRETER_OUTPUTS]:
        item["outputs"] = None
    if hide & BIT[REASONING_ENCRYPTED]:
        item.pop("encrypted_content", None)
    if hide & BIT[INPUT_IMAGE_URL]:
        for part in _parts(item, "input_image"):
            part.pop("image_url", None)
    if hide & BIT[OUTPUT_TEXT_LOGPROBS]:
        for part in _parts(item, "output_text"):
            part["logprobs"] = []


def render(body: bytes, mask: int, include: int) -> bytes:
    """The stored item as a request with ``include`` sees it."""
    hide = mask & ~include
    if not hide:
        return body
    item = orjson.loads(body)
    _trim(item, hide)
    return orjson.dumps(item)
