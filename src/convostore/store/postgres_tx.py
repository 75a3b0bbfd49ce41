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
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import asyncpg

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


class Database:
    """Statements and transactions on the store's pool (see the module docstring)."""

    def __init__(self, pool: Callable[[], Pool], timeout: float | None):
        self._pool = pool
        self.timeout = timeout

    async def _acquire(self) -> tuple[Pool, Connection]:
        pool = self._pool()
        try:
            connection: Connection = await pool.acquire(timeout=self.timeout)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(_said(exc)) from exc
        return pool, connection

    async def _one(
        self,
        how: str,
        sql: str,
        args: tuple[Any, ...],
        writes: bool,
        timeout: float | None = None,
    ) -> Any:
        pool, connection = await self._acquire()
        try:
            bound = self.timeout if timeout is None else timeout
            return await getattr(connection, how)(sql, *args, timeout=bound)
        except LOST as exc:
            _discard(connection)
            if writes:
                raise OutcomeUnknown(_said(exc)) from exc
            raise StoreUnavailable(_said(exc)) from exc
        except UNAVAILABLE as exc:
            raise StoreUnavailable(_said(exc)) from exc
        finally:
            await pool.release(connection)

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
        except TimeoutError as exc:  # the bound, from asyncio.timeout
            if committing:
                raise OutcomeUnknown(_said(exc)) from exc
            raise StoreUnavailable(_said(exc)) from exc
        finally:
            await pool.release(connection)
