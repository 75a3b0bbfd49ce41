"""The PostgreSQL transaction helper keeps connections between calls (store/postgres_tx.py):
a burst's connections go back to the pool once they have been idle for ``max_idle``
seconds, rather than staying open on the database server for ever."""

from __future__ import annotations

import asyncio

import asyncpg

from convostore.clock import Clock
from convostore.store.postgres_tx import Database


class FakeClock(Clock):
    def __init__(self) -> None:
        self.now = 1_000.0
        self.monotonic = lambda: self.now  # type: ignore[method-assign,assignment]


async def _burst(db: Database, size: int) -> None:
    """``size`` transactions open at once, so the helper holds ``size`` connections."""
    inside = 0
    all_in = asyncio.Event()

    async def hold() -> None:
        nonlocal inside
        async with db.transaction() as connection:
            await connection.fetchval("SELECT 1")
            inside += 1
            if inside == size:
                all_in.set()
            await all_in.wait()

    await asyncio.gather(*(hold() for _ in range(size)))


def test_idle_connections_go_back_to_the_pool_after_max_idle(pg_url: str) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        pool = await asyncpg.create_pool(pg_url, min_size=0, max_size=4)
        db = Database(lambda: pool, 10, 4, max_idle=300, clock=clock)
        try:
            await _burst(db, 3)
            assert db.idle == 3 and pool.get_idle_size() == 0

            # Steady traffic inside max_idle reuses the newest and keeps the rest.
            clock.now += 299
            assert await db.fetchval("SELECT 2") == 2
            assert db.idle == 3 and pool.get_idle_size() == 0

            # Past max_idle, each release hands the oldest idle one back to the pool.
            clock.now += 2
            await db.fetchval("SELECT 3")
            assert db.idle == 2 and pool.get_idle_size() == 1
            await db.fetchval("SELECT 4")
            assert db.idle == 1 and pool.get_idle_size() == 2
            # The one in use is fresh: it stays.
            await db.fetchval("SELECT 5")
            assert db.idle == 1 and pool.get_idle_size() == 2
        finally:
            await db.close()
            await pool.close()

    asyncio.run(scenario())
