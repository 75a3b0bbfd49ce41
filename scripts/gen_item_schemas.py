"""Regenerate src/convostore/items/schemas.json from the OpenAPI excerpt.

The server validates and normalises items with the spec's own schemas, compiled at
start (convostore.items.compiler). The package does not read spec/ at run time, so
this script keeps the component schemas reachable from `InputItem` and
`ConversationItem`, drops annotations (descriptions, examples, titles, x-* keys; `default` stays, the
server fills required output fields from it), and
writes them as data. tests/items/test_schemas_file.py fails when the file is stale.

    python scripts/gen_item_schemas.py [path/to/openai-conversations.openapi.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

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


def render(schemas: dict[str, Any]) -> str:
    lines = [
        json.dumps(name) + ": " + json.dumps(body, sort_keys=True) for name, body in schemas.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main() -> None:
    spec_path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SPEC
    spec = json.loads(spec_path.read_text())
    OUTPUT.write_text(render(build(spec)))
    print(f"wrote {OUTPUT.relative_to(ROOT)} from {spec_path}")


if __name__ == "__main__":
    main()
