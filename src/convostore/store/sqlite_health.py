"""The health of a SQLite file: corruption noticed while serving, integrity checks, backups.

*Corruption.* When SQLite reports the file damaged (``SQLITE_CORRUPT``, "database disk
image is malformed", or ``SQLITE_NOTADB``), :class:`Corruption` remembers it for the
life of the process: ``/readyz`` fails with the reason, every later write is refused
with 503 before it touches the file (a write into a damaged b-tree can spread the
damage), and the fact is logged at most once a minute, however often requests or the
maintenance thread run into it.

*Checks and backups* for ``convostore check`` and ``convostore backup``: SQLite's
``PRAGMA integrity_check`` and its online backup API, which copies a consistent snapshot
of a live database (one read transaction; in WAL mode writers go on meanwhile).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from convostore.store.base import StoreUnavailable

log = logging.getLogger("convostore")

LOG_EVERY_SECONDS = 60.0
# sqlite3.DatabaseError.sqlite_errorcode (primary code) of a damaged file.
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26


def is_corruption(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        isinstance(exc, sqlite3.DatabaseError)
        and code is not None
        and (code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB))
    )


class Throttle:
    """True at most once per ``seconds`` (for log lines that would otherwise repeat)."""

    def __init__(
        self, seconds: float = LOG_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic
    ):
        self.seconds = seconds
        self.clock = clock
        self._last: float | None = None

    def due(self) -> bool:
        now = self.clock()
        if self._last is not None and now - self._last < self.seconds:
            return False
        self._last = now
        return True


class Corruption:
    """Whether this process has seen the file damaged (thread-safe enough: one write of
    a reference)."""

    def __init__(self, path: str):
        self.path = path
        self.reason: str | None = None
        self._throttle = Throttle()

    def noticed(self, exc: BaseException) -> None:
        self.reason = f"{type(exc).__name__}: {exc}"
        if self._throttle.due():
            log.error(
                "the SQLite database %s is corrupt (%s): writes are refused with 503 and "
                "/readyz fails; run `convostore check --db %s` and restore from a backup "
                "(docs/operations.md). Logged at most once a minute.",
                self.path,
                self.reason,
                self.path,
            )

    def refuse_writes(self) -> None:
        if self.reason is not None:
            raise StoreUnavailable(f"the database file is corrupt ({self.reason})")


def integrity_problems(path: str | Path, *, limit: int = 100) -> list[str]:
    """``PRAGMA integrity_check``: an empty list when the file is sound."""
    db = sqlite3.connect(_read_only(path), uri=True)
    try:
        rows = db.execute(f"PRAGMA integrity_check({int(limit)})").fetchall()
    except sqlite3.DatabaseError as exc:
        return [f"{type(exc).__name__}: {exc}"]
    finally:
        db.close()
    found = [str(row[0]) for row in rows]
    return [] if found == ["ok"] else found


def backup(path: str | Path, to: str | Path) -> int:
    """Copy a consistent snapshot of the live database at ``path`` to the new file ``to``
    (written beside it, then renamed: a failed backup leaves no half file). Returns the
    size in bytes."""
    target = Path(to).resolve()
    partial = target.with_name(target.name + ".partial")
    source = sqlite3.connect(_read_only(path), uri=True)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # every page in one step: one snapshot
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            copy.close()
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return target.stat().st_size


def _read_only(path: str | Path) -> str:
    return f"file:{quote(str(Path(path).resolve()))}?mode=ro"
