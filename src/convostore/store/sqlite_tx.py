"""SQLite transactions: the one way the SQLite store reads and writes (issues 15, 16).

**No wait on the write lock on the event loop thread.** The serving connection has
``busy_timeout = 0``: ``BEGIN IMMEDIATE`` either takes the write lock at once or fails
with ``SQLITE_BUSY`` at once. When it fails (another process, or the background indexer,
holds the lock), the write sleeps with ``asyncio.sleep`` (0.5 ms, doubling to 10 ms)
and tries again, until ``lock_timeout`` seconds have passed: then
:class:`StoreUnavailable` (a 503 with Retry-After). Meanwhile the loop serves everyone
else. An uncontended write pays nothing for this (one ``BEGIN`` that succeeds), where a
writer thread costs a thread hand-off per write (benchmarks/design_choices.py,
``sqlite_write_path``).

**Group commit** (with one server process on the file): the writes of one turn of the
event loop share one transaction. The first opens it and schedules its ``COMMIT`` for the
end of the turn; each write runs in a savepoint of its own, so a refused one (a duplicate
id, a missing conversation) undoes only itself. No call returns before the transaction
holding what it wrote, or what it read, has committed: :meth:`Transactions.write` and
:meth:`Transactions.read` wait for it when they end. A commit that fails fails every call
that wrote to or read from its transaction with :class:`StoreUnavailable`, whatever the
driver's error was. Without group commit (several processes), each write commits alone.

Every ``sqlite3.OperationalError`` (locked, full, read-only, I/O) raised inside a
transaction of this module leaves it as :class:`StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress

from convostore.store.base import StoreUnavailable
from convostore.store.sqlite_health import Corruption, is_corruption

FIRST_RETRY = 0.0005
LAST_RETRY = 0.01


@contextmanager
def unavailable(corruption: Corruption | None = None) -> Iterator[None]:
    """The driver's operational errors, raised inside, as :class:`StoreUnavailable`; a
    damaged file (SQLITE_CORRUPT, SQLITE_NOTADB) is also noted on ``corruption``, which
    then fails ``/readyz`` and refuses every later write (sqlite_health.py)."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        error = _as_unavailable(exc, corruption)
        if error is None:
            raise
        raise error from exc


def _as_unavailable(
    exc: sqlite3.DatabaseError, corruption: Corruption | None
) -> StoreUnavailable | None:
    """What :func:`unavailable` raises for ``exc`` (None: ``exc`` itself)."""
    if corruption is not None and is_corruption(exc):
        corruption.noticed(exc)
        return StoreUnavailable(f"the database file is corrupt ({exc})")
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(f"{type(exc).__name__}: {exc}")
    return None


class _Read:
    """``async with transactions.read() as db``: :meth:`Transactions.read` as a plain
    object (a point read is a few microseconds; two generator-based context managers
    were a good part of them)."""

    __slots__ = ("tx",)

    def __init__(self, tx: Transactions) -> None:
        self.tx = tx

    async def __aenter__(self) -> sqlite3.Connection:
        return self.tx.db

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            group = self.tx.group
            if group is not None:
                await group.committed()
        elif isinstance(exc, sqlite3.DatabaseError):
            error = _as_unavailable(exc, self.tx.corruption)
            if error is not None:
                raise error from exc


class _Group:
    """The writes of one turn of the event loop, committed together, and the calls
    waiting for that commit."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[asyncio.Future[None]] = []

    def settle(self, error: StoreUnavailable | None) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    async def committed(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        await waiter


class Transactions:
    """The transactions of one connection, used from the event loop thread."""

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        group_commit: bool,
        lock_timeout: float,
        waiting: threading.Event | None = None,
        corruption: Corruption | None = None,
    ):
        db.execute("PRAGMA busy_timeout = 0")
        self.db = db
        #: A damaged file, once noticed: every later write is refused before it runs.
        self.corruption = corruption
        #: Set while a write waits for the lock (the background indexer then holds off).
        self.waiting = waiting or threading.Event()
        self.group_commit = group_commit
        self.lock_timeout = lock_timeout
        #: The open transaction of this loop turn (group commit), if any.
        self.group: _Group | None = None
        # Held while a transaction is being opened (and, alone, until it ends).
        self._opening = asyncio.Lock()

    def read(self) -> _Read:
        """Reads (``async with``); they return once what they saw is committed. The
        driver's operational errors inside become :class:`StoreUnavailable`, as in
        :func:`unavailable`."""
        return _Read(self)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[sqlite3.Connection]:
        """A write: in this turn's transaction (group commit), or alone. Undone alone if
        it raises; returns once committed."""
        if self.corruption is not None:
            self.corruption.refuse_writes()
        if not self.group_commit:
            async with self.alone() as db:
                yield db
            return
        with unavailable(self.corruption):
            group = self.group or await self._open_group()
            db = self.db
            db.execute("SAVEPOINT write")
            try:
                yield db
                db.execute("RELEASE write")
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK TO write")
                    db.execute("RELEASE write")
                elif self.group is group:
                    # SQLite rolled the whole transaction back (a full disk, an I/O
                    # error): the writes before this one are gone too, none acknowledged.
                    self.group = None
                    group.settle(StoreUnavailable(f"the transaction was rolled back: {exc}"))
                raise
            await group.committed()

    @asynccontextmanager
    async def alone(self) -> AsyncIterator[sqlite3.Connection]:
        """A transaction of its own (a write without group commit, a migration), once
        this turn's group, if any, has committed."""
        with unavailable(self.corruption):
            async with self._opening:
                while self.group is not None:
                    await self.group.committed()
                await self._begin()
                db = self.db
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise

    async def _open_group(self) -> _Group:
        async with self._opening:
            if self.group is not None:  # opened while this call waited
                return self.group
            await self._begin()
            group = self.group = _Group()
            asyncio.get_running_loop().call_soon(self._commit, group)
            return group

    async def _begin(self) -> None:
        """``BEGIN IMMEDIATE``, retried after short sleeps while another connection holds
        the write lock; :class:`StoreUnavailable` after ``lock_timeout`` seconds."""
        delay = FIRST_RETRY
        deadline = time.monotonic() + self.lock_timeout
        try:
            while True:
                try:
                    self.db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                        raise
                    if time.monotonic() + delay > deadline:
                        raise StoreUnavailable(
                            f"the database's write lock was held for over {self.lock_timeout:g} s"
                        ) from exc
                self.waiting.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAST_RETRY)
        finally:
            if self.waiting.is_set():
                self.waiting.clear()

    def _commit(self, group: _Group) -> None:
        """The end of a loop turn: commit its writes and answer everyone waiting."""
        if self.group is not group:
            return  # already failed and settled
        self.group = None
        db = self.db
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            # A COMMIT that failed may leave the transaction open; the connection must
            # come out of here without one, or every later BEGIN would fail.
            if db.in_transaction:
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            group.settle(StoreUnavailable(f"the commit failed: {type(exc).__name__}: {exc}"))
        else:
            group.settle(None)

    def close(self) -> None:
        """Commit the open turn's writes now (the store is closing)."""
        if self.group is not None:
            self._commit(self.group)
