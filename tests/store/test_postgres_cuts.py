"""Connections cut under the PostgreSQL store (issue 20), through a proxy that drops a
connection right after the server finished a command (tests/reliability/pgproxy.py):

* a lease whose release was cut is not stuck: it expires, and the conversation can be
  leased again;
* a write whose answer was cut is OutcomeUnknown (not "nothing changed"); a read whose
  answer was cut is StoreUnavailable; the pool replaces the connections and no slot stays
  lent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from convostore.store.base import (
    ConversationRow,
    LeaseHeld,
    NewConversation,
    OutcomeUnknown,
    Owner,
    PageQuery,
    StoreUnavailable,
)
from convostore.store.postgres import PostgresStore
from tests.reliability.pgproxy import CuttingProxy

OWNER = Owner("p", "")


@pytest.fixture
def cut_store(pg_url: str) -> Iterator[tuple[PostgresStore, CuttingProxy]]:
    parts = urlsplit(pg_url)
    proxy = CuttingProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    store = PostgresStore(urlunsplit(parts._replace(netloc=netloc)), max_size=2)
    yield store, proxy
    proxy.close()


def test_a_cut_release_leaves_a_lease_that_expires(cut_store: tuple[PostgresStore, CuttingProxy]) -> None:
    store, proxy = cut_store

    async def run() -> None:
        await store.open()
        try:
            await store.migrate()
            await store.create_conversation(OWNER, NewConversation(ConversationRow("conv_a", 1, b"{}")))
            await store.take_lease(OWNER, "conv_a", "first", 1.0)
            proxy.cut_on(b"DELETE 1")
            with pytest.raises(OutcomeUnknown):
                await store.release_lease(OWNER, "conv_a", "first")
            assert proxy.cuts == 1
            # The release did happen on the server (the answer was cut, not the command);
            # had it not, the lease would expire: either way another holder gets it.
            deadline = time.monotonic() + 10
            while True:
                try:
                    await store.take_lease(OWNER, "conv_a", "second", 30.0)
                    break
                except LeaseHeld:
                    assert time.monotonic() < deadline, "the lease never came free"
                    await asyncio.sleep(0.05)
            assert store.pool_use().in_use == 0
        finally:
            await store.close()

    asyncio.run(run())


def test_a_cut_read_is_unavailable_and_a_cut_write_is_unknown(
    cut_store: tuple[PostgresStore, CuttingProxy],
) -> None:
    store, proxy = cut_store

    async def run() -> None:
        await store.open()
        try:
            await store.migrate()
            proxy.cut_on(b"INSERT 0 ")
            with pytest.raises(OutcomeUnknown):
                await store.create_conversation(OWNER, NewConversation(ConversationRow("conv_b", 1, b"{}")))
            assert (await store.get_conversation(OWNER, "conv_b")).id == "conv_b"  # it was written
            proxy.cut_on(b"SELECT 1")  # a page: fetchrow's single row ends without a tag
            with pytest.raises(StoreUnavailable) as read:
                await store.list_items(OWNER, "conv_b", PageQuery(None, 5, False))
            assert not isinstance(read.value, OutcomeUnknown)
            for _ in range(5):
                await store.get_conversation(OWNER, "conv_b")
            use = store.pool_use()
            assert use.in_use == 0 and use.size <= 2
        finally:
            await store.close()

    asyncio.run(run())
