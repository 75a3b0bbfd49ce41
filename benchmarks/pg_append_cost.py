"""What a 20-message append costs inside PostgreSQL, by trigger (issue 21).

    python benchmarks/pg_append_cost.py URL DATABASE [RUNS]

Run it with the tree to measure first on PYTHONPATH. Creates DATABASE on the server
URL names if it is not there (migrated and seeded with 500 conversations of 40
messages through :class:`~convostore.store.postgres.PostgresStore`), then runs the
store's own append statement with 20 ~270-byte messages RUNS times (default 30) under
``EXPLAIN (ANALYZE, FORMAT JSON)``, each into the next of the seeded conversations, and
prints the medians of PostgreSQL's execution time and of each trigger's time, in µs.
The statement's parameters are built as ``append_items`` builds them, texts included
where the tree sends them (migration 0110). Alternate two trees on two databases to
compare them: the server is shared with whatever else runs.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite.workloads import message

from convostore.store import postgres
from convostore.store.base import ConversationRow, ItemAppend, NewConversation, Owner, StoredItem

OWNER = Owner("proj", "")
CONVERSATIONS = 500
_counter = [0]


def batch(k: int = 20) -> list[StoredItem]:
    out = []
    for _ in range(k):
        _counter[0] += 1
        n = _counter[0]
        item = message(n)
        if isinstance(item["content"], str):  # stored as the server stores it
            item["content"] = [{"type": "output_text", "text": item["content"]}]
        item_id = f"msg_{time.time_ns():032x}{n:016x}"
        body = json.dumps({"id": item_id, **item, "status": "completed"}).encode()
        out.append(StoredItem(item_id, "message", body, 1))
    return out


def arguments(conversation_id: str, items: list[StoredItem]) -> tuple[Any, ...]:
    key = (conversation_id, OWNER.project, OWNER.user, int(time.time()))
    args = (*key, *postgres._columns(items))
    search = getattr(postgres, "postgres_search", None)
    return args if search is None else (*args, *search.args(OWNER, items))


async def seed(url: str) -> None:
    store = postgres.PostgresStore(url, max_size=2)
    await store.open()
    try:
        await store.migrate()
        for c in range(CONVERSATIONS):
            await store.create_conversation(
                OWNER, NewConversation(ConversationRow(f"conv_{c}", 1_700_000_000, b"{}"))
            )
            for _ in range(2):
                await store.append_items(OWNER, ItemAppend(f"conv_{c}", batch()))
        await store.analyze()
    finally:
        await store.close()


def collect(plan: dict[str, Any]) -> dict[str, float]:
    times: dict[str, float] = defaultdict(float)
    times["execution"] = plan["Execution Time"]
    for trigger in plan.get("Triggers", []):
        name = trigger["Trigger Name"]
        if name.startswith("RI_ConstraintTrigger"):
            name = f"foreign key of {trigger['Relation']}"
        times[name] += trigger["Time"]
    return times


async def main(url: str, database: str, runs: int) -> None:
    admin = await asyncpg.connect(url)
    try:
        there = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not there:
            await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    db_url = urlunsplit(urlsplit(url)._replace(path=f"/{database}"))
    if not there:
        await seed(db_url)
    conn = await asyncpg.connect(db_url)
    try:
        offset = await conn.fetchval("SELECT count(*) FROM items")
        _counter[0] = int(offset) * 7  # fresh ids and texts in every run
        results: dict[str, list[float]] = defaultdict(list)
        for run in range(runs):
            args = arguments(f"conv_{run % CONVERSATIONS}", batch())
            row = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + postgres._APPEND, *args)
            for name, value in collect(json.loads(row)[0]).items():
                results[name].append(value * 1000)
    finally:
        await conn.close()
    for name, values in sorted(results.items()):
        print(f"{name:45s} median {statistics.median(values):8.0f} µs  (n={len(values)})")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 30))
