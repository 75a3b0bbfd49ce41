"""The registry is driven by the spec, and the packaged schema file is current."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from convostore.items import include
from convostore.items.registry import Registry, load_schemas
from tests import spec_schema

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_item_schemas.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packaged_schemas_match_the_spec() -> None:
    gen = _generator()
    spec = json.loads((spec_schema.spec_dir() / spec_schema.SPEC_FILE).read_text())
    expected = gen.render(gen.build(spec))
    packaged = (ROOT / "src" / "convostore" / "items" / "schemas.json").read_text()
    assert packaged == expected, "run: python scripts/gen_item_schemas.py"


def test_registry_knows_every_input_type() -> None:
    spec = json.loads((spec_schema.spec_dir() / spec_schema.SPEC_FILE).read_text())
    schemas = spec["components"]["schemas"]
    names: set[str] = set()

    def collect(node: dict) -> None:  # type: ignore[type-arg]
        if "$ref" in node:
            node = schemas[node["$ref"].rsplit("/", 1)[1]]
        if "oneOf" in node:
            for member in node["oneOf"]:
                collect(member)
            return
        type_schema = node["properties"]["type"]
        for branch in type_schema.get("anyOf", [type_schema]):
            names.update(branch.get("enum", []))

    collect(schemas["InputItem"])
    assert set(Registry().types) == names


def test_include_values_are_the_spec_enum() -> None:
    spec_enum = tuple(load_schemas()["IncludeEnum"]["enum"])
    assert spec_enum == include.VALUES
