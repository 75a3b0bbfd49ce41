"""A page of items is an index range scan on PostgreSQL: O(log n) in the conversation.

The list query of :mod:`convostore.store.postgres` (with an ``after`` cursor, both
orders) is EXPLAINed on a conversation of 20,000 items next to another of 5,000 (and
3,000 more conversations), with
the plan PostgreSQL picks for the actual values and the generic plan a prepared
statement switches to. Every access to ``items`` must be an index scan: a range
scan of ``items_conv_seq`` from the cursor for the page, a point lookup for the cursor;
there must be no Seq Scan and no Sort. Run with ``-s`` to see the plans (docs/scale-out.md shows one).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from convostore.store.base import ConversationRow, ItemAppend, NewConversation, Owner, StoredItem
from convostore.store.postgres import _APPEND, _FIND_ITEMS, _GET_ITEM, PAGE_SQL, PostgresStore
from tests.conftest import PostgresServer

BIG = 20_000
OWNER = Owner("proj_plan", "")


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


async def fill(url: str) -> None:
    store = PostgresStore(url, max_size=2)
    await store.open()
    try:
        await store.migrate()
        for conversation_id, count in (("conv_big", BIG), ("conv_small", 5_000)):
            await store.create_conversation(
                OWNER, NewConversation(ConversationRow(conversation_id, 1_700_000_000, b"{}"))
            )
            for start in range(0, count, 2_000):
                batch = [
                    StoredItem(f"msg_{conversation_id}_{n:05d}", "message", b'{"x":1}', 0)
                    for n in range(start, start + 2_000)
                ]
                await store.append_items(OWNER, ItemAppend(conversation_id, batch))
        # Other conversations, so that looking one up by id is not a scan of a tiny table.
        for n in range(0, 3_000, 500):
            async with store.pool.acquire() as conn:
                await conn.executemany(
                    "INSERT INTO conversations (id, project, user_key, created_at, updated_at,"
                    " metadata) VALUES ($1, $2, '', 0, 0, '{}')",
                    [(f"conv_other_{m:05d}", f"proj_{m % 7}") for m in range(n, n + 500)],
                )
    finally:
        await store.close()


async def explain(
    url: str, after: bool, descending: bool, generic: bool
) -> tuple[dict[str, Any], str]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE")
        args: tuple[Any, ...] = ("conv_big", OWNER.project, OWNER.user, 21, 8 << 20)
        if after:
            args += (f"msg_conv_big_{BIG // 2:05d}",)
        sql = PAGE_SQL[after, descending]
        if generic:
            # The plan a prepared statement falls back to after five runs: made without the
            # values ($1, $2, ...), so it must be an index scan whatever they are.
            await conn.execute(f"PREPARE page AS {sql}")
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            literals = ", ".join(str(a) if isinstance(a, int) else f"'{a}'" for a in args)
            query, params = f"EXECUTE page({literals})", ()
        else:
            query, params = sql, args
        analyzed = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}", *params)
        text = await conn.fetch(
            f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) {query}", *params
        )
        rows = await conn.fetch(sql, *args)
        assert len(rows) == 21
        plan: dict[str, Any] = json.loads(analyzed)[0]
        return plan, "\n".join(r[0] for r in text)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def filled_url(pg_server: PostgresServer) -> Iterator[str]:
    server = pg_server
    url = server.create()
    asyncio.run(fill(url))
    yield url
    server.drop(url)


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("after", [True, False], ids=["after", "first"])
def test_list_page_is_an_index_range_scan(
    filled_url: str, after: bool, descending: bool, generic: bool
) -> None:
    plan, text = asyncio.run(explain(filled_url, after, descending, generic))
    print(text)
    all_nodes = list(nodes(plan["Plan"]))
    kinds = [n["Node Type"] for n in all_nodes]
    assert "Seq Scan" not in kinds, text
    assert not any("Sort" in kind for kind in kinds), text
    on_items = [n for n in all_nodes if n.get("Relation Name") == "items"]
    assert all(n["Node Type"] in ("Index Scan", "Index Only Scan") for n in on_items), text
    assert len(on_items) == (2 if after else 1), text
    page = next(n for n in on_items if n["Index Name"] == "items_conv_seq")
    if after:
        # The cursor is a point lookup by id (the planner may take either index holding it) ...
        anchor = next(n for n in on_items if n is not page)
        assert anchor["Index Name"] in ("items_conv_id", "items_id"), text
        # ... and the page a range scan of (conv, seq) from the cursor on.
        bound = "<" if descending else ">"
        assert f"seq {bound} a.seq" in page["Index Cond"], text
    assert "conv = c.pk" in page["Index Cond"], text
    assert page["Scan Direction"] == ("Backward" if descending else "Forward"), text
    # O(log n), not O(n): the page reads 21 rows and a handful of index and heap pages.
    assert page["Actual Rows"] == 21, text
    assert plan["Plan"]["Shared Hit Blocks"] + plan["Plan"].get("Shared Read Blocks", 0) < 60, text


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_find_items_starts_from_the_ids(filled_url: str, generic: bool) -> None:
    """Resolving client-named ids (item_reference, D21) looks the ids up, then their
    conversations by key: never a walk over the owner's conversations (proj_0 has ~430)."""

    async def explain_find() -> tuple[dict[str, Any], str]:
        conn = await asyncpg.connect(filled_url)
        try:
            await conn.execute("ANALYZE")
            args = "ARRAY['msg_conv_small_04999','msg_nope']::text[], 'proj_plan', ''"
            await conn.execute(f"PREPARE find AS {_FIND_ITEMS}")
            if generic:
                await conn.execute("SET plan_cache_mode = force_generic_plan")
            query = f"EXECUTE find({args})"
            analyzed = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}")
            text = await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {query}")
            return json.loads(analyzed)[0], "\n".join(r[0] for r in text)
        finally:
            await conn.close()

    plan, text = asyncio.run(explain_find())
    print(text)
    all_nodes = list(nodes(plan["Plan"]))
    assert "Seq Scan" not in [n["Node Type"] for n in all_nodes], text
    on_items = [n for n in all_nodes if n.get("Relation Name") == "items"]
    on_convs = [n for n in all_nodes if n.get("Relation Name") == "conversations"]
    assert on_items and all("id = ANY" in n.get("Index Cond", "") for n in on_items), text
    assert on_convs and all(
        n.get("Index Name") == "conversations_pkey" and n.get("Index Cond") == "(pk = i.conv)"
        for n in on_convs
    ), text


def test_conversation_lookups_use_the_id_without_statistics(pg_server: PostgresServer) -> None:
    """A conversations table that just grew, before autovacuum analyzed it: every request's
    lookup of its conversation must still go by id (conversations_id_owner or the unique
    id index), never walk the owner's conversations through the list index."""
    url = pg_server.create()

    async def plans() -> list[str]:
        store = PostgresStore(url, max_size=2)
        await store.open()
        try:
            await store.migrate()
            await store.create_conversation(OWNER, NewConversation(ConversationRow("conv_big", 1_700_000_000, b"{}")))
        finally:
            await store.close()
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("ALTER TABLE conversations SET (autovacuum_enabled = false)")
            await conn.execute(
                "INSERT INTO conversations (id, project, user_key, created_at, updated_at, metadata)"
                " SELECT 'conv_other_' || g, $1, $2, 1700000000 + g, 0, '{}'"
                " FROM generate_series(1, 20000) g",
                OWNER.project,
                OWNER.user,
            )
            texts = []
            for sql, args in [
                (PAGE_SQL[False, True], ("conv_big", OWNER.project, OWNER.user, 21, 8 << 20)),
                (PAGE_SQL[True, False], ("conv_big", OWNER.project, OWNER.user, 21, 8 << 20, "msg_x")),
                (_GET_ITEM, ("conv_big", OWNER.project, OWNER.user, "msg_x")),
                (_APPEND, ("conv_big", OWNER.project, OWNER.user, 0, ["msg_y"], ["message"], [b"{}"], [0], "t0", ["y"], "on")),
            ]:
                rows = await conn.fetch(f"EXPLAIN (COSTS OFF) {sql}", *args)
                texts.append("\n".join(r[0] for r in rows))
            return texts
        finally:
            await conn.close()

    try:
        for text in asyncio.run(plans()):
            print(text)
            assert "conversations_owner_created" not in text, text
            assert "Seq Scan on conversations" not in text, text
    finally:
        pg_server.drop(url)


def test_response_chains_are_index_probes_without_statistics(pg_server: PostgresServer) -> None:
    """Issue 17: a chain of 300 stored responses among 3,000, in tables that just grew and
    were never analyzed: reading the chain, a response's output and its input items must
    probe indexes, never scan responses, response_items or items (measured before: a
    hash join scanned the whole responses table once per link)."""
    from convostore.store.base import ResponseRecord, Turn
    from convostore.store.postgres_events import _EVENTS
    from convostore.store.postgres_responses import _HISTORY, _ITEMS

    url = pg_server.create()

    async def plans() -> list[str]:
        store = PostgresStore(url, max_size=2)
        await store.open()
        try:
            await store.migrate()
            async with store.pool.acquire() as conn:
                for table in ("responses", "response_items", "items", "response_events"):
                    await conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
            await store.create_conversation(OWNER, NewConversation(ConversationRow("conv_r", 1_700_000_000, b"{}")))
            previous = None
            for n in range(3_000):
                record = ResponseRecord(f"resp_{n}", 0, "completed", b"{}", previous if n < 300 else None)
                ask = StoredItem(f"msg_{n}_in", "message", b"{}", 0)
                answer = StoredItem(f"msg_{n}_out", "message", b"{}", 0)
                conversation = "conv_r" if n % 10 == 0 else None
                await store.save_response(OWNER, record, Turn([ask], [answer], conversation))
                previous = record.id
            for n in range(20):  # streamed background responses' events (issue 17)
                await store.start_response(OWNER, ResponseRecord(f"resp_bg{n}", 0, "queued", b"{}"), 30)
                await store.append_response_events(f"resp_bg{n}", 0, [b"{}"] * 50)
        finally:
            await store.close()
        conn = await asyncpg.connect(url)
        try:
            texts = []
            for sql, args in [
                (_HISTORY, ("resp_299", OWNER.project, OWNER.user)),
                (_ITEMS + " WHERE r.resp = $1 AND r.output ORDER BY r.seq", (5,)),
                (_EVENTS, ("resp_bg7", 10, 200)),
            ]:
                rows = await conn.fetch(f"EXPLAIN (COSTS OFF) {sql}", *args)
                texts.append("\n".join(r[0] for r in rows))
            return texts
        finally:
            await conn.close()

    try:
        for text in asyncio.run(plans()):
            print(text)
            assert "Seq Scan" not in text, text
            assert "Hash" not in text, text
    finally:
        pg_server.drop(url)
