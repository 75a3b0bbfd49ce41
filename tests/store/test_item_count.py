"""The live item count and last activity a listed conversation carries (issue 8, migration
0011), on every backend: kept by creation, appends (plain and leased), item deletes and
import, and filled from existing rows by the migration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from convostore.store import migrate
from convostore.store.base import (
    ConversationDump,
    ConversationFilter,
    ConversationRow,
    ItemAppend,
    ItemConflict,
    ItemMissing,
    ListedConversation,
    NewConversation,
    Owner,
    PageQuery,
    Store,
    StoredItem,
)
from convostore.store.postgres import PostgresStore
from convostore.store.sqlite import SQLiteStore

T = TypeVar("T")
Run = Callable[[Awaitable[T]], T]

ME = Owner("p", "")


def item(item_id: str) -> StoredItem:
    return StoredItem(item_id, "message", f'{{"id":"{item_id}"}}'.encode(), 0)


def listed(run: Run[Any], store: Store, owner: Owner = ME) -> dict[str, ListedConversation]:
    page = run(store.list_conversations(owner, ConversationFilter(), PageQuery(None, 100, True)))
    return {c.id: c for c in page.conversations}


def counts(run: Run[Any], store: Store) -> dict[str, int]:
    return {cid: c.item_count for cid, c in listed(run, store).items()}


def test_create_append_delete(run: Run[Any], store: Store) -> None:
    run(store.create_conversation(ME, NewConversation(ConversationRow("conv_a", 1_700_000_000, b"{}"), [item("a1"), item("a2")])))
    run(store.create_conversation(ME, NewConversation(ConversationRow("conv_b", 1_700_000_001, b"{}"))))
    assert counts(run, store) == {"conv_a": 2, "conv_b": 0}
    run(store.append_items(ME, ItemAppend("conv_a", [item("a3"), item("a4"), item("a5")])))
    run(store.append_items(ME, ItemAppend("conv_b", [item("b1")])))
    run(store.append_items(ME, ItemAppend("conv_b", [])))
    assert counts(run, store) == {"conv_a": 5, "conv_b": 1}
    run(store.delete_item(ME, "conv_a", "a2"))
    run(store.delete_item(ME, "conv_b", "b1"))
    assert counts(run, store) == {"conv_a": 4, "conv_b": 0}
    # The count is the live number, next_seq is not: after a delete, an append goes on.
    run(store.append_items(ME, ItemAppend("conv_b", [item("b2")])))
    assert counts(run, store) == {"conv_a": 4, "conv_b": 1}
    assert counts(run, store)["conv_a"] == len(
        run(store.list_items(ME, "conv_a", PageQuery(None, 100, False))).items
    )


def test_failed_writes_count_nothing(run: Run[Any], store: Store) -> None:
    run(store.create_conversation(ME, NewConversation(ConversationRow("conv_a", 1_700_000_000, b"{}"), [item("a1")])))
    with pytest.raises(ItemConflict):
        run(store.append_items(ME, ItemAppend("conv_a", [item("a2"), item("a1")])))
    with pytest.raises(ItemMissing):
        run(store.delete_item(ME, "conv_a", "nope"))
    assert counts(run, store) == {"conv_a": 1}


def test_leased_append_counts(run: Run[Any], store: Store) -> None:
    run(store.create_conversation(ME, NewConversation(ConversationRow("conv_a", 1_700_000_000, b"{}"))))
    run(store.take_lease(ME, "conv_a", "me", 30))
    run(store.append_items_leased(ME, "conv_a", [item("r1"), item("r2")], "me"))
    assert counts(run, store) == {"conv_a": 2}


def test_last_activity_follows_writes(run: Run[Any], store: Store) -> None:
    run(store.create_conversation(ME, NewConversation(ConversationRow("conv_a", 1_700_000_000, b"{}"))))
    assert listed(run, store)["conv_a"].last_active_at == 1_700_000_000
    before = int(time.time())
    run(store.append_items(ME, ItemAppend("conv_a", [item("a1")])))
    assert listed(run, store)["conv_a"].last_active_at >= before


def test_import_counts(run: Run[Any], store: Store) -> None:
    dumps = [
        ConversationDump(ME, ConversationRow("conv_i", 1_700_000_000, b"{}"), 1_700_000_500, [item("i1"), item("i2"), item("i3")]),
        ConversationDump(ME, ConversationRow("conv_j", 1_700_000_001, b"{}"), 1_700_000_600, []),
    ]
    assert run(store.import_conversations(dumps)) == []
    assert counts(run, store) == {"conv_i": 3, "conv_j": 0}
    assert listed(run, store)["conv_i"].last_active_at == 1_700_000_500
    run(store.delete_item(ME, "conv_i", "i2"))
    assert counts(run, store)["conv_i"] == 2


def test_owners_see_their_own(run: Run[Any], store: Store) -> None:
    run(store.create_conversation(ME, NewConversation(ConversationRow("conv_a", 1_700_000_000, b"{}"), [item("a1")])))
    assert listed(run, store, Owner("other", "")) == {}


def test_migration_fills_the_count(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Conversations stored before 0011 get their live count (deleted items not counted)."""
    real = migrate.load

    async def scenario() -> None:
        await store.open()
        try:
            monkeypatch.setattr(migrate, "load", lambda backend: [m for m in real(backend) if m.version < 11])
            await store.migrate()
            # Rows as a server before 0011 wrote them: positions 0..2 reserved, one deleted.
            if isinstance(store, SQLiteStore):
                db = store.db
                db.execute(
                    "INSERT INTO conversations (id, project, user_key, created_at, updated_at, metadata, next_seq)"
                    " VALUES ('conv_old', 'p', '', 1700000000, 1700000000, X'7B7D', 3),"
                    " ('conv_none', 'p', '', 1700000001, 1700000001, X'7B7D', 0)"
                )
                pk = db.execute("SELECT pk FROM conversations WHERE id = 'conv_old'").fetchone()[0]
                db.executemany(
                    "INSERT INTO items (conv, seq, id, type, body, mask) VALUES (?, ?, ?, 'message', X'7B7D', 0)",
                    [(pk, 0, "o1"), (pk, 2, "o3")],
                )
            else:
                assert isinstance(store, PostgresStore)
                pool = store.pool
                pk = await pool.fetchval(
                    "INSERT INTO conversations (id, project, user_key, created_at, updated_at, metadata, next_seq)"
                    " VALUES ('conv_old', 'p', '', 1700000000, 1700000000, '\\x7b7d', 3) RETURNING pk"
                )
                await pool.execute(
                    "INSERT INTO conversations (id, project, user_key, created_at, updated_at, metadata, next_seq)"
                    " VALUES ('conv_none', 'p', '', 1700000001, 1700000001, '\\x7b7d', 0)"
                )
                await pool.executemany(
                    "INSERT INTO items (conv, seq, id, type, body, mask) VALUES ($1, $2, $3, 'message', '\\x7b7d', 0)",
                    [(pk, 0, "o1"), (pk, 2, "o3")],
                )
            monkeypatch.setattr(migrate, "load", real)
            assert 11 in await store.migrate()
            page = await store.list_conversations(ME, ConversationFilter(), PageQuery(None, 10, True))
            assert {c.id: c.item_count for c in page.conversations} == {"conv_old": 2, "conv_none": 0}
        finally:
            await store.close()

    asyncio.run(scenario())
