"""A response's lease (service/responses/lease.py) on a clock the test moves, on both
backends: renewed every third of its length, and a takeover noticed at the next renewal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from convostore.service.responses.lease import Lease
from convostore.store.base import ConversationRow, LeaseHeld, NewConversation, Owner, Store
from convostore.store.postgres import PostgresStore
from convostore.store.sqlite import SQLiteStore
from tests.support import ManualClock

OPEN = Owner("default", "")


async def expire_leases(store: Store) -> None:
    """What a stalled holder sees once its lease's time is up, without waiting for it."""
    if isinstance(store, SQLiteStore):
        async with store.transactions.write() as db:
            db.execute("UPDATE conversation_leases SET expires_at = 0")
    else:
        assert isinstance(store, PostgresStore)
        await store.pool.execute("UPDATE conversation_leases SET expires_at = 0")


async def expiry(store: Store) -> float:
    """When the one lease held ends (epoch seconds, the database's or the servers' clock)."""
    if isinstance(store, SQLiteStore):
        async with store.transactions.read() as db:
            return float(db.execute("SELECT expires_at FROM conversation_leases").fetchone()[0])
    assert isinstance(store, PostgresStore)
    return float(await store.pool.fetchval("SELECT expires_at FROM conversation_leases"))


async def until(done: Callable[[], bool], timeout: float = 10) -> None:
    """Let the loop run (the database answer) until ``done()``: a state, polled."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the state never came"
        await asyncio.sleep(0.001)


def test_renewal_keeps_the_lease_and_notices_a_takeover(store: Store) -> None:
    clock = ManualClock()

    async def run() -> None:
        await store.open()
        try:
            await store.migrate()
            await store.create_conversation(
                OPEN, NewConversation(ConversationRow("conv_l", 0, b"{}"))
            )
            lease = Lease(store, OPEN, "conv_l", "resp_a", 30, clock)
            await lease.take()
            taken = await expiry(store)
            assert abs(taken - (time.time() + 30)) < 5  # the store counts the length as given
            await until(lambda: len(clock.sleepers) == 1)
            assert clock.sleepers[0][0] == clock.now + 10  # a third of its length
            clock.advance(10)  # the first renewal runs, and the next is due in 10 s
            await until(lambda: len(clock.sleepers) == 1 and clock.sleepers[0][0] == clock.now + 10)
            assert not lease.lost and await expiry(store) >= taken
            with pytest.raises(LeaseHeld):
                await store.take_lease(OPEN, "conv_l", "resp_b", 30)
            # It stalls past its length; another response takes the conversation.
            await expire_leases(store)
            await store.take_lease(OPEN, "conv_l", "resp_b", 30)
            assert not lease.lost  # nothing renews before the clock says so
            clock.advance(10)
            await until(lambda: lease.lost)
            assert clock.sleepers == []  # a lost lease is not renewed again
            await lease.release()  # releases nothing of resp_b's
            with pytest.raises(LeaseHeld):
                await store.take_lease(OPEN, "conv_l", "resp_c", 30)
        finally:
            await store.close()

    asyncio.run(run())
