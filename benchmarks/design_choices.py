"""Micro-measurements behind design choices (printed as ratios, one run).

1. SQLite called inline on the event loop vs handed to a worker thread per query.
1b. A SQLite write transaction: inline with busy_timeout (before issue 15, it could wait
    for the lock on the loop thread), through store/sqlite_tx.py's asynchronous lock
    retries, or handed to a single writer thread.
2. orjson vs the standard library json for the bodies convostore encodes and decodes.
3. Item validation with the spec-compiled closures vs jsonschema on the same schema.

    python benchmarks/design_choices.py
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from convostore.items.registry import Registry


def per_call(fn: Callable[[], Any], seconds: float = 0.5) -> float:
    """Microseconds per call, best of three rounds."""
    best = float("inf")
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            for _ in range(100):
                fn()
            n += 100
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def sqlite_inline_vs_thread() -> tuple[float, float]:
    path = Path(tempfile.mkdtemp()) / "bench.db"
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE items (conv INTEGER, seq INTEGER, id TEXT, body BLOB, PRIMARY KEY (conv, seq))")
    db.executemany("INSERT INTO items VALUES (1, ?, ?, ?)", [(i, f"msg_{i}", b"x" * 300) for i in range(10_000)])
    query = "SELECT body FROM items WHERE conv = 1 AND seq = ?"

    def inline() -> None:
        db.execute(query, (5000,)).fetchone()

    async def threaded(n: int) -> float:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        for _ in range(n):
            await loop.run_in_executor(None, inline)
        return (time.perf_counter() - start) / n * 1e6

    inline_us = per_call(inline)
    thread_us = asyncio.run(threaded(5000))
    return inline_us, thread_us


def sqlite_write_path() -> tuple[float, float, float]:
    from concurrent.futures import ThreadPoolExecutor

    from convostore.store.sqlite_tx import Transactions

    path = Path(tempfile.mkdtemp()) / "write.db"
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # the server's default
    db.execute("CREATE TABLE items (pk INTEGER PRIMARY KEY, body BLOB)")
    body = b"x" * 300
    n = 3000

    def write_inline() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO items (body) VALUES (?)", (body,))
        db.execute("COMMIT")

    async def inline() -> float:
        db.execute("PRAGMA busy_timeout = 10000")
        start = time.perf_counter()
        for _ in range(n):
            write_inline()
        return (time.perf_counter() - start) / n * 1e6

    async def retried() -> float:
        tx = Transactions(db, group_commit=False, lock_timeout=10)
        start = time.perf_counter()
        for _ in range(n):
            async with tx.write() as conn:
                conn.execute("INSERT INTO items (body) VALUES (?)", (body,))
        return (time.perf_counter() - start) / n * 1e6

    async def writer_thread() -> float:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1) as writer:
            start = time.perf_counter()
            for _ in range(n):
                await loop.run_in_executor(writer, write_inline)
            return (time.perf_counter() - start) / n * 1e6

    return asyncio.run(inline()), asyncio.run(retried()), asyncio.run(writer_thread())


def json_libraries() -> tuple[float, float]:
    item = {
        "id": "msg_" + "a" * 48,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello there! " * 20, "annotations": [], "logprobs": []}],
        "status": "completed",
    }
    raw = json.dumps(item).encode()

    def with_orjson() -> None:
        orjson.dumps(orjson.loads(raw))

    def with_json() -> None:
        json.dumps(json.loads(raw)).encode()

    return per_call(with_orjson), per_call(with_json)


def validation() -> tuple[float, float]:
    import jsonschema

    registry = Registry()
    item = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
    schema = {"$ref": "#/$defs/FunctionToolCall", "$defs": registry.schemas}
    text = json.dumps(schema).replace("#/components/schemas/", "#/$defs/")
    validator = jsonschema.Draft202012Validator(json.loads(text))

    def compiled() -> None:
        registry.prepare(dict(item), "items[0]")

    def with_jsonschema() -> None:
        validator.validate(item)

    return per_call(compiled), per_call(with_jsonschema)


def main() -> None:
    inline_us, thread_us = sqlite_inline_vs_thread()
    print(f"sqlite point query: inline {inline_us:.1f} us, via thread {thread_us:.1f} us ({thread_us / inline_us:.1f}x)")
    inline_w, retried_w, thread_w = sqlite_write_path()
    print(
        f"sqlite write transaction: inline {inline_w:.1f} us, async lock retries {retried_w:.1f} us"
        f" ({retried_w / inline_w:.2f}x), writer thread {thread_w:.1f} us ({thread_w / inline_w:.2f}x)"
    )
    fast, slow = json_libraries()
    print(f"json decode+encode of an item: orjson {fast:.1f} us, json {slow:.1f} us ({slow / fast:.1f}x)")
    mine, theirs = validation()
    print(f"validate a function_call: compiled {mine:.1f} us, jsonschema {theirs:.1f} us ({theirs / mine:.1f}x)")


if __name__ == "__main__":
    main()
