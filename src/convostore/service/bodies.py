"""The request bodies around the items, as schemas (CONTRACT.md D1, D9, D16, D19, D22, §6).

One declaration serves twice: :data:`SCHEMAS` is compiled once by the same compiler as
the items (``items/compiler.py``) to validate the four bodies (``POST /v1/responses``
declares its own the same way, ``service/responses/body.py``), and it is what
``GET /openapi.json`` publishes (``api/openapi.py``), so the document and the checks
cannot disagree. The bodies are compiled in the compiler's body mode, which reports
problems in the order OpenAI does for a body: a missing key, then an unknown one, then
the values of the keys present in the order declared here; a nullable field's type error
names its type without ``null``. The members of ``items`` are validated one by one by the
item registry afterwards (their paths are ``items[i]…``), so here ``InputItem`` is any
value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from convostore import errors
from convostore.items.compiler import Compiler, Invalid, Validator

METADATA_MAX_PAIRS = 16
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 512
ITEMS_PER_REQUEST = 20
SAFETY_IDENTIFIER_MAX = 64  # D22

EMPTY_METADATA = b"{}"
REF = "#/components/schemas/"

_ITEMS = {"type": "array", "maxItems": ITEMS_PER_REQUEST, "items": {"$ref": REF + "InputItem"}}
_NULLABLE_METADATA = {"anyOf": [{"$ref": REF + "Metadata"}, {"type": "null"}]}
# D22: one limit wherever a safety_identifier is taken (conversations, responses).
SAFETY_IDENTIFIER = {
    "anyOf": [{"type": "string", "maxLength": SAFETY_IDENTIFIER_MAX}, {"type": "null"}]
}

SCHEMAS: dict[str, Any] = {
    "Metadata": {
        "type": "object",
        "maxProperties": METADATA_MAX_PAIRS,
        "propertyNames": {"maxLength": METADATA_KEY_MAX},
        "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_MAX},
    },
    "CreateConversationBody": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "items": {"anyOf": [_ITEMS, {"type": "null"}]},
            "metadata": _NULLABLE_METADATA,
            "safety_identifier": SAFETY_IDENTIFIER,
        },
    },
    "UpdateConversationBody": {
        "type": "object",
        "additionalProperties": False,
        "required": ["metadata"],
        "properties": {"metadata": _NULLABLE_METADATA},
    },
    "CreateConversationItemsBody": {
        "type": "object",
        "additionalProperties": False,
        "required": ["items"],
        "properties": {"items": _ITEMS},
    },
    # The fork extension (issue 18, docs/fork.md): absent metadata copies the source's.
    "ForkConversationBody": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "until": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "metadata": _NULLABLE_METADATA,
        },
    },
}


@dataclass(frozen=True, slots=True)
class Body:
    """One request body's compiled check."""

    name: str
    validate: Validator

    def check(self, body: Any) -> dict[str, Any]:
        """``body`` if valid (unchanged), else the first problem as a 400."""
        if type(body) is not dict:
            kind = errors.described_type(errors.json_type_of(body))
            raise errors.InvalidRequest(
                f"Invalid body: expected a JSON object, but got {kind} instead.",
                code="invalid_type",
            )
        try:
            self.validate(body)
        except Invalid as failure:
            raise failure.at("") from None
        return body


def compile_bodies(schemas: Mapping[str, Any]) -> dict[str, Validator]:
    """Validators of body ``schemas`` (which may use :data:`SCHEMAS` and ``InputItem``)."""
    compiler = Compiler({**SCHEMAS, **schemas, "InputItem": {}}, keep_unknown=False, body=True)
    return {name: compiler.named(name) for name in schemas}


_COMPILED = compile_bodies(SCHEMAS)
CREATE_CONVERSATION = Body("CreateConversationBody", _COMPILED["CreateConversationBody"])
UPDATE_CONVERSATION = Body("UpdateConversationBody", _COMPILED["UpdateConversationBody"])
CREATE_ITEMS = Body("CreateConversationItemsBody", _COMPILED["CreateConversationItemsBody"])
FORK_CONVERSATION = Body("ForkConversationBody", _COMPILED["ForkConversationBody"])
_METADATA = _COMPILED["Metadata"]


def metadata_json(value: Any) -> bytes:
    """Validated metadata as stored JSON; ``null`` means ``{}`` (D1)."""
    if value is None:
        return EMPTY_METADATA
    try:
        _METADATA(value)
    except Invalid as failure:
        raise failure.at("metadata") from None
    return orjson.dumps(value) if value else EMPTY_METADATA


def stored_metadata(value: dict[str, str] | None) -> bytes:
    """Metadata of a body already checked, as stored JSON; ``null`` means ``{}`` (D1)."""
    return orjson.dumps(value) if value else EMPTY_METADATA
