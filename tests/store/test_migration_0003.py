"""Migration 0003 on a store that already holds data: the metadata table and the search
index are filled from what is there (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest

from convostore.store import migrate
from convostore.store.base import (
    ConversationFilter,
    ConversationRow,
    ItemSearch,
    NewConversation,
    Owner,
    PageQuery,
    SearchQuery,
    Store,
)
from convostore.store.postgres import PostgresStore
from convostore.store.sqlite import SQLiteStore

ME = Owner("p", "")


def test_backfill(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real = migrate.load

    async def scenario() -> None:
        await store.open()
        # The rows are written by today's store code, which needs the columns of 0011 and
        # 0013 (independent of 0003): they are applied early, the others keep their order.
        early = (11, 13)
        monkeypatch.setattr(migrate, "load", lambda backend: [m for m in real(backend) if m.version < 3 or m.version in early])
        await store.migrate()
        body = b'{"id":"msg_1","type":"message","role":"user","status":"completed","content":[{"type":"input_text","text":"legacy words"}]}'
        old = ConversationRow("conv_old", 1_700_000_000, b'{"team":"red"}')
        if isinstance(store, SQLiteStore):
            # Today's SQLite store queues written items in the search queue of 0100, which
            # this schema has not: the item is written as the code of that time wrote it.
            await store.create_conversation(ME, NewConversation(old))
            store.db.execute("INSERT INTO items (conv, seq, id, type, body, mask) SELECT pk, 0, 'msg_1', 'message', ?, 0 FROM conversations WHERE id = 'conv_old'", (body,))
            store.db.execute("UPDATE conversations SET next_seq = 1, item_count = 1 WHERE id = 'conv_old'")
        else:
            assert isinstance(store, PostgresStore)
            # Today's PostgreSQL appends write item_search rows themselves (migration 0110):
            # the item is written as a server of 0002's time wrote it.
            await store.create_conversation(ME, NewConversation(old))
            await store.db.execute(
                "WITH c AS (UPDATE conversations SET next_seq = 1, item_count = 1 WHERE id = 'conv_old' RETURNING pk)"
                " INSERT INTO items (conv, seq, id, type, body, mask) SELECT pk, 0, 'msg_1', 'message', $1, 0 FROM c",
                body,
            )
        await store.create_conversation(ME, NewConversation(ConversationRow("conv_plain", 1_700_000_001, b"{}")))
        monkeypatch.setattr(migrate, "load", real)
        assert await store.migrate() == [v.version for v in real(store.backend) if v.version >= 3 and v.version not in early]
        page = await store.list_conversations(ME, ConversationFilter((("team", "red"),)), PageQuery(None, 10, True))
        assert [c.id for c in page.conversations] == ["conv_old"]
        everything = await store.list_conversations(ME, ConversationFilter(), PageQuery(None, 10, True))
        assert [c.id for c in everything.conversations] == ["conv_plain", "conv_old"]
        found = await store.search_items(ME, ItemSearch(SearchQuery((("legacy",),)), 10))
        assert [(h.conversation_id, h.item.id) for h in found.hits] == [("conv_old", "msg_1")]
        await store.close()

    asyncio.run(scenario())
