"""EXPLAIN ANALYZE of the create's statement on PostgreSQL (issue 21): the median
execution time of the statement the store sends for a create without items, with the
benchmark's three-key metadata and with none, and the triggers' share.

    PYTHONPATH=src python benchmarks/explain_create_pg.py [--dsn postgresql://…/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import asyncpg

from convostore.store import postgres
from convostore.store.postgres import PostgresStore

METADATA = {"user": "user-0042", "topic": "benchmarks", "channel": "web"}


async def main(admin_dsn: str, runs: int, setup: list[str]) -> None:
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute("DROP DATABASE IF EXISTS explain_create")
    await admin.execute("CREATE DATABASE explain_create")
    await admin.close()
    dsn = admin_dsn.rsplit("/", 1)[0] + "/explain_create"
    store = PostgresStore(dsn)
    await store.open()
    await store.migrate()
    await store.close()
    conn = await asyncpg.connect(dsn)
    for statement in setup:  # what-ifs: --setup "DROP INDEX …"
        await conn.execute(statement)
    try:
        for variant, meta in (("3 keys", json.dumps(METADATA).encode()), ("empty", b"{}")):
            times, triggers = [], []
            for i in range(runs):
                conv_id = f"conv_{variant[0]}{i}"
                args = (conv_id, "p", "u", 1, meta, None)
                plan = await conn.fetchval(
                    "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + postgres._CREATE_EMPTY, *args
                )
                p = json.loads(plan)[0]
                times.append(p["Execution Time"])
                triggers.append(sum(t.get("Time", 0.0) for t in p.get("Triggers", [])))
            walls = []
            for i in range(runs):  # the statement itself, committed, as the client sees it
                conv_id = f"conv_w{variant[0]}{i}"
                args = (conv_id, "p", "u", 1, meta, None)
                start = time.perf_counter()
                await conn.execute(postgres._CREATE_EMPTY, *args)
                walls.append(time.perf_counter() - start)
            skip = runs // 6
            print(
                f"{variant}: execution {statistics.median(times[skip:]) * 1000:.1f} us,"
                f" triggers {statistics.median(triggers[skip:]) * 1000:.1f} us,"
                f" executed and committed {statistics.median(walls[skip:]) * 1e6:.1f} us",
                sorted({t["Trigger Name"] for t in p.get("Triggers", [])}),
            )
        rows = await conn.fetchval("SELECT count(*) FROM conversation_metadata")
        print("metadata rows", rows)
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--setup", action="append", default=[])
    ns = parser.parse_args()
    asyncio.run(main(ns.dsn, ns.runs, ns.setup))
