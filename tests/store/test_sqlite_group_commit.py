"""Group commit on SQLite: the writes of one loop turn share a transaction, each in its
own savepoint, and no call returns before the transaction it wrote to, or read from,
has committed (store/sqlite.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from convostore.store.base import (
    ConversationRow,
    ItemAppend,
    ItemConflict,
    NewConversation,
    Owner,
    StoredItem,
    StoreUnavailable,
)
from convostore.store.sqlite import SQLiteStore

ME = Owner("proj", "")


def item(item_id: str) -> StoredItem:
    return StoredItem(item_id, "message", b'{"id":"%s"}' % item_id.encode(), 0)


def conversation(conversation_id: str) -> ConversationRow:
    return ConversationRow(conversation_id, 1_700_000_000, b"{}")


@asynccontextmanager
async def opened(path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(path)
    await store.open()
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


def stored_ids(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT id FROM items ORDER BY rowid")]
    finally:
        db.close()


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


def test_writes_of_one_turn_share_one_commit(tmp_path: Path) -> None:
    statements: list[str] = []

    async def scenario() -> None:
        async with opened(tmp_path / "g.db") as store:
            await store.create_conversation(ME, NewConversation(conversation("conv_a")))
            store.db.set_trace_callback(statements.append)
            await asyncio.gather(
                *(store.append_items(ME, ItemAppend("conv_a", [item(f"msg_{n}")])) for n in range(10))
            )
            store.db.set_trace_callback(None)

    run(scenario)
    assert statements.count("COMMIT") == 1, statements
    assert statements.count("BEGIN IMMEDIATE") == 1
    assert sorted(stored_ids(tmp_path / "g.db")) == sorted(f"msg_{n}" for n in range(10))


def test_a_refused_write_undoes_only_itself(tmp_path: Path) -> None:
    async def scenario() -> list[Any]:
        async with opened(tmp_path / "g.db") as store:
            await store.create_conversation(ME, NewConversation(conversation("conv_a"), [item("msg_old")]))
            return await asyncio.gather(
                store.append_items(ME, ItemAppend("conv_a", [item("msg_1")])),
                store.append_items(ME, ItemAppend("conv_a", [item("msg_2"), item("msg_old")])),  # duplicate
                store.append_items(ME, ItemAppend("conv_a", [item("msg_3")])),
                return_exceptions=True,
            )

    results = run(scenario)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ItemConflict)
    assert stored_ids(tmp_path / "g.db") == ["msg_old", "msg_1", "msg_3"]


def test_a_failed_commit_fails_every_write_and_read_of_its_turn(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        async with opened(tmp_path / "g.db") as store:
            await store.create_conversation(ME, NewConversation(conversation("conv_a")))
            denied = {"commits": 1}

            def authorize(action: int, arg1: Any, *_: Any) -> int:
                # The next COMMIT fails the way a full disk would: after the writes ran.
                if action == sqlite3.SQLITE_TRANSACTION and arg1 == "COMMIT" and denied["commits"]:
                    denied["commits"] -= 1
                    return sqlite3.SQLITE_DENY
                return sqlite3.SQLITE_OK

            store.db.set_authorizer(authorize)
            store.db.execute("PRAGMA cache_size = -2000")  # a new statement cache entry
            failed = await asyncio.gather(
                store.append_items(ME, ItemAppend("conv_a", [item("msg_1")])),
                store.create_conversation(ME, NewConversation(conversation("conv_b"), [item("msg_2")])),
                # A read after those writes, in the same turn, saw them: it fails too.
                store.get_conversation(ME, "conv_b"),
                return_exceptions=True,
            )
            store.db.set_authorizer(None)
            # The connection came out without a transaction: the next turn works.
            after = await asyncio.gather(
                store.append_items(ME, ItemAppend("conv_a", [item("msg_3")])), return_exceptions=True
            )
            return failed, after

    failed, after = run(scenario)
    # Whatever the driver said, every call of the turn is a StoreUnavailable (a 503).
    assert all(isinstance(result, StoreUnavailable) for result in failed), failed
    assert after == [None]
    assert stored_ids(tmp_path / "g.db") == ["msg_3"]


def test_reads_in_a_turn_without_writes_do_not_wait(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(tmp_path / "g.db") as store:
            await store.create_conversation(ME, NewConversation(conversation("conv_a"), [item("msg_1")]))
            assert store.transactions.group is None
            got = await store.get_item(ME, "conv_a", "msg_1")
            assert got.id == "msg_1" and store.transactions.group is None

    run(scenario)


def test_a_read_maps_the_drivers_operational_errors_and_nothing_else(tmp_path: Path) -> None:
    async def read_raising(store: SQLiteStore, error: BaseException | None) -> None:
        async with store.transactions.read() as db:
            if error is None:
                db.execute("SELECT * FROM no_such_table")
            raise error

    async def scenario() -> list[BaseException]:
        async with opened(tmp_path / "g.db") as store:
            raised = []
            for error in (None, sqlite3.IntegrityError("x"), ValueError("y")):
                try:
                    await read_raising(store, error)
                except BaseException as exc:  # what it raised is the point
                    raised.append(exc)
            return raised

    operational, integrity, value = run(scenario)
    assert isinstance(operational, StoreUnavailable)
    assert isinstance(operational.__cause__, sqlite3.OperationalError)
    assert "no_such_table" in str(operational)
    assert type(integrity) is sqlite3.IntegrityError and type(value) is ValueError


@pytest.mark.parametrize("second_first", [False, True])
def test_two_stores_on_one_loop_do_not_wait_for_each_other(
    tmp_path: Path, second_first: bool
) -> None:
    """Two stores of one file on one thread (two "processes" in a test): the second's
    write commits the first's open turn instead of waiting for its lock."""

    async def scenario() -> None:
        async with opened(tmp_path / "g.db") as one, opened(tmp_path / "g.db") as two:
            await one.create_conversation(ME, NewConversation(conversation("conv_a")))
            stores = [two, one] if second_first else [one, two]
            await asyncio.wait_for(
                asyncio.gather(
                    *(s.append_items(ME, ItemAppend("conv_a", [item(f"msg_{n}")])) for n, s in enumerate(stores))
                ),
                timeout=5,
            )

    run(scenario)
    assert sorted(stored_ids(tmp_path / "g.db")) == ["msg_0", "msg_1"]


def test_without_group_commit_each_write_commits_alone(tmp_path: Path) -> None:
    """Several server processes on one file (``--workers N``) commit every write alone, so
    none holds the lock for a whole loop turn while the others wait."""
    statements: list[str] = []

    async def scenario() -> None:
        store = SQLiteStore(tmp_path / "g.db", group_commit=False)
        await store.open()
        try:
            await store.migrate()
            await store.create_conversation(ME, NewConversation(conversation("conv_a")))
            store.db.set_trace_callback(statements.append)
            await asyncio.gather(
                *(store.append_items(ME, ItemAppend("conv_a", [item(f"msg_{n}")])) for n in range(5))
            )
            store.db.set_trace_callback(None)
            assert store.transactions.group is None
        finally:
            await store.close()

    run(scenario)
    assert statements.count("COMMIT") == 5
    assert len(stored_ids(tmp_path / "g.db")) == 5


def test_the_factory_turns_group_commit_off_for_several_workers(tmp_path: Path) -> None:
    from convostore.settings import Settings
    from convostore.store.factory import store_for

    one = store_for(Settings(db=str(tmp_path / "a.db")))
    two = store_for(Settings(db=str(tmp_path / "a.db"), workers=2))
    assert isinstance(one, SQLiteStore) and one.group_commit
    assert isinstance(two, SQLiteStore) and not two.group_commit


@pytest.mark.parametrize("group_commit", [True, False])
def test_a_write_waits_for_the_lock_without_stopping_the_loop(
    tmp_path: Path, group_commit: bool
) -> None:
    """Issue 15 (H1): while another connection holds the write lock, a write waits with
    asyncio.sleep, so the loop goes on serving; it commits once the lock is free, and
    gives up with StoreUnavailable (503) after the lock timeout."""
    async def scenario() -> None:
        store = SQLiteStore(tmp_path / "g.db", group_commit=group_commit, busy_timeout_ms=300)
        await store.open()
        other = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
        try:
            await store.migrate()
            await store.create_conversation(ME, NewConversation(conversation("conv_a")))
            other.execute("BEGIN IMMEDIATE")
            write = asyncio.create_task(store.append_items(ME, ItemAppend("conv_a", [item("msg_1")])))
            ticks = 0
            while ticks < 20:  # the loop turns while the write waits
                await asyncio.sleep(0.001)
                ticks += 1
            assert not write.done()
            assert await store.get_conversation(ME, "conv_a")  # reads go on
            other.execute("COMMIT")
            await asyncio.wait_for(write, timeout=5)
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreUnavailable, match="write lock"):
                await store.append_items(ME, ItemAppend("conv_a", [item("msg_2")]))
            other.execute("ROLLBACK")
            await store.append_items(ME, ItemAppend("conv_a", [item("msg_3")]))
        finally:
            other.close()
            await store.close()

    run(scenario)
    assert stored_ids(tmp_path / "g.db") == ["msg_1", "msg_3"]


def test_analyze_waits_for_the_write_lock(tmp_path: Path) -> None:
    """``PRAGMA optimize`` after an import may run ANALYZE, a write: while another
    connection (the indexer, another process) holds the write lock it waits, loop turning,
    and runs once the lock is free, instead of failing with "database is locked"."""

    async def scenario() -> None:
        store = SQLiteStore(tmp_path / "a.db", busy_timeout_ms=300)
        await store.open()
        other = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
        try:
            await store.migrate()
            other.execute("BEGIN IMMEDIATE")
            analyze = asyncio.create_task(store.analyze())
            ticks = 0
            while ticks < 20:  # the loop turns while it waits
                await asyncio.sleep(0.001)
                ticks += 1
            assert not analyze.done()
            other.execute("COMMIT")
            await asyncio.wait_for(analyze, timeout=5)
        finally:
            other.close()
            await store.close()

    run(scenario)
