"""Migration 0100 on a SQLite database whose search queue holds rows of the old form
(0014: one row per item, written by the insert trigger): they become ranges, every
queued item is found by search once migrated, a deleted one is not, and an item indexed
before the migration still leaves the index when deleted."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import orjson
import pytest

from convostore.store import migrate
from convostore.store.base import ItemSearch, Owner, SearchQuery
from convostore.store.search_text import indexed_words, owner_tag
from convostore.store.sqlite import SQLiteStore

ME = Owner("p", "u")


def body(text: str) -> bytes:
    return orjson.dumps(
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )


async def found(store: SQLiteStore, word: str) -> list[str]:
    page = await store.search_items(ME, ItemSearch(SearchQuery(((word,),)), 20))
    return [hit.item.id for hit in page.hits]


def test_old_queue_rows_migrate_and_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    real = migrate.load

    async def before() -> None:
        # The schema of before 0100, written as its code wrote it: items by plain INSERT
        # (the 0014 trigger queues each), one of them indexed by hand as its indexer did.
        monkeypatch.setattr(
            migrate, "load", lambda backend: [m for m in real(backend) if m.version < 100]
        )
        store = SQLiteStore(path)
        await store.open()
        assert store._maintenance is not None
        store._maintenance.stop()  # nothing indexes the old queue with today's code
        await store.migrate()
        db = store.db
        db.execute(
            "INSERT INTO conversations (id, project, user_key, created_at, updated_at,"
            " metadata, next_seq, item_count) VALUES ('conv_a', 'p', 'u', 1, 1, x'7b7d', 4, 4)"
        )
        words = ["quokka one", "quokka two", "quokka gone", "quokka indexed"]
        for seq, text in enumerate(words):
            db.execute(
                "INSERT INTO items (conv, seq, id, type, body, mask)"
                " SELECT pk, ?, ?, 'message', ?, 0 FROM conversations WHERE id = 'conv_a'",
                (seq, f"msg_{seq}", body(text)),
            )
        assert db.execute("SELECT count(*) FROM item_text_pending").fetchone()[0] == 4
        db.execute("DELETE FROM items WHERE id = 'msg_2'")  # the old trigger unqueues it
        (rowid,) = db.execute("SELECT rowid FROM items WHERE id = 'msg_3'").fetchone()
        indexed = indexed_words(owner_tag("p", "u"), ["quokka indexed"])
        db.execute("DELETE FROM item_text_pending WHERE item = ?", (rowid,))
        db.execute("INSERT INTO item_words (rowid, words) VALUES (?, ?)", (rowid, indexed))
        db.execute("INSERT INTO item_text (rowid, words) VALUES (?, ?)", (rowid, indexed))
        await store.close()

    asyncio.run(before())
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM item_text_pending").fetchone()[0] == 2
    monkeypatch.setattr(migrate, "load", real)

    async def after() -> None:
        store = SQLiteStore(path)  # as a server starts: the indexer thread runs
        await store.open()
        try:
            assert await store.migrate() == [m.version for m in real("sqlite") if m.version >= 100]
            queued = store.db.execute(
                "SELECT i.id, p.first_seq, p.last_seq, p.project, p.user_key"
                " FROM item_text_pending p JOIN items i ON i.conv = p.conv AND i.seq = p.first_seq"
                " ORDER BY p.ticket"
            ).fetchall()
            assert queued in (
                [("msg_0", 0, 0, "p", "u"), ("msg_1", 1, 1, "p", "u")],
                [("msg_1", 1, 1, "p", "u")],  # the indexer already took the first
                [],
            )
            assert sorted(await found(store, "quokka")) == ["msg_0", "msg_1", "msg_3"]
            assert await found(store, "gone") == []
            async with store.transactions.write() as db:
                db.execute("DELETE FROM items WHERE id IN ('msg_0', 'msg_3')")
            assert await found(store, "quokka") == ["msg_1"]
            assert await found(store, "indexed") == []
            assert store.db.execute("SELECT count(*) FROM item_text_pending").fetchone()[0] == 0
            store.db.execute("INSERT INTO item_text (item_text) VALUES ('integrity-check')")
        finally:
            await store.close()

    asyncio.run(after())
