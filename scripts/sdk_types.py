"""The installed ``openai`` package's item types, as JSON Schema (CONTRACT.md section 0b).

The official Python SDK is generated from OpenAI's newest (internal) spec and released
several times a week; the public OpenAPI excerpt in spec/ lags behind it. This module
reads the SDK's types with pydantic (an SDK dependency) and gives them as plain JSON
Schema documents, so scripts/gen_item_schemas.py can widen the excerpt with them and
scripts/sdk_drift.py can check the server against them. It is used by scripts and
tests only: the server never imports ``openai``.
"""

from __future__ import annotations

import copy
from typing import Any

# The SDK types that matter to the Conversations API (section 0b), by the name used here.
UNIONS = {
    "input": ("openai.types.responses.response_input_item_param", "ResponseInputItemParam"),
    "output": ("openai.types.conversations.conversation_item", "ConversationItem"),
}
PARAMS = {
    "create_conversation": (
        "openai.types.conversations.conversation_create_params",
        "ConversationCreateParams",
    ),
    "create_items": ("openai.types.conversations.item_create_params", "ItemCreateParams"),
}
# Fields of the params the SDK sends in the query string, not in the body.
QUERY_FIELDS = {"create_items": frozenset({"include"})}
DEFS = "#/$defs/"


def version() -> str:
    import openai

    return str(openai.__version__)


def _load(module: str, name: str) -> Any:
    import importlib

    return getattr(importlib.import_module(module), name)


def json_schema(module: str, name: str) -> dict[str, Any]:
    """The JSON Schema of one SDK type (a ``$defs`` document), as pydantic writes it."""
    from pydantic import TypeAdapter

    schema: dict[str, Any] = TypeAdapter(_load(module, name)).json_schema()
    return schema


def union(kind: str) -> dict[str, Any]:
    """``input`` (``ResponseInputItemParam``) or ``output`` (``ConversationItem``)."""
    return json_schema(*UNIONS[kind])


def params(kind: str) -> dict[str, Any]:
    """``create_conversation`` or ``create_items``: the params of that SDK call."""
    return json_schema(*PARAMS[kind])


class Document:
    """One pydantic JSON Schema document: ``$ref`` resolution into its ``$defs``."""

    def __init__(self, schema: dict[str, Any]):
        self.root = schema
        self.defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            node = self.defs[node["$ref"].removeprefix(DEFS)]
        return node

    def def_name(self, node: Any) -> str | None:
        if isinstance(node, dict) and "$ref" in node:
            name: str = node["$ref"].removeprefix(DEFS)
            return name
        return None

    def branches(self, node: Any) -> list[Any]:
        """The alternatives of a node (nested unions flattened), each resolved."""
        node = self.resolve(node)
        if not isinstance(node, dict):
            return [node]
        inner = node.get("anyOf") or node.get("oneOf")
        if inner is None:
            return [node]
        out: list[Any] = []
        for branch in inner:
            out.extend(self.branches(branch))
        return out

    def members(self) -> list[tuple[str, dict[str, Any]]]:
        """The union's members as (def name, resolved schema)."""
        out = []
        for branch in self.root.get("anyOf") or self.root.get("oneOf") or [self.root]:
            name = self.def_name(branch) or "?"
            out.append((name, self.resolve(branch)))
        return out


def type_values(doc: Document, schema: dict[str, Any]) -> list[str]:
    """The discriminator values (``type``) an object schema allows."""
    prop = schema.get("properties", {}).get("type")
    if prop is None:
        return []
    values: list[str] = []
    for branch in doc.branches(prop):
        if not isinstance(branch, dict):
            continue
        if isinstance(branch.get("const"), str):
            values.append(branch["const"])
        values.extend(v for v in branch.get("enum", ()) if isinstance(v, str))
    return values


def plain(node: Any) -> Any:
    """A copy without pydantic's annotations, with ``const`` written as a one-value ``enum``
    (the server's compiler reads ``enum``)."""
    if isinstance(node, list):
        return [plain(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "description", "default", "examples", "additionalProperties"):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {name: plain(sub) for name, sub in value.items()}
        else:
            out[key] = plain(value)
    return out


def deep_copy(node: Any) -> Any:
    return copy.deepcopy(node)


class Examples:
    """Instances of an SDK schema: minimal ones, one per feature, and complete ones.

    ``value(name, schema)`` gives a string for a property (``name``) where the default
    ``"x"`` would not do; pydantic's schemas carry no formats or lengths, so the values
    are deliberately plain.
    """

    def __init__(self, doc: Document, value: Any = None):
        self.doc = doc
        self.value = value or (lambda name, schema: None)

    def _leaf(self, schema: dict[str, Any], name: str) -> Any:
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if kind == "string":
            chosen = self.value(name, schema)
            return "x" if chosen is None else chosen
        if kind == "integer":
            return int(schema.get("minimum", 1))
        if kind == "number":
            return float(schema.get("minimum", 1))
        if kind == "boolean":
            return False
        if kind == "null":
            return None
        if kind == "array":
            return []
        return {}

    def _choice(self, node: Any) -> list[Any]:
        """The branches of a node, those other than null first."""
        found = self.doc.branches(node)
        return [b for b in found if b.get("type") != "null"] + [
            b for b in found if b.get("type") == "null"
        ]

    def minimal(self, node: Any, name: str = "", seen: frozenset[str] = frozenset()) -> Any:
        """An instance with only what is required (the first branch of every union)."""
        ref = self.doc.def_name(node)
        schema = self._choice(node)[0]
        seen = seen | {ref} if ref else seen
        if schema.get("type") == "object" or "properties" in schema:
            props = schema.get("properties", {})
            return {
                key: self.minimal(props[key], key, seen)
                for key in props
                if key in schema.get("required", ())
            }
        if schema.get("type") == "array" and schema.get("minItems"):
            return [self.minimal(schema.get("items", {}), name, seen)]
        return self._leaf(schema, name)

    def complete(self, node: Any, name: str = "", seen: frozenset[str] = frozenset()) -> Any:
        """An instance with every property present (not re-entering a recursive type)."""
        ref = self.doc.def_name(node)
        if ref and ref in seen:
            return self.minimal(node, name, seen)
        seen = seen | {ref} if ref else seen
        schema = self._choice(node)[0]
        if schema.get("type") == "object" or "properties" in schema:
            return {
                key: self.complete(sub, key, seen)
                for key, sub in schema.get("properties", {}).items()
            }
        if schema.get("type") == "array" and "items" in schema:
            return [self.complete(schema["items"], name, seen)]
        return self._leaf(schema, name)

    def variants(
        self, node: Any, name: str = "", seen: frozenset[str] = frozenset()
    ) -> Any:
        """(label, instance) pairs: for every branch, enum value and property reachable
        from ``node``, one minimal instance that has it. Labels read like
        ``.status='incomplete'``, ``.action``, ``.tools[]<image_generation>.svg``."""
        ref = self.doc.def_name(node)
        if ref and ref in seen:
            return
        seen = seen | {ref} if ref else seen
        branches = self._choice(node)
        for schema in branches:
            tags = type_values(self.doc, schema)
            tag = f"<{tags[0]}>" if len(branches) > 1 and tags else ""
            if schema.get("type") == "object" or "properties" in schema:
                base = self.minimal(schema, name, seen)
                yield tag, base
                for key, sub in schema.get("properties", {}).items():
                    for label, value in self.variants(sub, key, seen):
                        yield f"{tag}.{key}{label}", {**base, key: value}
            elif schema.get("type") == "array":
                yield tag + "[]", []
                for label, value in self.variants(schema.get("items", {}), name, seen):
                    yield f"{tag}[]{label}", [value]
            elif "const" in schema or "enum" in schema:
                for value in [schema["const"]] if "const" in schema else schema["enum"]:
                    yield f"={value!r}", value
            elif schema.get("type") == "null":
                yield "=null", None
            else:
                yield tag, self._leaf(schema, name)
