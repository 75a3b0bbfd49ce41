"""Measurements behind the extensions of issue 7 (docs/list.md, search.md, export.md,
observability.md). One run, this machine; prints a table per part.

    python benchmarks/extensions.py [--backend sqlite|postgres] [--conversations N]
                                    [--pg-url URL] [--parts list,search,append,export]
    python benchmarks/extensions.py --overhead

Seeds N conversations (one item each, with metadata) through the import path, then times
the list and search statements through the store (median of repeated calls), appends with
and without the search index, export/import throughput and peak memory (real
processes), and the per-request cost of observability (metrics, access log).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from convostore.store import migrate
from convostore.store.base import (
    ConversationDump,
    ConversationFilter,
    ConversationRow,
    ItemAppend,
    ItemSearch,
    NewConversation,
    Owner,
    PageQuery,
    SearchQuery,
    Store,
    StoredItem,
)

ME = Owner("bench", "")
WORDS = [f"w{n}" for n in range(5000)]  # a Zipf-ish vocabulary: w0 is everywhere, w4999 rare


def text(rng: random.Random) -> str:
    return " ".join(WORDS[min(len(WORDS) - 1, int(rng.paretovariate(0.6))) - 1] for _ in range(12))


def dumps_for(n0: int, count: int, rng: random.Random) -> list[ConversationDump]:
    out = []
    for n in range(n0, n0 + count):
        meta = {"tenant": f"t{n % 1000}", "tier": ("free", "pro", "team")[n % 3]}
        body = orjson.dumps({"id": f"msg_{n}", "type": "message", "role": "user", "status": "completed", "content": [{"type": "input_text", "text": text(rng)}]})
        row = ConversationRow(f"conv_{n:012d}", 1_700_000_000 + n // 10, orjson.dumps(meta))
        out.append(ConversationDump(ME, row, row.created_at, [StoredItem(f"msg_{n}", "message", body, 0)]))
    return out


async def seed(store: Store, total: int) -> float:
    rng = random.Random(7)
    start = time.perf_counter()
    for n0 in range(0, total, 2000):
        await store.import_conversations(dumps_for(n0, min(2000, total - n0), rng))
    return time.perf_counter() - start


async def timed(call: Any, repeat: int = 50) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


async def part_list(store: Store, total: int) -> None:
    mid = f"conv_{total // 2:012d}"
    cases = {
        "first page (20), no filter": lambda: store.list_conversations(ME, ConversationFilter(), PageQuery(None, 20, True)),
        "page after the middle one": lambda: store.list_conversations(ME, ConversationFilter(), PageQuery(mid, 20, True)),
        "created_after/before window": lambda: store.list_conversations(ME, ConversationFilter((), 1_700_000_000 + total // 40, 1_700_000_000 + total // 20), PageQuery(None, 20, True)),
        "metadata tenant=t7 (0.1%)": lambda: store.list_conversations(ME, ConversationFilter((("tenant", "t7"),)), PageQuery(None, 20, True)),
        "metadata tier=pro (33%)": lambda: store.list_conversations(ME, ConversationFilter((("tier", "pro"),)), PageQuery(None, 20, True)),
        "tenant=t7 AND tier=pro": lambda: store.list_conversations(ME, ConversationFilter((("tenant", "t7"), ("tier", "pro"))), PageQuery(None, 20, True)),
        "tenant=t7 after the middle": lambda: store.list_conversations(ME, ConversationFilter((("tenant", "t7"),)), PageQuery(mid, 20, True)),
    }
    for name, call in cases.items():
        print(f"| list: {name} | {await timed(call):.3f} ms |")
    # the alternative: JSON functions on the stored metadata, no side table
    if store.backend == "sqlite":
        db = store.db  # type: ignore[attr-defined]
        sql = ("SELECT id FROM conversations WHERE project = ? AND user_key = ? AND json_extract(CAST(metadata AS TEXT), '$.tenant') = ?"
               " ORDER BY created_at DESC, pk DESC LIMIT 21")

        async def by_json() -> None:
            db.execute(sql, ("bench", "", "t7")).fetchall()
    else:
        sql = ("SELECT id FROM conversations WHERE project = $1 AND user_key = $2 AND convert_from(metadata, 'UTF8')::jsonb ->> 'tenant' = $3"
               " ORDER BY created_at DESC, pk DESC LIMIT 21")

        async def by_json() -> None:
            await store.pool.fetch(sql, "bench", "", "t7")  # type: ignore[attr-defined]
    print(f"| list: tenant=t7 by JSON functions, no side table (alternative) | {await timed(by_json, 5):.3f} ms |")
    sql_rare = sql.replace("'t7'", "'t7'")

    async def by_json_absent() -> None:
        if store.backend == "sqlite":
            store.db.execute(sql_rare, ("bench", "", "absent")).fetchall()  # type: ignore[attr-defined]
        else:
            await store.pool.fetch(sql_rare, "bench", "", "absent")  # type: ignore[attr-defined]

    print(f"| list: a value no conversation has, JSON functions (alternative) | {await timed(by_json_absent, 3):.3f} ms |")
    print(f"| list: a value no conversation has, side table | {await timed(lambda: store.list_conversations(ME, ConversationFilter((('tenant', 'absent'),)), PageQuery(None, 20, True))):.3f} ms |")


async def part_search(store: Store) -> None:
    page = await store.search_items(ME, ItemSearch(SearchQuery((("w0",),)), 20))
    cursor = (page.hits[-1].conversation_id, page.hits[-1].item.id)
    cases = {
        "common word (w0, in most items)": (SearchQuery((("w0",),)), None),
        "common word, next page (after)": (SearchQuery((("w0",),)), cursor),
        "mid word (w50)": (SearchQuery((("w50",),)), None),
        "rare word (w4000)": (SearchQuery((("w4000",),)), None),
        "absent word": (SearchQuery((("nothing",),)), None),
        "two words AND (w1 w30)": (SearchQuery((("w1",), ("w30",))), None),
        "prefix (w49*)": (SearchQuery((("w49*",),)), None),
    }
    for name, (query, after) in cases.items():
        print(f"| search: {name} | {await timed(lambda q=query, a=after: store.search_items(ME, ItemSearch(q, 20, a)), 20):.3f} ms |")


async def part_append(store: Store, index: bool) -> None:
    owner = Owner("append", "")
    await store.create_conversation(owner, NewConversation(ConversationRow("conv_append", 1, b"{}")))
    rng = random.Random(1)
    bodies = [orjson.dumps({"id": f"msg_a{n}", "type": "message", "role": "user", "status": "completed", "content": [{"type": "input_text", "text": text(rng)}]}) for n in range(2000)]
    start = time.perf_counter()
    for n in range(0, 2000, 2):
        await store.append_items(owner, ItemAppend("conv_append", [StoredItem(f"msg_a{m}", "message", bodies[m], 0) for m in (n, n + 1)]))
    per = (time.perf_counter() - start) / 1000 * 1e6
    print(f"| append 2 items ({'with' if index else 'without'} the search index) | {per:.1f} µs |")


def part_export(db: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "dump.jsonl"
        for label, args, out in (("export", ["export", "--db", db], dump), ("import", ["import", str(dump), "--db", str(Path(tmp) / "copy.db")], None)):
            command = ["/usr/bin/time", "-f", "%M %e", sys.executable, "-m", "convostore", *args]
            with open(out, "wb") if out else open(os.devnull, "wb") as sink:
                result = subprocess.run(command, stdout=sink, stderr=subprocess.PIPE, check=True)
            rss_kb, seconds = result.stderr.decode().strip().splitlines()[-1].split()
            size = dump.stat().st_size / 1e6
            print(f"| {label}: {size:.0f} MB in {float(seconds):.1f} s ({size / float(seconds):.1f} MB/s), peak RSS {int(rss_kb) / 1024:.0f} MiB |")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--conversations", type=int, default=200_000)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--parts", default="list,search,append,export")
    parser.add_argument("--db", default=None, help="reuse a seeded database")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if args.backend == "sqlite":
        from convostore.store.sqlite import SQLiteStore

        db = args.db or tempfile.mktemp(suffix=".db")
        store: Store = SQLiteStore(db)
    else:
        import asyncpg

        from convostore.store.postgres import PostgresStore

        db = args.db or args.pg_url.rsplit("/", 1)[0] + "/convostore_bench7"
        if not args.db:
            admin = await asyncpg.connect(args.pg_url)
            await admin.execute("DROP DATABASE IF EXISTS convostore_bench7 WITH (FORCE)")
            await admin.execute("CREATE DATABASE convostore_bench7")
            await admin.close()
        store = PostgresStore(db)
    await store.open()
    await store.migrate()
    if not args.db:
        seconds = await seed(store, args.conversations)
        print(f"| seed {args.conversations} conversations + items via import | {seconds:.1f} s |")
        if args.backend == "postgres":
            await store.pool.execute("VACUUM ANALYZE")  # type: ignore[attr-defined]
    if "list" in parts:
        await part_list(store, args.conversations)
    if "search" in parts:
        await part_search(store)
    if "append" in parts:
        await part_append(store, True)
    await store.close()
    if "append" in parts and args.backend == "sqlite":
        real = migrate.load
        migrate.load = lambda backend: [m for m in real(backend) if m.version < 3]  # type: ignore[assignment]
        bare = SQLiteStore(tempfile.mktemp(suffix=".db"))
        await bare.open()
        await bare.migrate()
        await part_append(bare, False)
        await bare.close()
        migrate.load = real  # type: ignore[assignment]
    if "export" in parts:
        part_export(db)




async def overhead(n: int = 20000) -> None:
    """Per-request cost of observability, in process (no sockets): GET an item through
    ConvoStore with metrics and access log off (request ids are always on), then with
    each part switched on."""
    import io

    from convostore.api.app import ConvoStore
    from convostore.settings import Settings
    from convostore.store.sqlite import SQLiteStore

    store = SQLiteStore(tempfile.mktemp(suffix=".db"))
    settings = Settings()
    inner = ConvoStore(Settings(metrics=False, access_log=False), store)
    await inner.startup()
    conv = ConversationRow("conv_x", 1, b"{}")
    body = b'{"id":"msg_1","type":"message","role":"user","status":"completed","content":[{"type":"input_text","text":"hi"}]}'
    await store.create_conversation(Owner("default", ""), NewConversation(conv, [StoredItem("msg_1", "message", body, 0)]))
    scope = {"type": "http", "method": "GET", "path": "/v1/conversations/conv_x/items/msg_1", "raw_path": b"/v1/conversations/conv_x/items/msg_1", "query_string": b"", "headers": [(b"host", b"x"), (b"user-agent", b"bench"), (b"accept", b"*/*")]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    sink = open(os.devnull, "w")  # noqa: SIM115
    apps = {
        "request id only": inner,
        "+ metrics": ConvoStore(Settings(access_log=False), store),
        "+ metrics + access log (to /dev/null)": ConvoStore(settings, store, log_stream=sink),
        "+ all, access log to a file": ConvoStore(settings, store, log_stream=open(tempfile.mktemp(), "w")),  # noqa: SIM115
    }
    _ = io
    results: dict[str, list[float]] = {name: [] for name in apps}
    for _round in range(5):
        for name, app in apps.items():
            start = time.perf_counter()
            for _ in range(n):
                await app(scope, receive, send)
            results[name].append((time.perf_counter() - start) / n * 1e6)
    base = min(results["request id only"])
    for name, samples in results.items():
        best = min(samples)
        print(f"| {name} | {best:.1f} µs | +{best - base:.1f} µs |")


if __name__ == "__main__":
    if "--overhead" in sys.argv:
        asyncio.run(overhead())
    else:
        asyncio.run(main())
