"""docs/settings.md shows exactly the settings the code has."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_settings_doc_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_settings_doc", ROOT / "scripts" / "gen_settings_doc.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "docs" / "settings.md").read_text()
    assert text == module.render(text), "run: python scripts/gen_settings_doc.py"
