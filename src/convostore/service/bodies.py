"""Checks of the request bodies around the items (CONTRACT.md D1, D9, D16, D19, §6)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson

from convostore import errors

METADATA_MAX_PAIRS = 16
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 512
ITEMS_PER_REQUEST = 20

EMPTY_METADATA = b"{}"


def object_body(
    body: Any, allowed: Collection[str], required: Collection[str] = ()
) -> dict[str, Any]:
    """The body as an object with only ``allowed`` keys: missing, then unknown, first."""
    if type(body) is not dict:
        kind = errors.described_type(errors.json_type_of(body))
        raise errors.InvalidRequest(
            f"Invalid body: expected a JSON object, but got {kind} instead.", code="invalid_type"
        )
    for key in required:
        if key not in body:
            raise errors.missing_parameter(key)
    for key in body:
        if key not in allowed:
            raise errors.unknown_parameter(key)
    return body


def metadata_json(value: Any) -> bytes:
    """Validated metadata as stored JSON; ``null`` means ``{}`` (D1)."""
    if value is None:
        return EMPTY_METADATA
    if type(value) is not dict:
        raise errors.invalid_type("metadata", ["object"], value)
    if len(value) > METADATA_MAX_PAIRS:
        raise errors.too_many_properties("metadata", len(value), METADATA_MAX_PAIRS)
    for key, item in value.items():
        if len(key) > METADATA_KEY_MAX:
            raise errors.property_name_too_long("metadata", key, METADATA_KEY_MAX)
        path = f"metadata.{key}"
        if type(item) is not str:
            raise errors.invalid_type(path, ["string"], item)
        if len(item) > METADATA_VALUE_MAX:
            raise errors.string_length(path, len(item), minimum=None, maximum=METADATA_VALUE_MAX)
    return orjson.dumps(value) if value else EMPTY_METADATA


def items_list(value: Any, *, required: bool) -> list[Any]:
    """The ``items`` array of a create call: at most 20 (§2)."""
    if value is None:
        if required:
            raise errors.invalid_type("items", ["array"], value)
        return []
    if type(value) is not list:
        raise errors.invalid_type("items", ["array"], value)
    if len(value) > ITEMS_PER_REQUEST:
        raise errors.array_length("items", len(value), minimum=None, maximum=ITEMS_PER_REQUEST)
    return value
