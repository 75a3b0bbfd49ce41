"""Shape a validated input item into its ``ConversationItem`` form, driven by the spec.

Input schemas are looser than the output ones: the output requires ``status`` where the
input may leave it out, requires ``annotations`` and ``logprobs`` on ``output_text``,
``execution`` on tool search items, ``environment`` on shell calls, and forbids ``null``
where the input allows it. Rather than a hand-written rule per type, the output schema
of each type is compiled once into a "filler" that walks the item and

* drops a ``null`` the output schema does not accept for an optional key;
* fills a missing (or ``null``, where not allowed) required key, in this order:
  ``null`` where the schema allows it, the schema's ``default``, ``"completed"`` for a
  status enum that has it, ``"auto"`` for an enum that has it (image ``detail``, whose
  documented default it is), ``"client"`` for one that has it (tool search
  ``execution``: an item a client writes through this API), ``[]`` for an array.

Anything it cannot fill (``id``) is left to the service. Fillers are only built where
there is something to do, so a plain text message costs a handful of dict lookups.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from convostore.items.compiler import Compiler, schema_name

Filler = Callable[[Any], None]
_NO_FILL = object()


class Conformer:
    def __init__(self, compiler: Compiler):
        self.compiler = compiler
        self._by_name: dict[str, Filler | None] = {}
        self._building: set[str] = set()

    def filler(self, schema: Mapping[str, Any]) -> Filler | None:
        if "$ref" in schema:
            return self._named(schema_name(schema["$ref"]))
        schema = self.compiler.deref(schema)
        if "anyOf" in schema or "oneOf" in schema:
            return self._union(schema)
        kind = schema.get("type")
        if kind == "array" and "items" in schema:
            return self._array(schema["items"])
        if kind == "object" or "properties" in schema:
            return self._object(schema)
        return None

    def _named(self, name: str) -> Filler | None:
        if name in self._by_name:
            return self._by_name[name]
        if name in self._building:
            # Recursive schema (a filter tree): resolve lazily once built.
            def forward(value: Any) -> None:
                target = self._by_name.get(name)
                if target is not None:
                    target(value)

            return forward
        self._building.add(name)
        built = self.filler(self.compiler.schemas[name])
        self._building.discard(name)
        self._by_name[name] = built
        return built

    def _fill_value(self, schema: Mapping[str, Any]) -> Any:
        if "null" in self.compiler.accepted_types(schema):
            return None
        resolved = self.compiler.deref(schema)
        for candidate in (resolved, *resolved.get("anyOf", ()), *resolved.get("oneOf", ())):
            candidate = self.compiler.deref(candidate)
            if "default" in candidate:
                return candidate["default"]
            enum = candidate.get("enum", ())
            if "completed" in enum:
                return "completed"
            if "auto" in enum:  # image `detail`: the API's documented default
                return "auto"
            if "client" in enum:  # tool search `execution`: a client wrote the item (issue 6)
                return "client"
        if self.compiler.accepted_types(resolved) == frozenset({"array"}):
            return []
        return _NO_FILL

    def _object(self, schema: Mapping[str, Any]) -> Filler | None:
        props: Mapping[str, Any] = schema.get("properties") or {}
        listed: tuple[str, ...] = tuple(dict.fromkeys(schema.get("required", ())))
        required = frozenset(listed)
        fills: dict[str, Any] = {}
        # In the schema's order, so the stored bytes are the same in every process (a set's
        # order follows PYTHONHASHSEED).
        for key in listed:
            if key in props:
                value = self._fill_value(props[key])
                if value is not _NO_FILL:
                    fills[key] = value
        no_null = frozenset(
            k
            for k, sub in props.items()
            if k not in required and "null" not in self.compiler.accepted_types(sub)
        )
        children = {k: f for k, sub in props.items() if (f := self.filler(sub)) is not None}
        if not fills and not no_null and not children:
            return None

        def fill(value: Any) -> None:
            if type(value) is not dict:
                return
            if no_null:
                for key in [k for k in no_null if k in value and value[k] is None]:
                    del value[key]
            for key, default in fills.items():
                if value.get(key) is None:
                    value[key] = copy.copy(default) if isinstance(default, list | dict) else default
            for key, child in children.items():
                if key in value:
                    child(value[key])

        return fill

    def _array(self, items: Mapping[str, Any]) -> Filler | None:
        element = self.filler(items)
        if element is None:
            return None

        def fill(value: Any) -> None:
            if type(value) is list:
                for entry in value:
                    element(entry)

        return fill

    def _union(self, schema: Mapping[str, Any]) -> Filler | None:
        branches = [self.compiler.deref(b) for b in schema.get("anyOf", schema.get("oneOf", ()))]
        table: dict[str, Filler] = {}
        others: list[Filler] = []
        for branch in branches:
            built = self.filler(branch)
            if built is None:
                continue
            tags = self.compiler.discriminator_values(branch)
            if tags:
                for tag in tags:
                    table.setdefault(tag, built)
            else:
                others.append(built)
        if not table and not others:
            return None
        fallback = others[0] if len(others) == 1 else None

        def fill(value: Any) -> None:
            if value is None:
                return
            if table and type(value) is dict:
                tag = value.get("type")
                target = table.get(tag) if isinstance(tag, str) else None
                if target is not None:
                    target(value)
                    return
            if fallback is not None:
                fallback(value)

        return fill
