"""What the installed ``openai`` package can send or read that convostore would not accept.

For every member of the SDK's ``ResponseInputItemParam`` union (what clients send) this
makes one minimal item per item type, field, union branch and enum value reachable from
it (scripts/sdk_types.py) and runs each through the server's own item validation
(``Registry.prepare``, with ``unknown_item_fields=refuse``: a field the server merely keeps
verbatim is not one it knows). Members of ``ConversationItem`` (what clients read back)
go through the server's compiled ``ConversationItem`` schema, and the fields of the
create-conversation and create-items params through the server's request-body
validation. Every refusal that is about a type, a field or a value is listed, once per
place; refusals of lengths, ranges and patterns are not (the SDK's types carry none).
Item types that are instructions to the Responses API (``compaction_trigger``) are
validated, and their refusal to be stored (CONTRACT.md §4.1) is not drift.

    python scripts/sdk_drift.py [--schemas path/to/schemas.json]

Prints one line per problem and exits 1 when there is any (0 and "no drift" otherwise).
tests/items/test_sdk_drift.py runs it against the pinned SDK.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sdk_types  # a sibling script module

from convostore import errors
from convostore.items.compiler import Compiler, Invalid
from convostore.items.registry import Registry, load_schemas
from convostore.service import bodies

# What the contract decided differently from the SDK's types, by probe label: listed as
# notes, not as drift.
DECIDED = {
    "item_reference": "CONTRACT.md §4.1: an item with no `type` is an easy message (role "
    "required), as OpenAI answers it; `type: null` or `item_reference` makes it a reference",
    "item_reference.id": "the same probe as item_reference (no `type`)",
}

# Refusals that say nothing about types, fields or values the server lacks.
NOT_DRIFT = frozenset(
    {
        "array_above_max_length",
        "array_below_min_length",
        "integer_above_max_value",
        "integer_below_min_value",
        "object_above_max_properties",
        "property_name_above_max_length",
        "string_above_max_length",
        "string_below_min_length",
    }
)
PATTERN = "string does not match pattern"


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # input, output, create_conversation, create_items
    label: str  # e.g. function_call.async, web_search_call.status='incomplete'
    message: str

    def __str__(self) -> str:
        return f"{self.where:<20} {self.label:<60} {self.message}"


def _is_drift(error: errors.ApiError, *, output: bool) -> bool:
    if error.code in NOT_DRIFT or PATTERN in error.message:
        return False
    # The server fills what its output requires (D5, D18): not a lack of the server's.
    return not (output and error.code == "missing_required_parameter")


class Drift:
    def __init__(self, schemas: Mapping[str, Any] | None = None):
        self.schemas = schemas if schemas is not None else load_schemas()
        self.registry = Registry(self.schemas, keep_unknown=False)
        compiler = Compiler(self.schemas, keep_unknown=False)
        self.output = compiler.compile({"$ref": "#/components/schemas/ConversationItem"})
        self.problems: list[Problem] = []
        self._seen: set[tuple[str, str, str | None, str | None]] = set()

    def _report(self, where: str, tag: str, label: str, error: errors.ApiError) -> None:
        if where == "input" and label in DECIDED:
            return
        key = (where, tag, error.param, error.code)
        if key not in self._seen:
            self._seen.add(key)
            self.problems.append(Problem(where, label, error.message))

    def _id_for(self, tag: str) -> str:
        kind = self.registry.types.get(tag)
        if kind is None:
            return f"{tag}_probe"
        return f"{kind.client_prefix or kind.id_prefix}_probe"

    def _probes(self, doc: sdk_types.Document) -> Iterator[tuple[str, str, Any]]:
        examples = sdk_types.Examples(doc)
        for _, member in doc.members():
            tags = sdk_types.type_values(doc, member)
            tag = tags[0] if tags else "?"
            for label, probe in examples.variants(member):
                if isinstance(probe, dict) and isinstance(probe.get("id"), str):
                    probe["id"] = self._id_for(tag)
                yield tag, tag + label, probe

    def check_input(self, doc: sdk_types.Document) -> None:
        for tag, label, probe in self._probes(doc):
            kind = self.registry.types.get(tag)
            try:
                if kind is not None and not kind.storable:
                    try:
                        kind.validate(copy.deepcopy(probe))
                    except Invalid as failure:
                        raise failure.at("items[0]") from None
                else:
                    self.registry.prepare(copy.deepcopy(probe), "items[0]")
            except errors.ApiError as error:
                if _is_drift(error, output=False):
                    self._report("input", tag, label, error)

    def check_output(self, doc: sdk_types.Document) -> None:
        for tag, label, probe in self._probes(doc):
            if label.endswith("=null"):
                # pydantic reads every optional field as nullable; the server leaves out
                # what its output schema does not allow, so a reader never meets it.
                continue
            try:
                self.output(probe)
            except Invalid as failure:
                error = failure.at("item")
                if _is_drift(error, output=True):
                    self._report("output", tag, label, error)

    def check_params(self, kind: str, schema: dict[str, Any]) -> None:
        """The params' fields other than ``items`` (whose members ``check_input`` covers)."""
        doc = sdk_types.Document(schema)
        examples = sdk_types.Examples(doc)
        validate = BODY_CHECKS[kind]
        query = sdk_types.QUERY_FIELDS.get(kind, frozenset())
        for key, sub in doc.root.get("properties", {}).items():
            if key == "items":
                continue
            for label, value in examples.variants(sub, key):
                try:
                    if key in query:
                        _check_query(kind, key, value)
                    else:
                        validate({"items": [], key: value})
                except errors.ApiError as error:
                    if _is_drift(error, output=False):
                        self._report(kind, key, key + label, error)

    def run(self) -> list[Problem]:
        self.check_input(sdk_types.Document(sdk_types.union("input")))
        self.check_output(sdk_types.Document(sdk_types.union("output")))
        for kind in sdk_types.PARAMS:
            self.check_params(kind, sdk_types.params(kind))
        return self.problems


def _check_query(kind: str, key: str, value: Any) -> None:
    from convostore.items import include

    if key == "include":
        include.parse(value if isinstance(value, list) else [value])
        return
    raise errors.unknown_parameter(key)


BODY_CHECKS: dict[str, Callable[[Any], Any]] = {
    "create_conversation": bodies.CREATE_CONVERSATION.check,
    "create_items": bodies.CREATE_ITEMS.check,
}


def main() -> int:
    args = sys.argv[1:]
    schemas = None
    if "--schemas" in args:
        schemas = json.loads(Path(args[args.index("--schemas") + 1]).read_text())
    problems = Drift(schemas).run()
    print(f"openai=={sdk_types.version()}: {len(problems)} item types, fields or values refused")
    for problem in problems:
        print(problem)
    if not problems:
        print("no drift")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
