"""Compile the spec's JSON Schema subset into plain Python validators, once, at start.

The OpenAPI excerpt is the source of truth for item shapes. Instead of hand-copying 31
item models, convostore reads the schemas and turns each into a tree of closures that
checks a decoded JSON value and raises :class:`Invalid` on the first problem, in the
order OpenAI reports them: missing required keys, then unknown keys, then types and
values of the keys present.

The error path (``items[0].content[1].text``) costs nothing on the success path: the
innermost validator raises with an empty path, and each enclosing object or array adds
its key while the exception travels up.

Supported keywords: ``$ref``, ``allOf`` (merged at compile time), ``anyOf``/``oneOf``
(dispatched by JSON type, then by the ``type`` discriminator of object branches),
``type``, ``enum``, ``properties``, ``required``, ``additionalProperties``,
``maxProperties``, ``propertyNames`` (``maxLength``), ``items``, ``minItems``,
``maxItems``, ``minLength``, ``maxLength``, ``pattern``, ``minimum``, ``maximum`` (a bound
of a ``number`` is reported as OpenAI does, as a *decimal* above or below it).
Annotations (``description``, ``default``, ``format``, ``x-*``) are ignored.

Unknown keys (CONTRACT.md D9, revised): a compiler made with ``keep_unknown=True`` (items,
the default setting ``unknown_item_fields=keep``) lets a key that an object schema does not
declare pass unchecked, at any depth, so the item is stored and returned with it exactly as
sent; the keys it declares are validated as usual, and a ``type`` it does not know is still
refused by the union's dispatch. With ``keep_unknown=False`` (request bodies, and items
under ``unknown_item_fields=refuse``) such a key is a 400 ``unknown_parameter`` wherever an
object schema lists its ``properties`` and does not allow additional ones. A kept key costs
nothing when absent: the check runs only for a key that no property matched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from convostore import errors
from convostore.errors import ApiError

Validator = Callable[[Any], None]
ErrorFactory = Callable[[str], ApiError]

_ALL_TYPES = frozenset({"string", "integer", "number", "boolean", "object", "array", "null"})
_REF_PREFIX = "#/components/schemas/"


class Invalid(Exception):
    """A validation failure whose param path is assembled on the way up."""

    __slots__ = ("make", "path")

    def __init__(self, make: ErrorFactory):
        super().__init__()
        self.make = make
        self.path: list[str | int] = []  # innermost first

    def at(self, prefix: str) -> ApiError:
        """The client-facing error, with the path rooted at ``prefix`` (e.g. ``items[0]``)."""
        return self.make(join_path(prefix, reversed(self.path)))


def join_path(prefix: str, parts: Any) -> str:
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else part
    return out


def _type_of(value: Any) -> str:
    return errors.json_type_of(value)


def _any(value: Any) -> None:
    return None


def _free_object(value: Any) -> None:
    if type(value) is not dict:
        raise Invalid(lambda p: errors.invalid_type(p, ["object"], value))


def schema_name(ref: str) -> str:
    if not ref.startswith(_REF_PREFIX):
        raise ValueError(f"unsupported $ref {ref!r}")
    return ref[len(_REF_PREFIX) :]


class Compiler:
    """Turns the component schemas of the spec into validators, memoised by name."""

    def __init__(
        self, schemas: Mapping[str, Any], *, keep_unknown: bool = False, body: bool = False
    ):
        self.schemas = schemas
        self.keep_unknown = keep_unknown
        # Request bodies (service/bodies.py): every unknown key before any value, values in
        # the order the schema declares them, and `null` not named among expected types.
        self.body = body
        self._by_name: dict[str, Validator] = {}
        self._direct: dict[Validator, dict[type, Validator]] = {}  # a union's shortcuts

    # -- schema plumbing -------------------------------------------------------------------

    def deref(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """Follow ``$ref`` chains and merge ``allOf`` into one object schema."""
        while "$ref" in schema:
            schema = self.schemas[schema_name(schema["$ref"])]
        if "allOf" in schema:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in schema["allOf"]:
                sub = self.deref(part)
                merged["properties"].update(sub.get("properties", {}))
                for key in sub.get("required", ()):
                    if key not in merged["required"]:
                        merged["required"].append(key)
            return merged
        return schema

    def accepted_types(self, schema: Mapping[str, Any]) -> frozenset[str]:
        schema = self.deref(schema)
        if "anyOf" in schema or "oneOf" in schema:
            out: set[str] = set()
            for branch in schema.get("anyOf", schema.get("oneOf", ())):
                out |= self.accepted_types(branch)
            return frozenset(out)
        declared = schema.get("type")
        if isinstance(declared, str):
            return frozenset({declared, "integer"} if declared == "number" else {declared})
        if isinstance(declared, list):
            return frozenset(declared)
        if "enum" in schema:
            return frozenset(_type_of(v) for v in schema["enum"])
        if "properties" in schema:
            return frozenset({"object"})
        return _ALL_TYPES

    def discriminator_values(self, schema: Mapping[str, Any]) -> tuple[str, ...]:
        """The values an object branch accepts for its ``type`` property."""
        schema = self.deref(schema)
        prop = schema.get("properties", {}).get("type")
        if prop is None:
            return ()
        values: list[str] = []
        stack = [self.deref(prop)]
        while stack:
            node = stack.pop()
            values.extend(v for v in node.get("enum", ()) if isinstance(v, str))
            stack.extend(self.deref(b) for b in node.get("anyOf", node.get("oneOf", ())))
        return tuple(values)

    # -- compilation -------------------------------------------------------------------------

    def named(self, name: str) -> Validator:
        """The validator of ``#/components/schemas/<name>`` (recursion-safe)."""
        found = self._by_name.get(name)
        if found is not None:
            return found
        slot: list[Validator] = []

        def forward(value: Any) -> None:
            slot[0](value)

        self._by_name[name] = forward
        real = self.compile(self.schemas[name])
        slot.append(real)
        self._by_name[name] = real
        return real

    def compile(self, schema: Mapping[str, Any]) -> Validator:
        if "$ref" in schema:
            return self.named(schema_name(schema["$ref"]))
        if "allOf" in schema:
            return self.compile(self.deref(schema))
        if "anyOf" in schema or "oneOf" in schema:
            return self._union(schema)
        declared = schema.get("type")
        if declared is None:
            if "properties" in schema:
                declared = "object"
            elif "enum" in schema:
                return self._enum_only(schema["enum"])
            else:
                return _any
        if isinstance(declared, list):
            return self._union({"anyOf": [{**schema, "type": t} for t in declared]})
        builder = getattr(self, f"_{declared}")
        result: Validator = builder(schema)
        return result

    def _enum_only(self, allowed: list[Any]) -> Validator:
        allowed_set = frozenset(allowed)

        def check(value: Any) -> None:
            if isinstance(value, list | dict) or value not in allowed_set:
                raise Invalid(lambda p: errors.invalid_value(p, value, allowed))

        return check

    def _null(self, schema: Mapping[str, Any]) -> Validator:
        def check(value: Any) -> None:
            if value is not None:
                raise Invalid(lambda p: errors.invalid_type(p, ["null"], value))

        return check

    def _boolean(self, schema: Mapping[str, Any]) -> Validator:
        def check(value: Any) -> None:
            if value is not True and value is not False:
                raise Invalid(lambda p: errors.invalid_type(p, ["boolean"], value))

        return check

    def _integer(self, schema: Mapping[str, Any]) -> Validator:
        return self._numeric(schema, integer=True)

    def _number(self, schema: Mapping[str, Any]) -> Validator:
        return self._numeric(schema, integer=False)

    def _numeric(self, schema: Mapping[str, Any], *, integer: bool) -> Validator:
        minimum: float | None = schema.get("minimum")
        maximum: float | None = schema.get("maximum")
        allowed: list[Any] | None = schema.get("enum")
        name = "integer" if integer else "number"
        wording = "integer" if integer else "decimal"  # OpenAI's word for a JSON number

        exact = (int,) if integer else (int, float)  # the decoded JSON types, checked first

        def check(value: Any) -> None:
            if type(value) not in exact and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (integer and isinstance(value, float))
            ):
                raise Invalid(lambda p: errors.invalid_type(p, [name], value))
            if (minimum is not None and value < minimum) or (
                maximum is not None and value > maximum
            ):
                raise Invalid(
                    lambda p: errors.out_of_range(
                        p, value, minimum=minimum, maximum=maximum, kind=wording
                    )
                )
            if allowed is not None and value not in allowed:
                raise Invalid(lambda p: errors.invalid_value(p, value, allowed))

        return check

    def _string(self, schema: Mapping[str, Any]) -> Validator:
        min_len = schema.get("minLength")
        max_len = schema.get("maxLength")
        allowed: list[Any] = schema.get("enum") or []
        allowed_set = frozenset(allowed) if allowed else None
        pattern_text = schema.get("pattern")
        pattern = re.compile(pattern_text) if pattern_text else None

        def check(value: Any) -> None:
            if type(value) is not str:
                raise Invalid(lambda p: errors.invalid_type(p, ["string"], value))
            if allowed_set is not None and value not in allowed_set:
                raise Invalid(lambda p: errors.invalid_value(p, value, allowed))
            if min_len is not None or max_len is not None:
                n = len(value)
                if (min_len is not None and n < min_len) or (max_len is not None and n > max_len):
                    raise Invalid(
                        lambda p: errors.string_length(p, n, minimum=min_len, maximum=max_len)
                    )
            if pattern is not None and pattern_text is not None and pattern.search(value) is None:
                raise Invalid(lambda p: errors.pattern_mismatch(p, value, pattern_text))

        return check

    def _array(self, schema: Mapping[str, Any]) -> Validator:
        element = self.compile(schema["items"]) if "items" in schema else _any
        min_items = schema.get("minItems")
        max_items = schema.get("maxItems")
        simple = _simple_type(self.deref(schema.get("items", {})))

        def check(value: Any) -> None:
            if type(value) is not list:
                raise Invalid(lambda p: errors.invalid_type(p, ["array"], value))
            n = len(value)
            if (min_items is not None and n < min_items) or (
                max_items is not None and n > max_items
            ):
                raise Invalid(
                    lambda p: errors.array_length(p, n, minimum=min_items, maximum=max_items)
                )
            if element is _any:
                return
            if simple is not None:  # e.g. an array of strings: one type check per member
                for item in value:
                    if type(item) is not simple:
                        break
                else:
                    return
            for index, item in enumerate(value):
                try:
                    element(item)
                except Invalid as failure:
                    failure.path.append(index)
                    raise

        return check

    def _object(self, schema: Mapping[str, Any]) -> Validator:
        props_schema: Mapping[str, Any] = schema.get("properties") or {}
        props = {key: self.compile(sub) for key, sub in props_schema.items()}
        # The spec lists a few required keys that are not properties (LocalShellToolCallOutput
        # `call_id`, MCPApprovalResponse `request_id`). Nobody could ever send them under D9,
        # so only required keys that are also properties are enforced.
        required = tuple(k for k in schema.get("required", ()) if k in props or not props)
        extra = schema.get("additionalProperties")
        if extra is None:
            extra = not props_schema  # no declared properties: a free-form object
        extra_check: Validator | None = None
        if isinstance(extra, Mapping) and extra:
            extra_check = self.compile(extra)
        allow_extra = extra is True or (isinstance(extra, Mapping))
        keep = self.keep_unknown and not allow_extra
        max_props = schema.get("maxProperties")
        name_max = (schema.get("propertyNames") or {}).get("maxLength")
        if self.body and props and (not allow_extra or (extra is True and max_props is None)):
            return self._body_object(props_schema, props, required, others=extra is True)
        if not props and not required and extra is True and max_props is None and name_max is None:
            return _free_object  # e.g. a tool's `parameters`: any object

        def check(value: Any) -> None:
            _check_required(value, required)
            if max_props is not None and len(value) > max_props:
                count = len(value)

                def too_many(p: str) -> ApiError:
                    return errors.too_many_properties(p, count, max_props)

                raise Invalid(too_many)
            for key, item in value.items():
                sub = props.get(key)
                if sub is None:
                    if not allow_extra:
                        if keep:  # kept verbatim, never interpreted (D9); the body's
                            continue  # nesting bound (service/limits.py) covers it
                        raise _unknown(key)
                    if name_max is not None and len(key) > name_max:
                        raise Invalid(_name_too_long(key, name_max))
                    if extra_check is None:
                        continue
                    sub = extra_check
                try:
                    sub(item)
                except Invalid as failure:
                    failure.path.append(key)
                    raise

        return check

    def _body_object(
        self,
        schemas: Mapping[str, Any],
        props: dict[str, Validator],
        required: tuple[str, ...],
        *,
        others: bool = False,
    ) -> Validator:
        """An object of a body: with ``others``, keys it does not declare pass unchecked."""
        ordered = tuple(props.items())
        # For the one pass over a valid body: which keys may be null, which are checked by
        # their Python type alone, and the validators of the others.
        nullable: set[str] = set()
        # Per key: a Python type, a string's values, or the validator of anything else.
        rules: dict[str, type | frozenset[str] | Validator] = {}
        for key, declared in schemas.items():
            branches = self.deref(declared).get("anyOf", ())
            if len(branches) == 2 and {"type": "null"} in branches:
                nullable.add(key)
                declared = branches[branches[0] == {"type": "null"}]
            schema = self.deref(declared)
            python_type = _simple_type(schema)
            if python_type is not None:
                rules[key] = python_type
            elif schema.get("type") == "string" and schema.keys() <= _ANNOTATIONS | {"enum"}:
                rules[key] = frozenset(schema["enum"])
            else:
                rules[key] = self.compile(declared)
                if rules[key] is _any:
                    nullable.add(key)
        may_be_null = frozenset(nullable)
        rule_of = rules.get

        def first_problem(value: dict[str, Any]) -> None:
            """Every unknown key before any value, the values in declared order."""
            for key in value:
                if key not in props and not others:
                    raise _unknown(key)
            for key, sub in ordered:
                if key in value:
                    try:
                        sub(value[key])
                    except Invalid as failure:
                        failure.path.append(key)
                        raise

        def check(value: Any) -> None:
            _check_required(value, required)
            # A valid body costs one pass over the keys it has; at the first doubt the
            # problem is looked for again in OpenAI's order (validators have no side effects).
            try:
                for key, item in value.items():
                    if item is None:
                        if key in may_be_null:
                            continue
                        break
                    rule = rule_of(key)
                    if rule is None:
                        if others:
                            continue
                        break
                    kind = type(rule)
                    if kind is type:
                        if type(item) is rule:
                            continue
                        break
                    if kind is frozenset:
                        if type(item) is str and item in rule:  # type: ignore[operator]
                            continue
                        break
                    rule(item)  # type: ignore[operator]
                else:
                    return
            except Invalid:
                pass
            first_problem(value)

        return check

    def _union(self, schema: Mapping[str, Any]) -> Validator:
        branches = [self.deref(b) for b in schema.get("anyOf", schema.get("oneOf", ()))]
        if self.body and len(branches) == 2 and {"type": "null"} in branches:
            # A nullable field of a body: its type error names the other branch's types
            # (null is not named in a body), which is what that branch raises itself.
            inner = self.compile(branches[branches[0] == {"type": "null"}])

            def nullable(value: Any) -> None:
                if value is not None:
                    inner(value)

            return nullable
        compiled = [self.compile(b) for b in branches]
        kinds = [self.accepted_types(b) for b in branches]
        by_type: dict[str, list[int]] = {}
        for index, accepted in enumerate(kinds):
            for kind in accepted:
                by_type.setdefault(kind, []).append(index)
        expected = sorted(set().union(*kinds), key=_TYPE_ORDER.index) if kinds else []
        if self.body and len(expected) > 1 and "null" in expected:
            expected.remove("null")
        if self.body and "number" in expected and "integer" in expected:
            expected.remove("integer")  # a number may be an integer: "expected a number"
        object_dispatch = self._object_dispatch(branches, compiled, by_type.get("object", []))
        # Where unknown keys are kept, an object that several undiscriminated branches could
        # take goes to the one that declares most of its keys (tried first), so a kept key
        # never makes it pass as a branch it was not meant for.
        declared = [frozenset(self.deref(b).get("properties") or ()) for b in branches]
        prefer_known = self.keep_unknown and len(by_type.get("object", ())) > 1

        def known_first(value: dict[str, Any], candidates: list[int]) -> list[int]:
            return sorted(candidates, key=lambda i: -len(declared[i].intersection(value)))

        # The common case at the cost of one lookup: the Python type of a decoded JSON value
        # that only one branch (or the object dispatch) can take.
        direct: dict[type, Validator] = {}
        for python_type, json_type in _PYTHON_TYPES:
            found = by_type.get(json_type)
            if found is None and json_type == "integer":
                found = by_type.get("number")
            if found and len(found) == 1:
                only = compiled[found[0]]
                # A union inside a union (a $ref'd oneOf): go straight to its own shortcut.
                direct[python_type] = self._direct.get(only, {}).get(python_type, only)
            elif found and json_type == "object" and object_dispatch is not None:
                direct[python_type] = object_dispatch
        shortcut = direct.get

        def check(value: Any) -> None:
            fast = shortcut(type(value))
            if fast is not None:
                fast(value)
                return
            kind = _type_of(value)
            candidates = by_type.get(kind)
            if candidates is None and kind == "integer":
                candidates = by_type.get("number")
            if not candidates:
                raise Invalid(lambda p: errors.invalid_type(p, expected, value))
            if len(candidates) == 1:
                compiled[candidates[0]](value)
                return
            if kind == "object" and object_dispatch is not None:
                object_dispatch(value)
                return
            deepest: Invalid | None = None
            if prefer_known and kind == "object":
                candidates = known_first(value, candidates)
            for index in candidates:
                try:
                    compiled[index](value)
                    return
                except Invalid as failure:
                    if deepest is None or len(failure.path) > len(deepest.path):
                        deepest = failure
            assert deepest is not None
            raise deepest

        self._direct[check] = direct
        return check

    def _object_dispatch(
        self, branches: list[Mapping[str, Any]], compiled: list[Validator], indices: list[int]
    ) -> Validator | None:
        """Dispatch object branches on their ``type`` property when every branch has one."""
        if len(indices) < 2:
            return None
        table: dict[str, Validator] = {}
        for index in indices:
            values = self.discriminator_values(branches[index])
            if not values:
                return None
            for value in values:
                table.setdefault(value, compiled[index])
        supported = sorted(table)
        # An unknown item type is reported on the item (the param names the object); in a
        # request body (``text.format``, ``tools[0]``) OpenAI names the ``type`` key.
        on_type = self.body

        def dispatch(value: dict[str, Any]) -> None:
            tag = value.get("type")
            if tag is None:
                raise _missing("type")
            target = table.get(tag) if isinstance(tag, str) else None
            if target is None:
                failure = Invalid(lambda p: errors.invalid_value(p, tag, supported))
                if on_type:
                    failure.path.append("type")
                raise failure
            target(value)

        return dispatch


_TYPE_ORDER = ["string", "integer", "number", "boolean", "object", "array", "null"]
# Schemas a body's one pass checks by Python type alone (``{"type": "string"}`` and the like).
_SIMPLE: dict[str, type] = {"string": str, "boolean": bool, "integer": int, "object": dict}
_ANNOTATIONS = frozenset(("type", "description", "default", "title"))


def _simple_type(schema: Mapping[str, Any]) -> type | None:
    """The Python type that alone decides whether a value fits ``schema``, if one does."""
    declared = schema.get("type")
    if isinstance(declared, str) and schema.keys() <= _ANNOTATIONS:
        return _SIMPLE.get(declared)
    return None


_PYTHON_TYPES: tuple[tuple[type, str], ...] = (
    (str, "string"),
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (type(None), "null"),
    (list, "array"),
    (dict, "object"),
)


def _check_required(value: Any, required: tuple[str, ...]) -> None:
    """An object (dict) holding every ``required`` key, first of an object's checks."""
    if type(value) is not dict:
        raise Invalid(lambda p: errors.invalid_type(p, ["object"], value))
    for key in required:
        if key not in value:
            raise _missing(key)


def _missing(key: str) -> Invalid:
    failure = Invalid(errors.missing_parameter)
    failure.path.append(key)
    return failure


def _unknown(key: str) -> Invalid:
    failure = Invalid(errors.unknown_parameter)
    failure.path.append(key)
    return failure


def _name_too_long(key: str, maximum: int) -> ErrorFactory:
    def make(path: str) -> ApiError:
        return errors.property_name_too_long(path, key, maximum)

    return make
