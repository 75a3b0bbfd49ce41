"""Regenerate src/convostore/items/schemas.json: the OpenAPI excerpt, widened by the SDK.

The server validates and normalises items with schemas compiled at start
(convostore.items.compiler). The package reads neither spec/ nor the ``openai`` package
at run time, so this script writes what it needs as data:

1. the component schemas of the excerpt reachable from `InputItem`, `ConversationItem` and
   `IncludeEnum`, without annotations (descriptions, examples, titles, x-* keys; `default`
   stays, the server fills required output fields from it);
2. widened by the installed ``openai`` package's types (CONTRACT.md D23 and section 0b):
   every item type, field and enum value of its ``ResponseInputItemParam`` union that the
   excerpt's input schemas lack is added to them, and likewise ``ConversationItem`` to the
   excerpt's output schemas. Widening only adds (a property, an enum value, a union
   member, ``null`` where the SDK sends it); it never removes or tightens a rule of the
   excerpt, so every body valid before stays valid. New schemas are named ``Sdk*``.

tests/items/test_registry.py fails when the committed file differs from what this
script writes with the pinned SDK (pyproject.toml's test extras); scripts/sdk_drift.py
lists what a given SDK has that the server does not accept. Taking in a new SDK release:

    pip install -U openai && python scripts/gen_item_schemas.py && python scripts/sdk_drift.py

    python scripts/gen_item_schemas.py [--excerpt-only] [path/to/openai-conversations.openapi.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sdk_types  # a sibling script module

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT / "spec" / "openai-conversations.openapi.json"
OUTPUT = ROOT / "src" / "convostore" / "items" / "schemas.json"
ROOTS = ("InputItem", "ConversationItem", "IncludeEnum")
DROP = {"description", "example", "examples", "title", "deprecated"}


def strip(node: Any) -> Any:
    """Drop annotations from a schema; names inside ``properties`` are data and stay."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in DROP or key.startswith("x-"):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: strip(sub) for name, sub in value.items()}
            else:
                out[key] = strip(value)
        return out
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def build(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    keep: dict[str, Any] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = strip(schemas[name])
        todo.extend(refs(keep[name]) - keep.keys())
    return {name: keep[name] for name in sorted(keep)}


REF = "#/components/schemas/"
# Which base union holds the members of each SDK union.
BASE_UNIONS = {"input": "InputItem", "output": "ConversationItem"}


class Widener:
    """Widens the excerpt's schemas (``base``, edited in place) with one SDK union."""

    def __init__(
        self,
        base: dict[str, Any],
        doc: sdk_types.Document,
        *,
        nullable: bool,
        nullable_new: set[str],
    ):
        self.base = base
        # Fields new to the excerpt that the other SDK union lets be null, by path: the
        # field takes null here too (``async``: null in ConversationItem, D23).
        self.nullable_new = nullable_new
        self.doc = doc
        # Input: a null the SDK may send is accepted. Output: not added to a field the
        # excerpt has (pydantic writes every optional field as nullable).
        self.nullable = nullable
        self.imported: dict[str, str] = {}  # SDK $defs name -> base component name
        self.changes: list[str] = []

    # -- the base side ---------------------------------------------------------------------

    def node(self, schema: Any) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self.base[schema["$ref"].removeprefix(REF)]
        return schema

    def branches(self, schema: Any) -> list[Any]:
        schema = self.node(schema)
        if not isinstance(schema, dict):
            return [schema]
        inner = schema.get("anyOf") or schema.get("oneOf")
        if inner is None:
            return [schema]
        out: list[Any] = []
        for branch in inner:
            out.extend(self.branches(branch))
        return out

    def parts(self, schema: dict[str, Any]) -> list[dict[str, Any]]:
        """An object schema and its ``allOf`` parts, resolved."""
        if "allOf" not in schema:
            return [schema]
        out: list[dict[str, Any]] = []
        for part in schema["allOf"]:
            out.extend(self.parts(self.node(part)))
        return out

    def properties(self, schema: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for part in self.parts(schema):  # a later part wins, as in the compiler's merge
            found.update(part.get("properties", {}))
        return found

    def home(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Where a new property of ``schema`` is written (the last inline part)."""
        if "allOf" in schema:
            inline = [p for p in schema["allOf"] if "$ref" not in p]
            if inline:
                target: dict[str, Any] = inline[-1].setdefault("properties", {})
                return target
        target = schema.setdefault("properties", {})
        return target

    def tags(self, schema: Any) -> set[str]:
        schema = self.node(schema)
        if not isinstance(schema, dict):
            return set()
        found: set[str] = set()
        for part in self.parts(schema):
            prop = part.get("properties", {}).get("type")
            for branch in self.branches(prop) if prop is not None else ():
                if isinstance(branch, dict):
                    found.update(v for v in branch.get("enum", ()) if isinstance(v, str))
        return found

    @staticmethod
    def kind(schema: Any) -> str:
        """The JSON type a (resolved, non-union) schema accepts: object, string, ..."""
        if not isinstance(schema, dict) or schema == {}:
            return "any"
        declared = schema.get("type")
        if isinstance(declared, str):
            return "number" if declared == "integer" else declared
        if "properties" in schema or "allOf" in schema:
            return "object"
        if "enum" in schema:
            values = schema["enum"]
            return "string" if all(isinstance(v, str) for v in values) else "any"
        return "any"

    def add_branch(self, target: dict[str, Any], branch: Any, where: str) -> None:
        if "anyOf" in target or "oneOf" in target:
            target["anyOf" if "anyOf" in target else "oneOf"].append(branch)
        else:
            old = dict(target)
            target.clear()
            target["anyOf"] = [old, branch]
        self.changes.append(f"{where}: + {describe(branch)}")

    # -- the SDK side ----------------------------------------------------------------------

    def imported_ref(self, sdk_name: str) -> dict[str, str]:
        """A base ``$ref`` to a copy of the SDK's ``$defs`` entry (copied once)."""
        name = self.imported.get(sdk_name)
        if name is None:
            stem = "Sdk" + sdk_name.split("__")[-1]
            name, n = stem, 1
            while name in self.base:
                n += 1
                name = f"{stem}{n}"
            self.imported[sdk_name] = name
            self.base[name] = {}  # reserved first: the entry may refer to itself
            self.base[name] = self.convert(self.doc.defs[sdk_name])
        return {"$ref": REF + name}

    def convert(self, schema: Any) -> Any:
        """An SDK schema as a base schema: plain, with ``$ref``s into imported copies."""
        if isinstance(schema, list):
            return [self.convert(v) for v in schema]
        if not isinstance(schema, dict):
            return schema
        if "$ref" in schema:
            return self.imported_ref(schema["$ref"].removeprefix(sdk_types.DEFS))
        out: dict[str, Any] = {}
        for key, value in sdk_types.plain(schema).items():
            if key == "properties":
                out[key] = {name: self.convert(sub) for name, sub in value.items()}
            else:
                out[key] = self.convert(value) if isinstance(value, dict | list) else value
        return out

    # -- widening --------------------------------------------------------------------------

    def widen(self, base: Any, sdk: Any, where: str) -> None:
        """Make the base schema accept every type, field and enum value ``sdk`` accepts."""
        target = self.node(base)
        if not isinstance(target, dict):
            return
        ours = self.branches(target)
        for theirs in self.doc.branches(sdk):
            if not isinstance(theirs, dict):
                continue
            kind = self.kind(theirs)
            if kind == "null":
                if self.nullable and not any(self.kind(b) in ("null", "any") for b in ours):
                    self.add_branch(target, {"type": "null"}, where)
                continue
            if kind == "any":
                continue
            same = [b for b in ours if self.kind(b) in (kind, "any")]
            if kind == "object":
                self.widen_object(target, ours, same, theirs, where)
            elif kind == "string":
                self.widen_string(target, same, theirs, where)
            elif kind == "array":
                arrays = [b for b in same if self.kind(b) == "array"]
                if not arrays:
                    self.add_branch(target, self.convert(theirs), where)
                elif "items" in theirs and "items" in arrays[0]:
                    self.widen(arrays[0]["items"], theirs["items"], where + "[]")
            elif not same:
                self.add_branch(target, self.convert(theirs), where)

    def widen_object(
        self,
        target: dict[str, Any],
        ours: list[Any],
        same: list[Any],
        theirs: dict[str, Any],
        where: str,
    ) -> None:
        tags = set(sdk_types.type_values(self.doc, theirs))
        objects = [b for b in same if self.kind(b) == "object"]
        match: dict[str, Any] | None = None
        if tags:
            tagged = [b for b in objects if self.tags(b) & tags]
            match = tagged[0] if tagged else None
            if match is None and len(objects) == 1 and not self.tags(objects[0]):
                match = objects[0]
        elif objects:
            match = objects[0]
        if match is None:
            self.add_branch(target, self.convert(theirs), where)
            return
        label = where + (f"<{sorted(tags)[0]}>" if tags else "")
        known = self.properties(match)
        for key, sub in theirs.get("properties", {}).items():
            if key in known:
                self.widen(known[key], sub, f"{label}.{key}")
            else:
                added = self.convert(sub)
                takes_null = any(self.kind(b) == "null" for b in self.branches(added))
                if takes_null:
                    self.nullable_new.add(f"{label}.{key}")
                elif f"{label}.{key}" in self.nullable_new:
                    added = {"anyOf": [added, {"type": "null"}]}
                self.home(match)[key] = added
                self.changes.append(f"{label}: + field {key}")

    def widen_string(
        self, target: dict[str, Any], same: list[Any], theirs: dict[str, Any], where: str
    ) -> None:
        wanted = theirs.get("enum") if "enum" in theirs else None
        if "const" in theirs:
            wanted = [theirs["const"]]
        strings = [self.node(b) for b in same if self.kind(b) in ("string", "any")]
        if any("enum" not in s for s in strings):
            return  # a free string already takes every value
        if wanted is None:
            # The SDK takes any string where the excerpt lists values: keep the list
            # (the drift check reports it) rather than stop validating.
            return
        if not strings:
            self.add_branch(target, self.convert(theirs), where)
            return
        allowed = {v for s in strings for v in s["enum"]}
        for value in wanted:
            if value not in allowed:
                strings[0]["enum"].append(value)
                allowed.add(value)
                self.changes.append(f"{where}: + value {value!r}")


def describe(schema: Any) -> str:
    if isinstance(schema, dict) and "$ref" in schema:
        return str(schema["$ref"].removeprefix(REF))
    return json.dumps(schema, sort_keys=True)[:80]


def _flat_members(w: Widener, union: str) -> list[tuple[str, dict[str, Any]]]:
    """The base union's members, nested unions (``Item``) flattened, with their names."""
    out: list[tuple[str, dict[str, Any]]] = []
    stack = [(union, w.base[union])]
    while stack:
        name, schema = stack.pop(0)
        inner = schema.get("oneOf") or schema.get("anyOf")
        if inner is not None and not schema.get("properties"):
            stack[0:0] = [
                (m["$ref"].removeprefix(REF), w.base[m["$ref"].removeprefix(REF)]) for m in inner
            ]
        else:
            out.append((name, schema))
    return out


def _closest(w: Widener, theirs: dict[str, Any], candidates: list[Any]) -> Any:
    """Of several base members of one type (the message shapes), the one whose fields
    and roles are most like the SDK member's."""

    def score(item: tuple[str, dict[str, Any]]) -> tuple[int, int]:
        ours = w.properties(item[1])
        keys, their_keys = set(ours), set(theirs.get("properties", {}))
        roles = {
            v
            for b in w.doc.branches(theirs.get("properties", {}).get("role", {}))
            if isinstance(b, dict)
            for v in (b.get("enum") or [b.get("const")])
        }
        our_roles = {v for b in w.branches(ours.get("role", {})) for v in b.get("enum", ())}
        return (int(roles == our_roles), len(keys & their_keys) - len(keys ^ their_keys))

    return max(candidates, key=score)


def widen_union(
    base: dict[str, Any], kind: str, sdk_schema: dict[str, Any], nullable_new: set[str]
) -> list[str]:
    """Widen ``base`` with the SDK's ``input`` or ``output`` union; the changes made."""
    doc = sdk_types.Document(sdk_schema)
    w = Widener(base, doc, nullable=kind == "input", nullable_new=nullable_new)
    union = BASE_UNIONS[kind]
    members = _flat_members(w, union)
    for sdk_name, theirs in doc.members():
        tags = sdk_types.type_values(doc, theirs)
        candidates = [m for m in members if w.tags(m[1]) & set(tags)]
        if not candidates:
            ref = w.imported_ref(sdk_name)
            base[union]["oneOf"].append(ref)
            w.changes.append(f"{kind}: + type {'/'.join(tags)} ({describe(ref)})")
            continue
        name, _ = _closest(w, theirs, candidates) if len(candidates) > 1 else candidates[0]
        w.widen({"$ref": REF + name}, theirs, "")
    return [change if change.startswith(kind) else kind + change for change in w.changes]


def build_widened(spec: dict[str, Any], sdk: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """The excerpt's schemas widened by the SDK's unions (``{"input": ..., "output": ...}``)."""
    base = build(spec)
    changes: list[str] = []
    # Output first: a field new to the excerpt takes the SDK model's type, where an optional
    # field also takes ``null`` (``async``: bool or null, D23). A field the excerpt already
    # has keeps its output rules (the server leaves out a null the excerpt does not allow).
    nullable_new: set[str] = set()
    for kind in ("output", "input"):
        changes += widen_union(base, kind, sdk[kind], nullable_new)
    return {name: base[name] for name in sorted(base)}, changes


def sdk_unions() -> dict[str, dict[str, Any]]:
    return {kind: sdk_types.union(kind) for kind in sdk_types.UNIONS}


def render(schemas: dict[str, Any]) -> str:
    lines = [
        json.dumps(name) + ": " + json.dumps(body, sort_keys=True) for name, body in schemas.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main() -> None:
    args = sys.argv[1:]
    excerpt_only = "--excerpt-only" in args
    args = [a for a in args if a != "--excerpt-only"]
    spec_path = Path(args[0]) if args else DEFAULT_SPEC
    spec = json.loads(spec_path.read_text())
    if excerpt_only:
        OUTPUT.write_text(render(build(spec)))
        print(f"wrote {OUTPUT.relative_to(ROOT)} from {spec_path} (excerpt only)")
        return
    schemas, changes = build_widened(spec, sdk_unions())
    OUTPUT.write_text(render(schemas))
    for change in changes:
        print("  " + change)
    print(
        f"wrote {OUTPUT.relative_to(ROOT)} from {spec_path} widened by openai=="
        f"{sdk_types.version()} ({len(changes)} additions)"
    )


if __name__ == "__main__":
    main()
