"""A search reads only its owner's part of the index, on both backends (issue 15, M1).

The property is measured as work, not time: the work one owner's search does (SQLite:
virtual machine steps; PostgreSQL: buffers touched, from EXPLAIN ANALYZE) is the same
whether another project holds a handful of matching items or a hundred times more. Before
issue 15 both backends read every project's matches and filtered them afterwards, so that
work grew with the other project's items (and its time told a word's frequency there).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import orjson

from convostore.service.listing import search_query
from convostore.store import search_text
from convostore.store.base import (
    ConversationRow,
    ItemSearch,
    NewConversation,
    Owner,
    SearchQuery,
    Store,
    StoredItem,
)
from convostore.store.postgres import PostgresStore
from convostore.store.postgres_ext import _SEARCH as PG_SEARCH
from convostore.store.sqlite import SQLiteStore
from convostore.store.sqlite_ext import _SEARCH as SQLITE_SEARCH

T = TypeVar("T")
Run = Callable[[Awaitable[T]], T]

ATTACKER = Owner("attacker", "")
VICTIM = Owner("victim", "")
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
OTHER = ["india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa"]
ABSENT = [
    "qua",
    "rom",
    "sie",
    "tan",
    "uni",
    "vic",
    "whi",
    "xra",
    "yan",
    "zul",
    "qub",
    "roc",
    "sib",
    "tap",
    "uma",
    "vim",
]
# The attack of the review: 16 prefixes (3 letters, the shortest now allowed).
ATTACK = " ".join(f"{w[:3]}*" for w in WORDS) + " " + " ".join(f"{w[:3]}*" for w in WORDS[::-1])


def message(item_id: str, text: str) -> StoredItem:
    body = {
        "id": item_id,
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }
    return StoredItem(item_id, "message", orjson.dumps(body), 0)


def fill(run: Run[Any], store: Store, owner: Owner, start: int, count: int) -> None:
    words = WORDS if owner == VICTIM else OTHER
    for n in range(start, start + count, 20):
        items = [
            message(f"msg_{m}", " ".join(f"{w}{m % 7}" for w in words))
            for m in range(n, min(n + 20, start + count))
        ]
        run(
            store.create_conversation(
                owner,
                NewConversation(
                    ConversationRow(f"conv_{owner.project}{owner.user}_{n}", 1_700_000_000, b"{}"),
                    items,
                ),
            )
        )


def indexed(run: Run[Any], store: Store, owner: Owner) -> None:
    """Every queued item of the owner in the index (a search waits for that)."""
    run(store.search_items(owner, ItemSearch(search_query("any"), 1)))


def work(run: Run[Any], store: Store, owner: Owner, query: SearchQuery) -> int:
    tag = search_text.owner_tag(owner.project, owner.user)
    if isinstance(store, SQLiteStore):
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        db = sqlite3.connect(store.path)
        try:
            db.set_progress_handler(count, 1)
            args = [search_text.fts5_query(tag, query), owner.project, owner.user, 101]
            db.execute(SQLITE_SEARCH.format(bound=""), args).fetchall()
        finally:
            db.close()
        return steps
    assert isinstance(store, PostgresStore)

    async def explain() -> int:
        conn = await asyncpg.connect(store.dsn)
        try:
            args = [search_text.tsquery(tag, query), owner.project, owner.user, 101]
            plan = await conn.fetchval(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + PG_SEARCH.format(bound=""), *args
            )
        finally:
            await conn.close()
        root = json.loads(plan)[0]["Plan"]
        return int(root["Shared Hit Blocks"]) + int(root["Shared Read Blocks"])

    return run(explain())


def test_a_search_does_the_same_work_whatever_another_project_holds(
    run: Run[Any], store: Store
) -> None:
    """The review's oracle, as work: the attacker's 16 prefixes of words frequent in the
    victim's project cost what 16 prefixes of words found nowhere cost."""
    fill(run, store, VICTIM, 0, 2000)
    fill(run, store, ATTACKER, 0, 20)  # the attacker's own items, other words
    indexed(run, store, VICTIM)
    indexed(run, store, ATTACKER)
    frequent = work(run, store, ATTACKER, search_query(ATTACK))
    absent = work(run, store, ATTACKER, search_query(" ".join(f"{w}*" for w in ABSENT)))
    assert frequent <= absent * 1.1 + 20, (frequent, absent)
    # The victim's items are found by the victim, never by the attacker.
    victim_hits = run(store.search_items(VICTIM, ItemSearch(search_query("alpha3"), 100)))
    assert len(victim_hits.hits) == 100 and victim_hits.has_more
    attacker_hits = run(store.search_items(ATTACKER, ItemSearch(search_query(ATTACK), 100)))
    assert attacker_hits.hits == []


def test_index_terms_carry_their_owners_tag(run: Run[Any], store: Store) -> None:
    fill(run, store, ATTACKER, 0, 1)
    fill(run, store, Owner("attacker", "someone"), 0, 1)
    indexed(run, store, ATTACKER)
    indexed(run, store, Owner("attacker", "someone"))
    tags = {search_text.owner_tag("attacker", ""), search_text.owner_tag("attacker", "someone")}
    assert len(tags) == 2
    if isinstance(store, SQLiteStore):
        db = sqlite3.connect(store.path)
        try:
            db.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, item_text, row)")
            terms = [row[0] for row in db.execute("SELECT term FROM temp.vocab")]
        finally:
            db.close()
    else:
        assert isinstance(store, PostgresStore)

        async def lexemes() -> list[str]:
            conn = await asyncpg.connect(store.dsn)
            try:
                return [
                    r[0] for r in await conn.fetch("SELECT (unnest(tsv)).lexeme FROM item_search")
                ]
            finally:
                await conn.close()

        terms = run(lexemes())
    assert terms and {term[: 1 + search_text.TAG_LENGTH] for term in terms} == tags
