"""SQLite searches off the event loop, each bounded in time (issue 15, M1).

A search can match many of the caller's own items (a short prefix over a large
project); it runs on one of :data:`THREADS` worker threads, each with a read-only
connection of its own (WAL: it sees every committed transaction, and never waits for
the writer), so the event loop goes on serving meanwhile. A progress handler stops it
after ``time_limit`` seconds: :class:`SearchTooCostly` (a 400 that asks for longer
words). An in-memory database has one connection, so its searches run inline.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from convostore.store.base import SearchTooCostly
from convostore.store.sqlite_health import Corruption
from convostore.store.sqlite_tx import unavailable

THREADS = 4
PROGRESS_STEPS = 10_000  # SQLite VM instructions between two looks at the clock


class Searcher:
    def __init__(
        self,
        path: str,
        db: sqlite3.Connection,
        *,
        time_limit: float,
        corruption: Corruption | None = None,
    ):
        self.path = path
        self.corruption = corruption
        self.db = db
        self.time_limit = time_limit
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        if path != ":memory:":
            self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="convostore-search")

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]:
        with unavailable(self.corruption):
            if self._pool is None:
                return self._run(self.db, sql, args)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, self._in_thread, sql, args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()

    def _in_thread(self, sql: str, args: list[Any]) -> list[Any]:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, check_same_thread=False)
            db.execute("PRAGMA query_only = 1")
            db.execute("PRAGMA busy_timeout = 1000")  # a worker thread, not the loop
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return self._run(db, sql, args)

    def _run(self, db: sqlite3.Connection, sql: str, args: list[Any]) -> list[Any]:
        deadline = time.monotonic() + self.time_limit
        db.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_INTERRUPT:
                raise SearchTooCostly(f"the search ran past {self.time_limit:g} s") from None
            raise
        finally:
            db.set_progress_handler(None, 0)
