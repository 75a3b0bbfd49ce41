"""The one place the PostgreSQL store talks to its pool: it acquires a connection, runs a
statement or a transaction, gives the connection back, and turns the driver's failures
into the store's two answers for them.

* :class:`~convostore.store.base.StoreUnavailable`: nothing was changed. The database
  could not be reached (refused, too many connections, starting up, no writable host of
  a multi-host URL), a read failed, or a transaction failed before its ``COMMIT`` was
  sent (the server rolls back an open transaction whose connection dies).
* :class:`~convostore.store.base.OutcomeUnknown`: the connection was lost after a write
  was sent and before its answer came back: for a single-statement write (which commits
  by itself) anywhere during the statement, for a transaction during its ``COMMIT``. The
  write may be durable or not; only a later read (or a retry with an ``Idempotency-Key``)
  can tell.

Every call is bounded by ``timeout`` seconds (the wait for a connection, then the
statement), so a database that stops answering without closing its connections gives a
503 rather than a request that hangs. A connection that failed goes back to the pool,
which closes it and opens a new one when needed: no slot is leaked.

Connections are kept, not returned: a connection whose statement or transaction ended
cleanly goes onto this helper's own list of idle connections, and the next call takes
it from there without a round through asyncpg's pool (whose acquire and release cost
a task, a proxy, timers and a reset each: ~25 us of a ~110 us read, measured in
benchmarks). The pool still opens every connection (so ``max_size`` bounds them all),
and gets back each one that failed, was interrupted (cancelled, timed out) or was left
in a transaction: its release resets or closes it as before. A caller that finds no
idle connection and the pool's size reached waits, bounded, for one to be handed over.

The list is used last in, first out, so after a burst the few connections steady traffic
needs stay warm and the rest age at its bottom. One idle here for longer than
``max_idle`` seconds (asyncpg's ``max_inactive_connection_lifetime``, 300 s) goes back to
the pool, which closes it after its own idle time: a burst's connections do not stay open
on the database server for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import asyncpg

from convostore.clock import SYSTEM, Clock
from convostore.store.base import OutcomeUnknown, StoreError, StoreUnavailable
from convostore.store.postgres_errors import LOST, UNAVAILABLE

if TYPE_CHECKING:  # generic only in asyncpg's stubs
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
    Pool = asyncpg.Pool[asyncpg.Record]


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _discard(connection: Connection) -> None:
    """Close a connection that failed, so the pool opens a new one rather than lending a
    broken one again (asyncpg may have detached it from the pool already)."""
    with contextlib.suppress(asyncpg.InterfaceError):
        connection.terminate()


def _is_open(connection: Connection) -> bool:
    """False when the connection closed, or when asyncpg gave it back to the pool because
    it closed (its proxy then refuses every call)."""
    try:
        return not connection.is_closed()
    except asyncpg.InterfaceError:
        return False


class Database:
    """Statements and transactions on the store's pool (see the module docstring)."""

    def __init__(
        self,
        pool: Callable[[], Pool],
        timeout: float | None,
        max_size: int,
        *,
        max_idle: float = 300.0,
        clock: Clock = SYSTEM,
    ):
        self._pool = pool
        self.timeout = timeout
        self.max_size = max_size
        self.max_idle = max_idle
        self._clock = clock
        # Taken from the pool and kept between calls, each with when it was last put here
        # (the oldest at index 0).
        self._idle: list[tuple[Connection, float]] = []
        self._held = 0  # connections taken from the pool and not given back
        self._waiters: deque[asyncio.Future[Connection]] = deque()
        self._opening: set[asyncio.Future[Connection]] = set()  # acquires for waiters

    @property
    def idle(self) -> int:
        """Connections kept here, idle (the pool counts them as in use)."""
        return len(self._idle)

    async def _acquire(self) -> tuple[Pool, Connection]:
        pool = self._pool()
        while self._idle:
            connection, _ = self._idle.pop()
            if _is_open(connection):
                return pool, connection
            await self._give_back(pool, connection)
        try:
            async with asyncio.timeout(self.timeout):
                if self._held >= self.max_size:
                    waiter = asyncio.get_running_loop().create_future()
                    self._waiters.append(waiter)
                    return pool, await waiter
                self._held += 1
                try:
                    fresh: Connection = await pool.acquire()
                except BaseException:
                    self._held -= 1
                    raise
        except UNAVAILABLE as exc:
            raise StoreUnavailable(_said(exc)) from exc
        return pool, fresh

    async def _release(self, pool: Pool, connection: Connection, clean: bool) -> None:
        """Keep a connection that ended cleanly (or hand it to a waiter); give any other
        back to the pool, which resets or closes it."""
        if not clean or not _is_open(connection) or connection.is_in_transaction():
            await self._give_back(pool, connection)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        now = self._clock.monotonic()
        self._idle.append((connection, now))
        if self._idle[0][1] < now - self.max_idle:  # the oldest has not been used for long
            await self._give_back(pool, self._idle.pop(0)[0])

    async def _give_back(self, pool: Pool, connection: Connection) -> None:
        """Back to the pool (which already took back one whose connection closed)."""
        self._held -= 1
        try:
            await pool.release(connection, timeout=self.timeout)
        finally:
            self._wake_one()

    def _wake_one(self) -> None:
        """A slot came free: the first live waiter takes it by acquiring from the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._held += 1
                task: asyncio.Future[Connection] = asyncio.ensure_future(self._pool().acquire())
                self._opening.add(task)
                task.add_done_callback(self._opening.discard)
                task.add_done_callback(functools.partial(self._settle, waiter))
                return

    def _settle(self, waiter: asyncio.Future[Connection], task: asyncio.Future[Connection]) -> None:
        if task.cancelled() or task.exception() is not None:
            self._held -= 1
            if not waiter.done():
                waiter.set_exception(task.exception() or asyncio.CancelledError())
            return
        connection = task.result()
        if waiter.done():  # it gave up meanwhile: keep the connection for the next caller
            self._idle.append((connection, self._clock.monotonic()))
        else:
            waiter.set_result(connection)

    async def close(self) -> None:
        """Give every idle connection back to the pool (before the pool closes)."""
        pool = self._pool()
        while self._idle:
            await self._give_back(pool, self._idle.pop()[0])

    async def _one(
        self,
        how: str,
        sql: str,
        args: tuple[Any, ...],
        writes: bool,
        timeout: float | None = None,
    ) -> Any:
        pool, connection = await self._acquire()
        clean = False
        try:
            bound = self.timeout if timeout is None else timeout
            result = await getattr(connection, how)(sql, *args, timeout=bound)
            clean = True
            return result
        except LOST as exc:
            _discard(connection)
            if writes:
                raise OutcomeUnknown(_said(exc)) from exc
            raise StoreUnavailable(_said(exc)) from exc
        except UNAVAILABLE as exc:
            raise StoreUnavailable(_said(exc)) from exc
        except asyncpg.PostgresError:
            clean = True  # the server answered with an error: the connection is fine
            raise
        finally:
            await self._release(pool, connection, clean)

    # A read, or a write that is one statement (and so one transaction of its own).

    async def fetch(
        self, sql: str, *args: Any, writes: bool = False, timeout: float | None = None
    ) -> list[asyncpg.Record]:
        """``timeout`` replaces the store's bound for this statement (a search's own)."""
        rows: list[asyncpg.Record] = await self._one("fetch", sql, args, writes, timeout)
        return rows

    async def fetchrow(self, sql: str, *args: Any, writes: bool = False) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._one("fetchrow", sql, args, writes)
        return row

    async def fetchval(self, sql: str, *args: Any, writes: bool = False) -> Any:
        return await self._one("fetchval", sql, args, writes)

    async def execute(self, sql: str, *args: Any, writes: bool = True) -> str:
        status: str = await self._one("execute", sql, args, writes)
        return status

    @contextlib.asynccontextmanager
    async def transaction(self, *, bounded: bool = True) -> AsyncIterator[Connection]:
        """A READ COMMITTED transaction: committed when the block ends, rolled back when it
        raises. ``bounded=False`` lifts the time bound (migrations)."""
        pool, connection = await self._acquire()
        committing = False
        clean = False
        try:
            async with asyncio.timeout(self.timeout if bounded else None):
                transaction = connection.transaction(isolation="read_committed")
                try:
                    await transaction.start()
                    yield connection
                except StoreError:
                    with contextlib.suppress(*UNAVAILABLE):
                        await transaction.rollback()
                    raise
                except UNAVAILABLE as exc:  # before COMMIT: the server rolls back
                    if isinstance(exc, LOST):
                        _discard(connection)
                    raise StoreUnavailable(_said(exc)) from exc
                except BaseException:
                    with contextlib.suppress(*UNAVAILABLE):
                        await transaction.rollback()
                    raise
                committing = True
                try:
                    await transaction.commit()
                except LOST as exc:
                    _discard(connection)
                    raise OutcomeUnknown(_said(exc)) from exc
                except UNAVAILABLE as exc:
                    raise StoreUnavailable(_said(exc)) from exc
                clean = True
        except TimeoutError as exc:  # the bound, from asyncio.timeout
            if committing:
                raise OutcomeUnknown(_said(exc)) from exc
            raise StoreUnavailable(_said(exc)) from exc
        finally:
            await self._release(pool, connection, clean)
