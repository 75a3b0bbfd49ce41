"""Work that SQLite would otherwise do inside requests, done by a background thread.

*Checkpoints.* In WAL mode a commit appends pages to the write-ahead log; a checkpoint
copies them into the database file and, with ``synchronous=NORMAL``, fsyncs both. SQLite
runs one inside whichever commit crosses 1,000 WAL pages, so that request pays for the
fsyncs. The serving connection turns that off (``wal_autocheckpoint = 0``) and this
thread runs a ``PASSIVE`` checkpoint every ``interval`` seconds. Durability is unchanged:
a checkpoint only moves content the WAL already holds.

*Search indexing* (migrations 0014, 0100). A write of items only queues them in
``item_text_pending``: one row per write naming the conversation and the range of
positions written; this thread indexes them. For each queued item it first reads
the text, outside any write transaction: one ``json_tree`` pass over the body (linear
in its size; SQLite works without the GIL), keeping at most
:data:`~convostore.store.search_text.TEXT_LIMIT` characters (the items of a range whose
body is at most :data:`SMALL` bytes, whose text is shorter than that, in one statement;
a larger one alone, so that the cut can stop it); then it writes the words of a batch of
items (at most :data:`BATCH` items and :data:`BATCH_WORDS` characters of words) in one
short ``BEGIN IMMEDIATE`` transaction, two ``executemany``. Between two batches it leaves the
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
from typing import Any

from convostore.store.search_text import TEXT_LIMIT, TEXT_PART_TYPES, indexed_words, owner_tag
from convostore.store.sqlite_health import Corruption, Throttle, is_corruption

log = logging.getLogger("convostore")

BATCH = 200
BATCH_WORDS = 256 * 1024  # characters of words written by one transaction (~ a few ms)
BATCH_BODIES = 4 * 1024 * 1024  # bytes of bodies read for one batch
SMALL = 16 * 1024  # bytes of body: an item read with the other small ones of its range

# Queued ranges (migration 0100: one per write of items), oldest first.
_QUEUED = (
    "SELECT ticket, conv, first_seq, last_seq, project, user_key"
    " FROM item_text_pending{where} ORDER BY ticket LIMIT ?"
)

_MIGRATED = "SELECT 1 FROM sqlite_master WHERE name = 'item_text_pending_conv'"

# The items standing in a queued range, by items_conv_seq.
_RANGE = (
    "SELECT rowid, seq, type, length(body) FROM items"
    " WHERE conv = ? AND seq BETWEEN ? AND ? ORDER BY seq LIMIT ?"
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

# The same, for the small items of a range at once (one statement, not one per item).
_SMALL_PARTS = (
    "SELECT i.rowid, max(CASE WHEN t.key = 'type' THEN t.atom END),"
    " max(CASE WHEN t.key = 'text' AND t.type = 'text' THEN t.atom END),"
    " max(CASE WHEN t.key = 'refusal' AND t.type = 'text' THEN t.atom END)"
    " FROM items i, json_tree(replace(CAST(i.body AS TEXT), '\\u0000', '\\u0020')) t"
    " WHERE i.conv = ?1 AND i.seq BETWEEN ?2 AND ?3 AND length(i.body) <= ?4"
    " AND t.key IN ('type', 'text', 'refusal')"
    " GROUP BY i.rowid, t.parent ORDER BY i.rowid, min(t.id)"
)

# A function_call's `arguments`, a function_call_output's `output`, when a string.
_TOP = (
    "SELECT json_extract(doc, ?2) FROM (SELECT replace(CAST(body AS TEXT),"
    " '\\u0000', '\\u0020') AS doc FROM items WHERE rowid = ?1) WHERE json_type(doc, ?2) = 'text'"
)
_TOP_FIELD = {"function_call": "$.arguments", "function_call_output": "$.output"}


@dataclass(frozen=True, slots=True)
class Extracted:
    item: int  # its rowid
    words: str  # empty: nothing to index


@dataclass(slots=True)
class Taken:
    """What was read of one queued range: its items from ``first_seq`` up to, not
    including, ``next_seq`` (past ``last_seq``: the whole range)."""

    ticket: int
    conv: int
    first_seq: int
    last_seq: int
    next_seq: int
    items: list[Extracted]

    @property
    def done(self) -> bool:
        return self.next_seq > self.last_seq


def _part_text(kind: Any, text: Any, refusal: Any) -> str | None:
    """A part's searchable text (a text atom of a part of a searchable type), if any."""
    return refusal if kind == "refusal" else text if kind in TEXT_PART_TYPES else None


def texts(
    db: sqlite3.Connection, item: int, item_type: str, parts: list[str] | None = None
) -> list[str]:
    """The searchable texts of an item, up to :data:`TEXT_LIMIT` characters in all
    (``parts``: its parts' texts, already read by :func:`small_parts`)."""
    found: list[str] = []
    if parts is not None:
        found = parts
    else:
        size = 0
        cursor = db.execute(_PARTS, (item,))
        try:
            for row in cursor:
                value = _part_text(*row)
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


def small_parts(db: sqlite3.Connection, conv: int, rows: list[Any]) -> dict[int, list[str]]:
    """The parts' texts of the items of ``rows`` (rowid, seq, type, length, in seq order,
    of conversation ``conv``) whose body is at most :data:`SMALL` bytes, read by one
    statement; {} when one is not JSON (each is then read alone). Their text is shorter
    than their body, so below :data:`TEXT_LIMIT`: nothing to cut."""
    small: dict[int, list[str]] = {row[0]: [] for row in rows if row[3] <= SMALL}
    if len(small) < 2:
        return {}
    try:
        cursor = db.execute(_SMALL_PARTS, (conv, rows[0][1], rows[-1][1], SMALL))
        for item, kind, text, refusal in cursor:
            value = _part_text(kind, text, refusal)
            if value is not None and item in small:
                small[item].append(value)
    except sqlite3.OperationalError as exc:
        if "JSON" not in str(exc):
            raise
        return {}
    return small


def extract(db: sqlite3.Connection, owner: tuple[str, str] | None = None) -> list[Taken]:
    """Read and extract a batch of queued items (of ``owner`` only, if given), outside any
    write transaction: at most :data:`BATCH` items, and :data:`BATCH_BODIES` bytes of
    bodies and :data:`BATCH_WORDS` characters of words past the first item. A long range
    is taken in part; the rest stays queued."""
    where, args = (
        ("", []) if owner is None else (" WHERE project = ? AND user_key = ?", list(owner))
    )
    queued = db.execute(_QUEUED.format(where=where), (*args, BATCH)).fetchall()
    batch: list[Taken] = []
    count = bodies = words = 0
    for ticket, conv, first, last, project, user_key in queued:
        room = BATCH - count
        if room <= 0 or (count and (bodies > BATCH_BODIES or words > BATCH_WORDS)):
            break
        rows = db.execute(_RANGE, (conv, first, last, room)).fetchall()
        taken = Taken(ticket, conv, first, last, last + 1 if len(rows) < room else first, [])
        tag = owner_tag(project, user_key)
        small = small_parts(db, conv, rows) if rows else {}
        for item, seq, item_type, length in rows:
            if count and (bodies + (length or 0) > BATCH_BODIES or words > BATCH_WORDS):
                taken.next_seq = seq
                break
            bodies += length or 0
            found: list[str] = []
            try:
                found = texts(db, item, item_type, small.get(item))
            except sqlite3.OperationalError as exc:  # not JSON: indexed without text
                if "JSON" not in str(exc):
                    raise
                log.warning("search index: item rowid %s has no readable JSON: %s", item, exc)
            text = indexed_words(tag, found) if found else ""
            words += len(text)
            count += 1
            taken.items.append(Extracted(item, text))
            if len(rows) == room:
                taken.next_seq = seq + 1
        if taken.next_seq > first:
            batch.append(taken)
    return batch


# The items of a range read that stand now: their positions are never reused, so an
# item read at (conv, seq) and still there under the same rowid is the one read.
_STANDING = "SELECT rowid FROM items WHERE conv = ? AND seq >= ? AND seq < ?"


def store(db: sqlite3.Connection, batch: list[Taken]) -> None:
    """Write an extracted batch; the caller holds a write transaction. A range gone since
    it was read (its conversation deleted) or taken further by another indexer (another
    server process on the file) is skipped, and so is an item deleted since (its rowid
    may hold another item by now, queued on its own)."""
    rows: list[tuple[int, str]] = []
    for taken in batch:
        if taken.done:
            moved = db.execute(
                "DELETE FROM item_text_pending WHERE ticket = ? AND first_seq = ?",
                (taken.ticket, taken.first_seq),
            )
        else:
            moved = db.execute(
                "UPDATE item_text_pending SET first_seq = ? WHERE ticket = ? AND first_seq = ?",
                (taken.next_seq, taken.ticket, taken.first_seq),
            )
        if not moved.rowcount or not taken.items:
            continue
        standing = {
            row[0] for row in db.execute(_STANDING, (taken.conv, taken.first_seq, taken.next_seq))
        }
        rows.extend(
            (done.item, done.words) for done in taken.items if done.words and done.item in standing
        )
    # Single-row INSERTs (no statement journal); item_text indexes what item_words holds.
    db.executemany("INSERT INTO item_words (rowid, words) VALUES (?, ?)", rows)
    db.executemany("INSERT INTO item_text (rowid, words) VALUES (?, ?)", rows)


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
        if db.execute(_MIGRATED).fetchone() is None:
            return  # not migrated yet (to the queue of 0100)
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
