"""Versioned schema migrations, shipped as numbered SQL files per backend.

``store/migrations/<backend>/NNNN_name.sql``: applied in order, each in its own
transaction, and recorded in the ``schema_migrations`` table of the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load(backend: str) -> list[Migration]:
    folder = resources.files("convostore.store").joinpath("migrations", backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        found.append(
            Migration(int(number), rest.removesuffix(".sql"), split(entry.read_text("utf-8")))
        )
    found.sort(key=lambda m: m.version)
    return found


def split(script: str) -> tuple[str, ...]:
    """Statements of a migration file: separated by ``;`` at the end of a line."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    parts = "\n".join(lines).split(";\n")
    return tuple(p.strip().rstrip(";") for p in parts if p.strip())
