"""The registry is driven by the spec, and the packaged schema file is current."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from convostore.items import include
from convostore.items.registry import Registry, load_schemas
from tests import spec_schema

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # type: ignore[no-untyped-def]
    return script("gen_item_schemas")


def script(name: str):  # type: ignore[no-untyped-def]
    """A module of scripts/ (they import their siblings by name)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def pinned(package: str) -> str:
    """The version pyproject.toml's test extras pin ``package`` to."""
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(rf'"{re.escape(package)}==([0-9][^"]*)"', text)
    assert found, f"{package} is not pinned with == in pyproject.toml"
    return found.group(1)


def test_the_installed_sdk_is_the_pinned_one() -> None:
    import openai

    assert openai.__version__ == pinned("openai"), "pip install -e '.[test]'"


def test_packaged_schemas_are_the_excerpt_widened_by_the_pinned_sdk() -> None:
    gen = _generator()
    spec = json.loads((spec_schema.spec_dir() / spec_schema.SPEC_FILE).read_text())
    schemas, _ = gen.build_widened(spec, gen.sdk_unions())
    packaged = (ROOT / "src" / "convostore" / "items" / "schemas.json").read_text()
    assert packaged == gen.render(schemas), "run: python scripts/gen_item_schemas.py"


def test_widening_only_adds() -> None:
    """Every rule of the excerpt is still in the widened file: what was valid stays valid,
    what was refused for a known key stays refused (new keys, values, members aside)."""
    gen = _generator()
    spec = json.loads((spec_schema.spec_dir() / spec_schema.SPEC_FILE).read_text())
    excerpt = gen.build(spec)
    widened = load_schemas()

    def contains(old: object, new: object, where: str) -> None:
        if isinstance(old, dict):
            assert isinstance(new, dict), where
            if "anyOf" in new and "anyOf" not in old and "oneOf" not in old:
                assert old in new["anyOf"] or any(
                    isinstance(b, dict) and all(k in b for k in old) for b in new["anyOf"]
                ), where
                return
            for key, value in old.items():
                assert key in new, f"{where}.{key}"
                contains(value, new[key], f"{where}.{key}")
        elif isinstance(old, list):
            assert isinstance(new, list) and len(new) >= len(old), where
            for index, value in enumerate(old):
                contains(value, new[index], f"{where}[{index}]")
        else:
            assert old == new, where

    for name, schema in excerpt.items():
        contains(schema, widened[name], name)


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
    sdk = script("sdk_types")
    doc = sdk.Document(sdk.union("input"))
    for _, member in doc.members():
        names.update(sdk.type_values(doc, member))
    assert set(Registry().types) == names


def test_include_values_are_the_spec_enum() -> None:
    spec_enum = tuple(load_schemas()["IncludeEnum"]["enum"])
    assert spec_enum == include.VALUES


def test_filled_keys_have_one_order_in_every_process() -> None:
    """A filled part's keys follow the schema's ``required`` list, so two processes store
    the same bytes for the same input (a set's order follows PYTHONHASHSEED)."""
    program = (
        "import json\n"
        "from convostore.items.registry import Registry\n"
        "raw = {'type': 'message', 'role': 'assistant',\n"
        "       'content': [{'type': 'output_text', 'text': 'a'}]}\n"
        "print(json.dumps(Registry().prepare(raw, 'items[0]')))\n"
    )
    seen = set()
    for seed in ("0", "1", "2", "3", "4", "5"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
        )
        seen.add(result.stdout)
    assert len(seen) == 1, seen
