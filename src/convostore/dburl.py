"""What ``--db`` names: a SQLite file or a PostgreSQL database, never a guess.

Three spellings are accepted: a plain file path (``convostore.db``, ``/var/lib/x.db``),
the usual URL for the same file (``sqlite:///x.db`` is the relative path ``x.db``,
``sqlite:////var/lib/x.db`` the absolute one, as SQLAlchemy writes them) and a
PostgreSQL URL (``postgresql://`` or ``postgres://``). Any other ``scheme://`` is
refused: a typo such as ``postgresq://`` or a ``mysql://`` URL must not become a
file path and create folders.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
MEMORY = ":memory:"


class DatabaseUrlError(ValueError):
    """``--db`` is neither a file path nor a URL of a database convostore speaks."""


@dataclass(frozen=True, slots=True)
class Database:
    backend: Literal["sqlite", "postgres"]
    target: str  # the SQLite file path (or ":memory:"), or the PostgreSQL URL


def parse(db: str) -> Database:
    """Where ``db`` points. Raises :class:`DatabaseUrlError` for an unknown scheme."""
    if db in ("", MEMORY):
        return Database("sqlite", MEMORY)
    found = _SCHEME.match(db)
    if found is None:
        return Database("sqlite", db)
    scheme = found.group(1).lower()
    if scheme in POSTGRES_SCHEMES:
        return Database("postgres", db)
    if scheme == "sqlite":
        rest = db[found.end() :]
        if not rest.startswith("/") or rest == "/":
            raise DatabaseUrlError(
                f"{db!r}: a SQLite URL has three slashes and a path, e.g. sqlite:///convostore.db "
                "(relative) or sqlite:////var/lib/convostore/convostore.db (absolute)"
            )
        return Database("sqlite", rest[1:].partition("?")[0])
    near = difflib.get_close_matches(scheme, [*POSTGRES_SCHEMES, "sqlite"], n=1, cutoff=0.6)
    hint = f" (did you mean {near[0]}://?)" if near else ""
    raise DatabaseUrlError(
        f"unknown database URL scheme {scheme + '://'!r}{hint}: convostore stores on SQLite "
        "(a file path, or sqlite:///path) or PostgreSQL (postgresql://user@host:5432/dbname)"
    )
