"""Work that SQLite would otherwise do inside requests, done by a background thread.

*Checkpoints.* In WAL mode a commit appends pages to the write-ahead log; a checkpoint
copies them into the database file and, with ``synchronous=NORMAL``, fsyncs both. SQLite
runs one inside whichever commit crosses 1,000 WAL pages, so that request pays for the
fsyncs. The serving connection turns that off (``wal_autocheckpoint = 0``) and this
thread runs a ``PASSIVE`` checkpoint every ``interval`` seconds. Durability is unchanged:
a checkpoint only moves content the WAL already holds.

*Search indexing* (migration 0014). Appends only queue their items in
``item_text_pending``; this thread indexes them. For each queued item it first reads
the text, outside any write transaction: one ``json_tree`` pass over the body (linear
in its size; SQLite works without the GIL), keeping at most
:data:`~convostore.store.search_text.TEXT_LIMIT` characters; then it writes the words
of a batch of items (at most :data:`BATCH` items and :data:`BATCH_WORDS` characters of
words) in one short ``BEGIN IMMEDIATE`` transaction. Between two batches it leaves the
lock free, longer while a writer of the serving connection is waiting for it
(:attr:`Maintenance.writer_waiting`). A search waits (asynchronously) only for its own
owner's queued items, and asks this thread to take them first (:meth:`Maintenance.hurry`).
An item whose body is not valid JSON is indexed as having no text, so no queued row can
stop the queue, across restarts too.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass

from convostore.store.search_text import TEXT_LIMIT, TEXT_PART_TYPES, indexed_words, owner_tag
from convostore.store.sqlite_health import Corruption, Throttle, is_corruption

log = logging.getLogger("convostore")

BATCH = 200
BATCH_WORDS = 256 * 1024  # characters of words written by one transaction (~ a few ms)
BATCH_BODIES = 4 * 1024 * 1024  # bytes of bodies read for one batch

_QUEUED = (
    "SELECT p.ticket, p.item, p.project, p.user_key, i.type, length(i.body)"
    " FROM item_text_pending p LEFT JOIN items i ON i.rowid = p.item{where}"
    " ORDER BY p.ticket LIMIT ?"
)

# The searchable parts of an item, in document order: the objects holding a `type` and a
# string `text` or `refusal` (docs/search.md). One json_tree pass, grouped by parent.
_PARTS = (
    "SELECT max(CASE WHEN key = 'type' THEN atom END),"
    " max(CASE WHEN key = 'text' AND type = 'text' THEN atom END),"
    " max(CASE WHEN key = 'refusal' AND type = 'text' THEN atom END)"
    " FROM json_tree(replace(CAST((SELECT body FROM items WHERE rowid = ?) AS TEXT),"
    " '\\u0000', '\\u0020'))"
    " WHERE key IN ('type', 'text', 'refusal') GROUP BY parent ORDER BY min(id)"
)

# A function_call's `arguments`, a function_call_output's `output`, when a string.
_TOP = (
    "SELECT json_extract(doc, ?2) FROM (SELECT replace(CAST(body AS TEXT),"
    " '\\u0000', '\\u0020') AS doc FROM items WHERE rowid = ?1) WHERE json_type(doc, ?2) = 'text'"
)
_TOP_FIELD = {"function_call": "$.arguments", "function_call_output": "$.output"}


@dataclass(frozen=True, slots=True)
class Extracted:
    ticket: int
    item: int
    words: str  # empty: nothing to index


def texts(db: sqlite3.Connection, item: int, item_type: str) -> list[str]:
    """The searchable texts of an item, up to :data:`TEXT_LIMIT` characters in all."""
    found: list[str] = []
    size = 0
    cursor = db.execute(_PARTS, (item,))
    try:
        for kind, text, refusal in cursor:
            value = refusal if kind == "refusal" else text if kind in TEXT_PART_TYPES else None
            if value is None:
                continue
            found.append(value)
            size += len(value) + 1
            if size > TEXT_LIMIT:
                return found
    finally:
        cursor.close()
    field = _TOP_FIELD.get(item_type)
    if field is not None:
        row = db.execute(_TOP, (item, field)).fetchone()
        if row is not None and isinstance(row[0], str):
            found.append(row[0])
    return found


def extract(db: sqlite3.Connection, owner: tuple[str, str] | None = None) -> list[Extracted]:
    """Read and extract a batch of queued items (of ``owner`` only, if given), outside any
    write transaction."""
    where, args = (
        ("", []) if owner is None else (" WHERE p.project = ? AND p.user_key = ?", list(owner))
    )
    queued = db.execute(_QUEUED.format(where=where), (*args, BATCH)).fetchall()
    batch: list[Extracted] = []
    bodies = words = 0
    for ticket, item, project, user_key, item_type, length in queued:
        if batch and (bodies + (length or 0) > BATCH_BODIES or words > BATCH_WORDS):
            break
        bodies += length or 0
        found: list[str] = []
        if item_type is not None:
            try:
                found = texts(db, item, item_type)
            except sqlite3.OperationalError as exc:  # not JSON: indexed without text
                if "JSON" not in str(exc):
                    raise
                log.warning("search index: item rowid %s has no readable JSON: %s", item, exc)
        text = indexed_words(owner_tag(project, user_key), found) if found else ""
        words += len(text)
        batch.append(Extracted(ticket, item, text))
    return batch


def store(db: sqlite3.Connection, batch: list[Extracted]) -> None:
    """Write an extracted batch; the caller holds a write transaction. An item deleted
    since it was read (its ticket gone) is skipped."""
    for done in batch:
        gone = db.execute("DELETE FROM item_text_pending WHERE ticket = ?", (done.ticket,))
        if gone.rowcount and done.words:
            db.execute(
                "INSERT INTO item_words (rowid, words) VALUES (?, ?)", (done.item, done.words)
            )
            db.execute(
                "INSERT INTO item_text (rowid, words) VALUES (?, ?)", (done.item, done.words)
            )


class Maintenance:
    def __init__(
        self,
        path: str,
        *,
        synchronous: str,
        interval: float = 0.1,
        corruption: Corruption | None = None,
    ):
        self.path = path
        self.corruption = corruption or Corruption(path)
        self._warn = Throttle()  # a failure repeats every round: say it once a minute
        self.synchronous = synchronous
        self.interval = interval
        #: Set by the serving connection while one of its writes waits for the lock.
        self.writer_waiting = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._hurried: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="convostore-maintenance", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def hurry(self, owner: tuple[str, str]) -> None:
        """Index ``owner``'s queued items first, now (a search of theirs is waiting)."""
        with self._lock:
            if owner not in self._hurried:
                self._hurried.append(owner)
        self._wake.set()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout = 1000")
            db.execute(f"PRAGMA synchronous = {self.synchronous}")
            while not self._stop.is_set():
                self._wake.wait(self.interval)
                self._wake.clear()
                try:
                    self._index(db)
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # a full disk, a long lock: retried next round
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    if is_corruption(exc):
                        self.corruption.noticed(exc)
                    elif self._warn.due():
                        log.warning(
                            "background maintenance of %s failed: %s (retried every %.1f s; "
                            "logged at most once a minute)",
                            self.path,
                            exc,
                            self.interval,
                        )
        finally:
            db.close()

    def _next_owner(self) -> tuple[str, str] | None:
        with self._lock:
            return self._hurried[0] if self._hurried else None

    def _index(self, db: sqlite3.Connection) -> None:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'item_words'").fetchone() is None:
            return  # not migrated yet
        while not self._stop.is_set():
            owner = self._next_owner()
            batch = extract(db, owner)
            if not batch:
                if owner is None:
                    return
                with self._lock:
                    self._hurried.remove(owner)
                continue
            # Let a waiting writer of the serving connection in first (for up to 50 ms).
            for _ in range(50):
                if not self.writer_waiting.is_set():
                    break
                time.sleep(0.001)
            started = time.monotonic()
            db.execute("BEGIN IMMEDIATE")
            try:
                store(db, batch)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            # The lock stays free at least as long as this batch held it.
            self._stop.wait(max(0.0005, time.monotonic() - started))
