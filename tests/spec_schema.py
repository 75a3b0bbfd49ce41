"""Validate response bodies against the OpenAI Conversations OpenAPI excerpt.

The spec is the repository's copy in ``spec/`` (see ``spec/README.md`` for its source;
override with the ``CONVOSTORE_SPEC_DIR`` environment variable). It is read once, patched in memory (see
:func:`_patch_spec`), and registered as one JSON Schema resource, so every
``#/components/schemas/...`` reference inside it resolves the usual way. Validators are
built lazily and cached per schema name, so calling :func:`validate` in a loop is cheap.

Public helpers:

- :func:`validate` checks a body against ``#/components/schemas/<name>``;
- :func:`validate_item` checks one returned conversation item against the
  ``ConversationItem`` member that matches its ``type``;
- :func:`validate_response` checks the body of an operation (conversation, deleted, list, item);
- :func:`error_envelope_ok` checks the ``{"error": {...}}`` envelope (CONTRACT.md D17).

All of them raise ``AssertionError`` with a readable message on failure.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match, relevance
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_FILE = "openai-conversations.openapi.json"
SPEC_URI = "urn:convostore:openai-conversations-openapi"
SCHEMAS_POINTER = "#/components/schemas/"

# Required entries the spec lists without declaring them as properties. Nobody can send
# them under the strict unknown-field rule (CONTRACT.md D9), and OpenAI's SDKs do not have
# them either, so they are dropped where we validate items (validate_item, and validate
# with relax_quirks=True). A plain validate("LocalShellToolCallOutput", body) keeps the
# spec as it is, quirks included: such a body fails unless it carries the phantom key.
REQUIRED_QUIRKS: dict[str, frozenset[str]] = {
    "LocalShellToolCallOutput": frozenset({"call_id"}),
    "MCPApprovalResponse": frozenset({"request_id"}),
    "MCPApprovalResponseResource": frozenset({"request_id"}),
}

# The envelope of ConversationItemList (CONTRACT.md §1.3 and D2).
LIST_KEYS = frozenset({"object", "data", "first_id", "last_id", "has_more"})
ERROR_KEYS = frozenset({"message", "type", "param", "code"})

_MAX_MESSAGE = 600


# --- loading -------------------------------------------------------------------------------


def spec_dir() -> Path:
    """``$CONVOSTORE_SPEC_DIR``, else the copy in the repository's ``spec/``."""
    override = os.environ.get("CONVOSTORE_SPEC_DIR")
    if override:
        return Path(override)
    repo_root = Path(__file__).resolve().parent.parent
    return repo_root / "spec"


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside ``node``, ``node`` included."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _patch_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Make the draft 2019-09 recursion keywords work under Draft 2020-12.

    ``CompoundFilter`` declares ``$recursiveAnchor: true`` and refers to itself with
    ``$recursiveRef: '#'``. Draft 2020-12 does not know these keywords: it would ignore
    them, so the ``{"$recursiveRef": "#"}`` branch would accept anything and make the
    ``oneOf`` around it fail for every comparison filter. In our loaded copy (never on
    disk), each ``$recursiveRef: '#'`` inside a schema carrying ``$recursiveAnchor`` becomes
    a plain ``$ref`` to that schema, and the anchor is dropped. Nothing else is changed.
    """
    schemas: dict[str, Any] = spec["components"]["schemas"]
    for name, schema in schemas.items():
        if not isinstance(schema, dict) or not schema.pop("$recursiveAnchor", False):
            continue
        for node in _walk(schema):
            if node.get("$recursiveRef") == "#":
                del node["$recursiveRef"]
                node["$ref"] = SCHEMAS_POINTER + name
    leftover = [node for node in _walk(spec) if "$recursiveRef" in node]
    if leftover:
        raise RuntimeError(f"unhandled $recursiveRef in the spec: {leftover!r}")
    return spec


def _widen_with_sdk(spec: dict[str, Any]) -> dict[str, Any]:
    """The excerpt as CONTRACT.md section 0b reads it: widened by the newest SDK's types.

    The item schemas the server packages (``items/schemas.json``) are the excerpt's,
    widened by the pinned ``openai`` package (D23; ``scripts/gen_item_schemas.py``, and
    tests/items/test_registry.py proves the file is what the script writes from the
    excerpt and the pinned SDK). They replace the excerpt's schemas of the same name and
    add the ``Sdk*`` ones; the operation schemas stay the excerpt's.
    """
    packaged = Path(__file__).resolve().parent.parent / "src/convostore/items/schemas.json"
    widened = json.loads(packaged.read_text(encoding="utf-8"))
    spec["components"]["schemas"].update(widened)
    return spec


@functools.cache
def spec() -> dict[str, Any]:
    """The patched spec document (shared: do not mutate)."""
    path = spec_dir() / SPEC_FILE
    with path.open(encoding="utf-8") as handle:
        return _patch_spec(_widen_with_sdk(json.load(handle)))


def schemas() -> dict[str, Any]:
    """``components.schemas`` of the patched spec (shared: do not mutate)."""
    result: dict[str, Any] = spec()["components"]["schemas"]
    return result


@functools.cache
def _registry() -> Registry[Any]:
    resource = DRAFT202012.create_resource(spec())
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource).crawl()
    return registry


def _absolute_refs(schema: Any) -> Any:
    """A deep copy of ``schema`` whose local ``$ref``s point into the registered spec."""
    result = copy.deepcopy(schema)
    for node in _walk(result):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            node["$ref"] = SPEC_URI + ref
    return result


# --- validators ------------------------------------------------------------------------------


@functools.cache
def _validator(schema_name: str, relaxed: bool) -> Draft202012Validator:
    if schema_name not in schemas():
        raise KeyError(f"no schema named {schema_name!r} in {SPEC_FILE}")
    dropped = REQUIRED_QUIRKS.get(schema_name, frozenset()) if relaxed else frozenset()
    if dropped:
        body = _absolute_refs(schemas()[schema_name])
        body["required"] = [key for key in body["required"] if key not in dropped]
    else:
        body = {"$ref": SPEC_URI + SCHEMAS_POINTER + schema_name}
    return Draft202012Validator(body, registry=_registry())


def _best_error(errors: Iterable[ValidationError]) -> ValidationError | None:
    """The most useful error, descending into the ``oneOf``/``anyOf`` branch the body meant.

    The spec's unions are discriminated by ``type``. When exactly one branch did not fail
    on the ``type`` property itself, that branch's errors are the useful ones (a missing
    ``annotations`` in an ``output_text`` part rather than "not valid under any of the
    given schemas"). Otherwise jsonschema's own ``best_match`` heuristic decides.
    """
    error = max(errors, key=relevance, default=None)
    while error is not None and error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        meant = [
            found
            for found in branches.values()
            if not any(list(e.relative_path) == ["type"] for e in found)
        ]
        if len(meant) != 1:
            return best_match([error])
        error = max(meant[0], key=relevance)
    return error


def _describe(schema_name: str, error: ValidationError) -> str:
    message = error.message
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "..."
    return f"body is not a valid {schema_name}: at {error.json_path}: {message}"


def validate(schema_name: str, body: object, *, relax_quirks: bool = False) -> None:
    """Assert that ``body`` is valid against ``#/components/schemas/<schema_name>``.

    ``relax_quirks`` drops the phantom required keys of :data:`REQUIRED_QUIRKS` when
    ``schema_name`` itself is one of those schemas (nested uses are not affected).
    """
    validator = _validator(schema_name, relax_quirks and schema_name in REQUIRED_QUIRKS)
    if validator.is_valid(body):
        return
    error = _best_error(validator.iter_errors(body))
    assert error is not None
    raise AssertionError(_describe(schema_name, error))


# --- items -----------------------------------------------------------------------------------


def _deref(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = schemas()[schema["$ref"].removeprefix(SCHEMAS_POINTER)]
    return schema


def type_values(schema: dict[str, Any]) -> frozenset[str]:
    """The values a (possibly ``allOf``) object schema allows for its ``type`` property."""
    schema = _deref(schema)
    found: set[str] = set()
    for part in schema.get("allOf", ()):
        found |= type_values(part)
    prop = schema.get("properties", {}).get("type")
    if prop is not None:
        stack = [_deref(prop)]
        while stack:
            node = stack.pop()
            found.update(v for v in node.get("enum", ()) if isinstance(v, str))
            stack.extend(_deref(b) for b in node.get("anyOf", node.get("oneOf", ())))
    return frozenset(found)


def union_members(union_name: str) -> dict[str, str]:
    """``type`` value -> member schema name, for a ``oneOf`` union such as ConversationItem."""
    return dict(_union_members(union_name))


@functools.cache
def _union_members(union_name: str) -> tuple[tuple[str, str], ...]:
    table: dict[str, str] = {}
    for branch in schemas()[union_name]["oneOf"]:
        name = branch["$ref"].removeprefix(SCHEMAS_POINTER)
        for value in type_values(branch):
            if value in table:
                raise RuntimeError(f"{union_name}: type {value!r} in {table[value]} and {name}")
            table[value] = name
    return tuple(sorted(table.items()))


def item_schema_name(item_type: str) -> str:
    """The ``ConversationItem`` member that describes items of ``item_type``."""
    members = dict(_union_members("ConversationItem"))
    try:
        return members[item_type]
    except KeyError:
        raise AssertionError(
            f"{item_type!r} is not a ConversationItem type (known: {', '.join(sorted(members))})"
        ) from None


def validate_item(body: object) -> None:
    """Assert that ``body`` is a valid returned conversation item.

    The member of ``ConversationItem.oneOf`` whose ``type`` enum holds ``body["type"]``
    is used (the union itself is not, so the error names the right schema). The phantom
    required keys of :data:`REQUIRED_QUIRKS` are not demanded.
    """
    assert isinstance(body, dict), f"an item must be a JSON object, got {type(body).__name__}"
    item_type = body.get("type")
    assert isinstance(item_type, str), f"an item needs a string 'type', got {item_type!r}"
    validate(item_schema_name(item_type), body, relax_quirks=True)


# --- operations ------------------------------------------------------------------------------


def _validate_list(body: object) -> None:
    assert isinstance(body, dict), f"a list body must be a JSON object, got {type(body).__name__}"
    keys = set(body)
    assert keys == LIST_KEYS, (
        f"list keys differ: missing {sorted(LIST_KEYS - keys)}, "
        f"unexpected {sorted(keys - LIST_KEYS)}"
    )
    assert body["object"] == "list", f"list 'object' is {body['object']!r}, expected 'list'"
    assert isinstance(body["has_more"], bool), f"'has_more' is {body['has_more']!r}"
    data = body["data"]
    assert isinstance(data, list), f"'data' must be an array, got {type(data).__name__}"
    for index, item in enumerate(data):
        try:
            validate_item(item)
        except AssertionError as failure:
            raise AssertionError(f"data[{index}]: {failure}") from None
    if data:
        # Spec: first_id/last_id are required strings, the ids of the page's ends.
        first, last = data[0].get("id"), data[-1].get("id")
        assert isinstance(body["first_id"], str) and body["first_id"] == first, (
            f"first_id {body['first_id']!r} != data[0].id {first!r}"
        )
        assert isinstance(body["last_id"], str) and body["last_id"] == last, (
            f"last_id {body['last_id']!r} != data[-1].id {last!r}"
        )
    else:
        # CONTRACT.md D2: an empty page has null ends (the spec would demand strings).
        assert body["first_id"] is None and body["last_id"] is None, (
            f"empty page must have null ids, got {body['first_id']!r}, {body['last_id']!r}"
        )
        assert body["has_more"] is False, "an empty page cannot have more"


def validate_response(op: str, body: object) -> None:
    """Assert that ``body`` is a valid success body for ``op``.

    ``op`` is ``"conversation"`` (ConversationResource), ``"deleted"``
    (DeletedConversationResource), ``"list"`` (ConversationItemList, with D2's null ids on
    an empty page and every item checked by :func:`validate_item`) or ``"item"``.
    """
    if op == "conversation":
        validate("ConversationResource", body)
    elif op == "deleted":
        validate("DeletedConversationResource", body)
    elif op == "list":
        _validate_list(body)
    elif op == "item":
        validate_item(body)
    else:
        raise ValueError(f"unknown op {op!r}: expected conversation, deleted, list or item")


def error_envelope_ok(body: object) -> None:
    """Assert ``body == {"error": {"message": str, "type": str, "param": str|None,
    "code": str|None}}`` with exactly those keys (CONTRACT.md §6, D17)."""
    assert isinstance(body, dict), f"error body must be a JSON object, got {body!r}"
    assert set(body) == {"error"}, f"error body keys are {sorted(body)}, expected ['error']"
    error = body["error"]
    assert isinstance(error, dict), f"'error' must be an object, got {error!r}"
    keys = set(error)
    assert keys == ERROR_KEYS, (
        f"error keys differ: missing {sorted(ERROR_KEYS - keys)}, "
        f"unexpected {sorted(keys - ERROR_KEYS)}"
    )
    for key in ("message", "type"):
        assert isinstance(error[key], str), f"error.{key} must be a string, got {error[key]!r}"
    for key in ("param", "code"):
        value = error[key]
        assert value is None or isinstance(value, str), (
            f"error.{key} must be a string or null, got {value!r}"
        )
