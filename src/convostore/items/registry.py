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
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from convostore import errors, ids
from convostore.items.compiler import Compiler, Invalid, Validator
from convostore.items.conform import Conformer, Filler

ROLES_IN_ERRORS = ("assistant", "system", "developer", "user")
REFERENCE = "item_reference"


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

    # -- use ---------------------------------------------------------------------------------

    def prepare(self, raw: Any, path: str) -> dict[str, Any] | Reference:
        """Validate one input item; return the item to store (without a generated id)."""
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
