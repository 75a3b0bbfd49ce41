"""Versioned schema migrations, shipped as numbered SQL files per backend.

``store/migrations/<backend>/NNNN_name.sql``: applied in order, each in its own
transaction, and recorded in the ``schema_migrations`` table of the database.
"""

from __future__ import annotations

from collections.abc import Collection
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


def pending(backend: str, done: Collection[int]) -> list[Migration]:
    """The migrations of ``backend`` whose versions are not in ``done`` (those the
    database recorded), in order: both backends apply these."""
    return [migration for migration in load(backend) if migration.version not in done]


def split(script: str) -> tuple[str, ...]:
    """Statements of a migration file: separated by ``;`` at the end of a line.

    A ``;`` at a line end inside a ``CREATE TRIGGER … BEGIN … END;`` block (SQLite) or inside a
    ``$$``-quoted function body (PostgreSQL) belongs to the statement around it.
    """
    statements: list[str] = []
    current: list[str] = []
    in_trigger = in_dollars = False
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") and not in_dollars:
            continue
        current.append(line)
        if line.count("$$") % 2:
            in_dollars = not in_dollars
        if not in_dollars and stripped.upper().endswith("BEGIN"):
            in_trigger = True
        if in_dollars or not stripped.endswith(";"):
            continue
        if in_trigger and not stripped.upper().endswith("END;"):
            continue
        in_trigger = False
        statements.append("\n".join(current).strip().rstrip(";"))
        current = []
    if "\n".join(current).strip():
        statements.append("\n".join(current).strip().rstrip(";"))
    return tuple(s for s in statements if s)
