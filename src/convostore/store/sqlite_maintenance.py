"""Work that SQLite would otherwise do inside requests, done by a background thread.

*Checkpoints.* In WAL mode a commit appends pages to the write-ahead log; a checkpoint
copies them into the database file and, with ``synchronous=NORMAL``, fsyncs both. SQLite
runs one inside whichever commit crosses 1,000 WAL pages, so that request pays for the
fsyncs. The serving connection turns that off (``wal_autocheckpoint = 0``) and this
thread runs a ``PASSIVE`` checkpoint every ``interval`` seconds. Durability is unchanged:
a checkpoint only moves content the WAL already holds.

*Search indexing.* Appends only queue new item rowids in ``item_text_pending``
(migration 0004); this thread indexes them in batches, and every search first indexes
what is still queued, so search results never miss a committed item.

``sqlite3`` releases the GIL while SQLite works, so the event loop keeps serving
meanwhile; the thread's write transactions are short (one batch each).
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("convostore")

BATCH = 200

_PENDING_UPTO = (
    "SELECT max(rowid) FROM (SELECT rowid FROM item_text_pending ORDER BY rowid LIMIT ?)"
)
# MATERIALIZED: each item's text is extracted once (json_tree over its body). Written as
# a plain subquery, SQLite evaluated the extraction twice per item, for the NOT NULL test
# and for the value: 8 to 13 us an item instead of 5 to 6 (2,000 queued messages).
_INDEX_PENDING = (
    "WITH queued AS MATERIALIZED (SELECT rowid, text FROM item_search_text"
    " WHERE rowid IN (SELECT rowid FROM item_text_pending WHERE rowid <= ?))"
    " INSERT INTO item_text (rowid, text) SELECT rowid, text FROM queued WHERE text IS NOT NULL"
)


def index_pending(db: sqlite3.Connection, batch: int = BATCH) -> int:
    """Index up to ``batch`` queued items; the caller holds a write transaction."""
    upto = db.execute(_PENDING_UPTO, (batch,)).fetchone()[0]
    if upto is None:
        return 0
    db.execute(_INDEX_PENDING, (upto,))
    done: int = db.execute("DELETE FROM item_text_pending WHERE rowid <= ?", (upto,)).rowcount
    return done


class Maintenance:
    def __init__(self, path: str, *, synchronous: str, interval: float = 0.1):
        self.path = path
        self.synchronous = synchronous
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="convostore-maintenance", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout = 1000")
            db.execute(f"PRAGMA synchronous = {self.synchronous}")
            while not self._stop.wait(self.interval):
                try:
                    self._index(db)
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # a full disk, a long lock: retried next round
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    log.warning("background maintenance of %s failed: %s", self.path, exc)
        finally:
            db.close()

    def _index(self, db: sqlite3.Connection) -> None:
        if (
            db.execute("SELECT 1 FROM sqlite_master WHERE name = 'item_text_pending'").fetchone()
            is None
        ):
            return  # not migrated yet
        while not self._stop.is_set():
            db.execute("BEGIN IMMEDIATE")
            try:
                done = index_pending(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            if done < BATCH:
                return
