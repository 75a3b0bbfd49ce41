"""The item registry: one entry per item ``type``, built from the spec at start.

For every type of the spec's ``InputItem`` union it knows how to validate what a client
sends (compiled from the input schema), which id prefix to generate and check, and how
to turn the input into the stored item that ``ConversationItem`` describes (fill
``status``, drop ``null``s the output does not allow, expand easy messages).

Where the spec and real clients disagree, the contract decides, and each deviation is
named here:

* messages merge the three input shapes (easy, input, output message) into one entry
  whose content parts depend on the role; assistant ``output_text`` parts may leave out
  ``annotations`` and ``logprobs`` (D18);
* ``reasoning`` may leave out ``id`` when it carries ``encrypted_content``; with neither it
  is an ``invalid_item`` (CONTRACT.md §4.1);
* ``item_reference`` is resolved by the service against stored items (D7), so the
  registry only validates its shape;
* ``compaction_trigger`` is an instruction to the Responses API with no member in
  ``ConversationItem``: it is validated, then refused with ``invalid_value``, because
  nothing valid could be returned for it.

The items clients send most (issue 21), a message of ``type``, ``role`` and ``content``
whose content is a string or a list of ``{"type", "text"}`` text parts, take a shortcut
(:meth:`Registry.quick`): one pass that checks them and builds the item to store. What
the general path adds to such a message (``status``, a text part's ``annotations`` and
``logprobs``) is learned at start by running the general path on sample messages, and
the shortcut is only used if it then makes exactly what the general path makes. Anything
else, valid or not, goes the general way, so errors are only ever the general path's.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from convostore import errors, ids
from convostore.items.compiler import Compiler, Invalid, Validator
from convostore.items.conform import Conformer, Filler

ROLES_IN_ERRORS = ("assistant", "system", "developer", "user")
REFERENCE = "item_reference"
# The spec's maxLength of an `input_text` part's text, which service/limits.py enforces:
# a longer text goes the general way (service/limits.py INPUT_TEXT_MAX).
_TEXT_MAX = 10_485_760
# quick(raw, max_parts): the item to store, or None to go the general way.
Quick = Callable[[Any, int], dict[str, Any] | None]


def load_schemas() -> dict[str, Any]:
    text = resources.files("convostore.items").joinpath("schemas.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True, slots=True)
class ItemType:
    name: str
    validate: Validator
    id_prefix: str
    client_prefix: str | None
    normalize: Callable[[dict[str, Any]], None]
    storable: bool = True  # False: an instruction to the Responses API (compaction_trigger)


@dataclass(frozen=True, slots=True)
class Reference:
    """An ``item_reference``: stored as a copy of the item it names (D7)."""

    id: str


class Registry:
    """Validates raw input items and turns them into stored-item dicts."""

    def __init__(self, schemas: Mapping[str, Any] | None = None, *, keep_unknown: bool = True):
        self.schemas: Mapping[str, Any] = schemas if schemas is not None else load_schemas()
        # D9: unknown keys inside an item are kept verbatim, or refused (the setting
        # ``unknown_item_fields``); the item's `type` and its parts' are checked either way.
        self.compiler = Compiler(self.schemas, keep_unknown=keep_unknown)
        self.output_schemas = self._output_schemas()
        self.conformer = Conformer(self.compiler)
        self.types: dict[str, ItemType] = {}
        self._build()
        self.type_names = sorted(self.types)
        self.include_values: tuple[str, ...] = tuple(self.schemas["IncludeEnum"]["enum"])
        self.quick: Quick = self._quick_messages()

    # -- construction ----------------------------------------------------------------------

    def _members(self, union: str) -> list[Mapping[str, Any]]:
        root = self.schemas[union]
        return [self.compiler.deref(m) for m in root.get("oneOf", root.get("anyOf", ()))]

    def _output_schemas(self) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        for member in self._members("ConversationItem"):
            for tag in self.compiler.discriminator_values(member):
                out.setdefault(tag, member)
        return out

    def _input_schemas(self) -> dict[str, Mapping[str, Any]]:
        found: dict[str, Mapping[str, Any]] = {}
        for member in self._members("InputItem"):
            nested = member.get("oneOf")
            for schema in [self.compiler.deref(m) for m in nested] if nested else [member]:
                for tag in self.compiler.discriminator_values(schema):
                    found.setdefault(tag, schema)
        return found

    def _build(self) -> None:
        for name, schema in self._input_schemas().items():
            if name == "message":
                self.types[name] = self._message_type()
                continue
            schema = dict(schema)
            if name == "reasoning":
                schema["required"] = [k for k in schema.get("required", ()) if k != "id"]
            self.types[name] = ItemType(
                name=name,
                validate=self.compiler.compile(schema),
                id_prefix=ids.ITEM_PREFIXES.get(name, name.split("_")[0][:4]),
                client_prefix=ids.REQUIRED_CLIENT_PREFIXES.get(name),
                normalize=self._normalizer(name),
                storable=name in self.output_schemas or name == REFERENCE,
            )

    def _message_type(self) -> ItemType:
        s = self.schemas
        common = {
            "type": {"type": "string", "enum": ["message"]},
            "id": {"type": "string"},
            "status": s["InputMessage"]["properties"]["status"],
            "phase": s["EasyInputMessage"]["properties"]["phase"],
        }
        output_text = copy.deepcopy(dict(s["OutputTextContent"]))
        output_text["required"] = ["type", "text"]  # D18: annotations/logprobs are filled
        assistant_part = {
            "oneOf": [output_text, {"$ref": "#/components/schemas/RefusalContent"}],
            "discriminator": {"propertyName": "type"},
        }

        def variant(roles: list[str], part: Mapping[str, Any]) -> Validator:
            return self.compiler.compile(
                {
                    "type": "object",
                    "properties": {
                        **common,
                        "role": {"type": "string", "enum": roles},
                        "content": {
                            "anyOf": [{"type": "string"}, {"type": "array", "items": part}]
                        },
                    },
                    "required": ["role", "content"],
                }
            )

        by_role = {
            "assistant": variant(["assistant"], assistant_part),
            **dict.fromkeys(
                ("user", "system", "developer"),
                variant(
                    ["user", "system", "developer"], {"$ref": "#/components/schemas/InputContent"}
                ),
            ),
        }

        def validate(value: Any) -> None:
            role = value.get("role")
            check = by_role.get(role) if isinstance(role, str) else None
            if check is None:
                if "role" not in value:
                    failure = Invalid(errors.missing_parameter)
                else:
                    failure = Invalid(lambda p: errors.invalid_value(p, role, ROLES_IN_ERRORS))
                failure.path.append("role")
                raise failure
            check(value)

        return ItemType(
            name="message",
            validate=validate,
            id_prefix=ids.ITEM_PREFIXES["message"],
            client_prefix=ids.REQUIRED_CLIENT_PREFIXES["message"],
            normalize=self._normalizer("message"),
        )

    def _normalizer(self, name: str) -> Callable[[dict[str, Any]], None]:
        output = self.output_schemas.get(name)
        if output is None:
            return _not_storable(name)
        fill = self.conformer.filler(output)
        if name == "message":
            return _message_normalizer(fill)
        if fill is None:
            return _unchanged
        return fill

    def _quick_messages(self) -> Quick:
        """The shortcut for plain messages, or one that always declines when the general
        path does not make what it would (a spec whose messages need more)."""

        def declines(raw: Any, max_parts: int) -> None:
            return None

        probe = {"type": "message", "role": "assistant", "content": "x"}
        try:
            made = self._prepare(probe, "item")
        except errors.ApiError:
            return declines
        if not isinstance(made, dict):
            return declines
        part = made["content"][0]
        # What the general path adds: to the message (status), to an output_text part.
        item_adds = tuple((k, v) for k, v in made.items() if k not in probe)
        part_adds = tuple(k for k in part if k not in ("type", "text"))
        roles = {"assistant": "output_text", **dict.fromkeys(ROLES_IN_ERRORS[1:], "input_text")}

        def quick(raw: Any, max_parts: int) -> dict[str, Any] | None:
            if type(raw) is not dict or len(raw) != 3 or raw.get("type") != "message":
                return None
            role = raw.get("role")
            part_type = roles.get(role) if type(role) is str else None
            content = raw.get("content")
            if part_type is None or content is None:
                return None  # (a third key that is neither role nor content)
            adds = part_adds if part_type == "output_text" else ()
            if type(content) is str:
                item = dict(raw)
                made_part: dict[str, Any] = {"type": part_type, "text": content}
                for key in adds:
                    made_part[key] = []
                item["content"] = [made_part]
            elif type(content) is list and len(content) <= max_parts:
                for sent in content:
                    if type(sent) is not dict or len(sent) != 2 or sent.get("type") != part_type:
                        return None
                    text = sent.get("text")
                    if type(text) is not str or len(text) > _TEXT_MAX:
                        return None
                if adds:  # as the general path does: the parts are filled in place
                    for sent in content:
                        for key in adds:
                            sent[key] = []
                item = dict(raw)
            else:
                return None
            for key, value in item_adds:
                item[key] = value
            return item

        if any(type(v) is not str for _, v in item_adds) or any(part[k] != [] for k in part_adds):
            return declines  # (a filled value the items would share)
        for role, part_type in roles.items():
            for content in ("x", [], [{"type": part_type, "text": t} for t in ("x", "y")]):
                sample = {"type": "message", "role": role, "content": content}
                try:
                    expected = self._prepare(copy.deepcopy(sample), "item")
                except errors.ApiError:
                    return declines
                got = quick(sample, sys.maxsize)
                if got is None or json.dumps(got) != json.dumps(expected):
                    return declines
        return quick

    # -- use ---------------------------------------------------------------------------------

    def prepare(self, raw: Any, path: str) -> dict[str, Any] | Reference:
        """Validate one input item; return the item to store (without a generated id)."""
        item = self.quick(raw, sys.maxsize)
        return self._prepare(raw, path) if item is None else item

    def _prepare(self, raw: Any, path: str) -> dict[str, Any] | Reference:
        """:meth:`prepare` the general way, for every item type."""
        if type(raw) is not dict:
            raise errors.invalid_type(path, ["object"], raw)
        tag = raw.get("type")
        if tag is None:
            if "role" in raw:
                tag = "message"
            elif "type" in raw and "id" in raw:
                tag = REFERENCE  # the SDK's ItemReference with `type: null` (D23)
            else:
                raise errors.invalid_value(path, "", ROLES_IN_ERRORS)
        kind = self.types.get(tag) if isinstance(tag, str) else None
        if kind is None:
            raise errors.invalid_value(path, tag, self.type_names)
        try:
            kind.validate(raw)
        except Invalid as failure:
            raise failure.at(path) from None
        item_id = raw.get("id")
        if item_id is not None and "\x00" in item_id:
            raise errors.InvalidRequest(
                f"Invalid '{path}.id': item ids cannot contain NUL characters.",
                param=f"{path}.id",
                code="invalid_value",
            )
        if tag == REFERENCE:
            return Reference(raw["id"])
        if item_id is not None:
            if kind.client_prefix is not None and not item_id.startswith(kind.client_prefix):
                raise errors.InvalidRequest(
                    f"Invalid '{path}.id': '{item_id}'. "
                    f"Expected an ID that begins with '{kind.client_prefix}'.",
                    param=f"{path}.id",
                    code="invalid_value",
                )
        elif tag == "reasoning" and raw.get("encrypted_content") is None:
            raise errors.InvalidRequest("Invalid item", param="item", code="invalid_item")
        item = dict(raw)
        item["type"] = tag
        try:
            kind.normalize(item)
        except errors.ApiError as refused:
            refused.param = f"{path}.{refused.param}"
            raise
        return item

    def id_prefix(self, tag: str) -> str:
        return self.types[tag].id_prefix


def _not_storable(name: str) -> Callable[[dict[str, Any]], None]:
    def refuse(item: dict[str, Any]) -> None:
        raise errors.InvalidRequest(
            f"Invalid value: '{name}'. Items of this type are instructions to the Responses API "
            "and cannot be stored in a conversation.",
            param="type",
            code="invalid_value",
        )

    return refuse


def _unchanged(item: dict[str, Any]) -> None:
    return None


def _message_normalizer(fill: Filler | None) -> Callable[[dict[str, Any]], None]:
    """Easy messages become full messages (D5); the spec fills the rest (D18)."""

    def normalize(item: dict[str, Any]) -> None:
        content = item["content"]
        if isinstance(content, str):
            part_type = "output_text" if item["role"] == "assistant" else "input_text"
            item["content"] = [{"type": part_type, "text": content}]
        if fill is not None:
            fill(item)

    return normalize
