"""Rewrite the settings table in docs/settings.md from the fields of convostore.settings.Settings.

tests/test_settings_doc.py fails when the file and the code disagree.
"""

from __future__ import annotations

from pathlib import Path

from convostore.settings import markdown_table

DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def render(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{markdown_table()}{END}{tail}"


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text()))
    print(f"updated {DOC}")
