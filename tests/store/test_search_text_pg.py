"""Migration 0110 (issue 21): PostgreSQL appends send each item's searchable text, read
by the server (search_text.item_text), and index it in their own statement; the
``items_search_insert`` trigger indexes what a statement did not. The index must be
exactly what the trigger alone built before: the same text for every body, the same
rows for every way items are written, and rows written before the migration kept."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import orjson
import pytest

from convostore.store import migrate, postgres_append, postgres_search, search_text
from convostore.store.base import (
    ConversationRow,
    ItemAppend,
    ItemSearch,
    NewConversation,
    Owner,
    SearchQuery,
    StoredItem,
)
from convostore.store.postgres import PostgresStore

ME = Owner("proj", "user one")
KINDS = [*search_text.TEXT_PART_TYPES, "refusal", "message", "function_call", "image", None]
KEYS = ["type", "text", "refusal", "arguments", "output", "content", "a", "bb", "é", "summary"]
STRINGS = ["", " ", "hello world", "O'Brien \\ path", "a\x00b", "Ελληνικά 東京", "x" * 50]


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.35:
        return rng.choice([*STRINGS, 7, 1.5, True, None])
    if roll < 0.55:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    node: dict[str, Any] = {}
    if rng.random() < 0.6:  # most objects look like parts
        kind = node["type"] = rng.choice(KINDS)
        key = "refusal" if kind == "refusal" else "text"
        node[key if rng.random() < 0.7 else rng.choice(KEYS[1:5])] = rng.choice(STRINGS)
    for _ in range(rng.randrange(4)):
        key = rng.choice(KEYS)
        node[key] = rng.choice(KINDS) if key == "type" else _value(rng, depth + 1)
    return node


def bodies() -> list[bytes]:
    """Hand-written cases, then 1,500 random documents (a fixed seed)."""
    written: list[Any] = [
        {"type": "message", "content": [{"type": "input_text", "text": "one two"}]},
        {"type": "message", "content": "plain string content"},
        {
            "type": "message",
            "content": [
                {"type": "refusal", "refusal": "no"},
                {"type": "output_text", "text": "yes"},
            ],
        },
        {"type": "function_call", "arguments": '{"q": "weather"}', "name": "f"},
        {"type": "function_call_output", "output": "sunny"},
        {"type": "function_call_output", "output": [{"type": "input_text", "text": "in"}]},
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "s"}],
            "content": [{"type": "reasoning_text", "text": "r"}],
        },
        # jsonb's key order (shorter first) decides which text comes first
        {"bb": {"type": "text", "text": "second"}, "a": {"type": "text", "text": "first"}},
        {
            "type": "text",
            "text": "root",
            "e": {"type": "text", "text": "sib"},
            "c": [{"type": "text", "text": "child", "d": {"type": "text", "text": "grand"}}],
        },
        {"type": "text", "text": {"type": "text", "text": "nested"}},
        {"type": ["text"], "text": "type is not a string"},
        {"type": "message", "content": [{"type": "input_text", "text": ""}]},
        {"type": "message", "content": [{"type": "input_image", "image_url": "x"}]},
        {"type": "message", "content": [{"type": "input_text", "text": "nul\x00here"}]},
        {"type": "message", "content": [{"type": "input_text", "text": "y " * 60_000}]},
        {"type": {"nested": 1}, "text": "x"},
        [{"type": "text", "text": "a root array"}],
        "a string",
    ]
    encoded = [orjson.dumps(doc) for doc in written]
    encoded.append(b'{"type":"text","text":"dup","text":"last"}')
    encoded.append(b'{"type":"text","text":"escaped \\\\u0000 backslash"}')
    rng = random.Random(21)
    for k in range(1500):
        doc = _value(rng, 0)
        if k % 2:  # an item-like root
            doc = {"type": rng.choice(KINDS), rng.choice(KEYS[1:]): doc, "content": [doc, doc]}
        encoded.append(orjson.dumps(doc))
    return encoded


async def _migrated(url: str) -> None:
    store = PostgresStore(url, max_size=1)
    await store.open()
    try:
        await store.migrate()
    finally:
        await store.close()


def test_item_text_equals_convostore_item_text(pg_url: str) -> None:
    async def run() -> None:
        await _migrated(pg_url)
        conn = await asyncpg.connect(pg_url)
        try:
            cases = bodies()
            want = await conn.fetch(
                "SELECT convostore_item_text(b) FROM unnest($1::bytea[]) WITH ORDINALITY AS t(b, n)"
                " ORDER BY n",
                cases,
            )
        finally:
            await conn.close()
        found = sum(row[0] is not None for row in want)
        assert 300 < found < len(cases)  # the corpus has texts and items without
        for body, row in zip(cases, want, strict=True):
            assert search_text.item_text(body) == row[0], body[:300]

    asyncio.run(run())


INDEXED = (
    "SELECT i.seq, s.tsv::text AS got, s.pk,"
    " convostore_tagged_tsv(convostore_owner_tag(c.project, c.user_key),"
    " convostore_item_text(i.body))::text AS want"
    " FROM items i JOIN conversations c ON c.pk = i.conv"
    " LEFT JOIN item_search s ON s.conv = i.conv AND s.seq = i.seq"
    " WHERE c.id = $1 ORDER BY i.seq"
)


def _item(n: int, doc: dict[str, Any]) -> StoredItem:
    item_id = f"it_{n}"
    return StoredItem(item_id, str(doc["type"]), orjson.dumps({"id": item_id, **doc}), 0)


ITEMS = [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello there"}]},
    {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "input_image", "image_url": "x"}],
    },
    {"type": "function_call", "call_id": "c", "name": "f", "arguments": '{"city": "Oslo"}'},
    {"type": "function_call_output", "call_id": "c", "output": "rainy-ish, 3.5 C"},
    {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "Nope"}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": ""}]},
]


def test_every_write_indexes_as_the_trigger_did(pg_url: str) -> None:
    """Create, append, append under a lease, and an items INSERT of another writer (an
    older server, the trigger alone): every item with text has the row the trigger
    alone would have written, in append order; an item without text has none."""

    async def run() -> None:
        store = PostgresStore(pg_url, max_size=2)
        await store.open()
        try:
            await store.migrate()
            n = iter(range(1000))
            items = [_item(next(n), doc) for doc in ITEMS]
            await store.create_conversation(
                ME, NewConversation(ConversationRow("conv_a", 1, b"{}"), items)
            )
            await store.append_items(
                ME, ItemAppend("conv_a", [_item(next(n), doc) for doc in ITEMS])
            )
            await store.take_lease(ME, "conv_a", "holder", 60)
            await store.append_items_leased(
                ME, "conv_a", [_item(next(n), doc) for doc in ITEMS], "holder"
            )
            # A number orjson cannot read (PostgreSQL can): the trigger indexes that append.
            odd = StoredItem("it_odd", "message", _item(0, ITEMS[0]).body[:-1] + b',"x":1e999}', 0)
            await store.append_items(ME, ItemAppend("conv_a", [_item(next(n), ITEMS[3]), odd]))
            # An append's flag is its statement's only: a plain INSERT after it, in the
            # same transaction, is indexed by the trigger.
            async with store.db.transaction() as conn:
                await conn.execute(
                    postgres_append._APPEND, *_append_args("conv_a", [_item(next(n), ITEMS[2])])
                )
                await conn.execute(
                    "WITH c AS (UPDATE conversations SET next_seq = next_seq + 1,"
                    " item_count = item_count + 1 WHERE id = 'conv_a'"
                    " RETURNING pk, next_seq - 1 AS s)"
                    " INSERT INTO items (conv, seq, id, type, body, mask)"
                    " SELECT pk, s, 'it_old', 'message', $1, 0 FROM c",
                    _item(999, ITEMS[0]).body,
                )
            rows = await store.db.fetch(INDEXED, "conv_a")
        finally:
            await store.close()
        assert len(rows) == 3 * len(ITEMS) + 4
        for row in rows:
            assert row["got"] == row["want"], row["seq"]
        pks = [row["pk"] for row in rows if row["pk"] is not None]
        assert pks == sorted(pks) and len(pks) == 3 * 5 + 4  # the image-only item has no row

    asyncio.run(run())


def _append_args(conversation_id: str, items: list[StoredItem]) -> tuple[Any, ...]:
    return (
        conversation_id,
        ME.project,
        ME.user,
        1,
        [i.id for i in items],
        [i.type for i in items],
        [i.body for i in items],
        [i.mask for i in items],
        *postgres_search.args(ME, items),
    )


def test_rows_from_before_the_migration_stay_searchable(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database indexed by the trigger alone (migrations before 0110, items written by
    a plain INSERT as the servers of then did): migrated, its items are found, new
    appends are found with them, and deletes still take items out of the index."""
    real = migrate.load
    old_body = _item(
        0, {"type": "message", "content": [{"type": "input_text", "text": "legacy words"}]}
    ).body

    async def run() -> None:
        store = PostgresStore(pg_url, max_size=2)
        await store.open()
        try:
            monkeypatch.setattr(migrate, "load", lambda b: [m for m in real(b) if m.version < 110])
            await store.migrate()
            await store.create_conversation(
                ME, NewConversation(ConversationRow("conv_old", 1, b"{}"))
            )
            await store.db.execute(
                "WITH c AS (UPDATE conversations SET next_seq = 1, item_count = 1"
                " WHERE id = 'conv_old' RETURNING pk)"
                " INSERT INTO items (conv, seq, id, type, body, mask)"
                " SELECT pk, 0, 'it_0', 'message', $1, 0 FROM c",
                old_body,
            )
            monkeypatch.setattr(migrate, "load", real)
            assert 110 in await store.migrate()
            new = _item(
                1,
                {
                    "type": "message",
                    "content": [{"type": "output_text", "text": "legacy words again"}],
                },
            )
            await store.append_items(ME, ItemAppend("conv_old", [new]))

            async def found(words: str) -> list[str]:
                page = await store.search_items(ME, ItemSearch(SearchQuery(((words,),)), 10))
                return [hit.item.id for hit in page.hits]

            assert await found("legacy") == ["it_1", "it_0"]
            assert await found("again") == ["it_1"]
            assert await search_text_rows(store) == 2
            await store.delete_item(ME, "conv_old", "it_1")
            assert await found("legacy") == ["it_0"]
            await store.delete_conversation(ME, "conv_old")
            assert await found("legacy") == []
            assert await search_text_rows(store) == 0
        finally:
            await store.close()

    asyncio.run(run())


async def search_text_rows(store: PostgresStore) -> int:
    return int(await store.db.fetchval("SELECT count(*) FROM item_search"))
