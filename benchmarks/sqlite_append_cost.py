"""What a 20-item append costs inside SQLite, by part of the schema (issue 21).

    python benchmarks/sqlite_append_cost.py [N]

Opens a migrated :class:`~convostore.store.sqlite.SQLiteStore` in a temporary folder and
times ``append_items`` with 20 message items N times (default 300; the median and
quartiles of the calls) and the search indexer's work per item (N appends queued, then
indexed). Then, on copies of the file, it times the store's INSERTs (the 20-row
``executemany`` and the search queue's row) and ``COMMIT`` with one part of the schema or
one setting changed at a time, and the per-item queue of migration 0014 (an insert
trigger) for comparison. Times are the calling thread's CPU (``time.thread_time``), so
other load on the machine moves them little.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from convostore.store import sqlite_append
from convostore.store import sqlite_maintenance as search_index
from convostore.store.base import ConversationRow, ItemAppend, NewConversation, Owner, StoredItem
from convostore.store.sqlite import SQLiteStore

OWNER = Owner("proj", "")
BODY = json.dumps(
    {
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": "Summarise the last three messages, please."}],
    }
).encode()
INSERT = "INSERT INTO items (conv, seq, id, type, body, mask) VALUES (?, ?, ?, ?, ?, ?)"
_counter = [0]


def batch(k: int = 20) -> list[StoredItem]:
    out = []
    for _ in range(k):
        _counter[0] += 1
        out.append(StoredItem(f"msg_{time.time_ns():032x}{_counter[0]:016x}", "message", BODY, 1))
    return out


async def through_store(path: Path, n: int) -> list[float]:
    """The main thread's CPU of each of ``n`` calls (the indexer thread runs meanwhile)."""
    store = SQLiteStore(path)
    await store.open()
    await store.migrate()
    try:
        for c in range(16):
            await store.create_conversation(
                OWNER, NewConversation(ConversationRow(f"conv_{c}", 1_700_000_000, b"{}"))
            )
        for i in range(100):
            await store.append_items(OWNER, ItemAppend(f"conv_{i % 16}", batch()))
        batches = [batch() for _ in range(n)]
        took = []
        for i, items in enumerate(batches):
            started = time.thread_time()
            await store.append_items(OWNER, ItemAppend(f"conv_{i % 16}", items))
            took.append((time.thread_time() - started) * 1e6)
        return sorted(took)
    finally:
        await store.close()


def indexing(path: Path, n: int) -> tuple[float, float]:
    """The search indexer's thread CPU per item: ``n`` appends queued with the indexer
    stopped, then indexed in batches on a connection of its own, as its thread does:
    (reading and extracting the text, writing the words)."""

    async def queue() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.migrate()
        assert store._maintenance is not None
        store._maintenance.stop()
        try:
            for c in range(16):
                await store.create_conversation(
                    OWNER, NewConversation(ConversationRow(f"conv_{c}", 1_700_000_000, b"{}"))
                )
            for i in range(n):
                await store.append_items(OWNER, ItemAppend(f"conv_{i % 16}", batch()))
        finally:
            await store.close()

    asyncio.run(queue())
    db = sqlite3.connect(path, isolation_level=None)
    reading = writing = 0.0
    try:
        while True:
            started = time.thread_time()
            taken = search_index.extract(db)
            read = time.thread_time()
            if not taken:
                break
            db.execute("BEGIN IMMEDIATE")
            search_index.store(db, taken)
            db.execute("COMMIT")
            reading += read - started
            writing += time.thread_time() - read
    finally:
        db.close()
    items = n * 20
    return reading / items * 1e6, writing / items * 1e6


# The search queue as migration 0014 kept it: a row per item, by an insert trigger.
PER_ITEM_QUEUE = [
    "CREATE TABLE queue_0014 (ticket INTEGER PRIMARY KEY AUTOINCREMENT, item INTEGER NOT NULL,"
    " project TEXT NOT NULL, user_key TEXT NOT NULL)",
    "CREATE INDEX queue_0014_item ON queue_0014 (item)",
    "CREATE INDEX queue_0014_owner ON queue_0014 (project, user_key, ticket)",
    "CREATE TRIGGER queue_0014_insert AFTER INSERT ON items BEGIN"
    " INSERT INTO queue_0014 (item, project, user_key)"
    " SELECT new.rowid, project, user_key FROM conversations WHERE pk = new.conv; END",
]


def raw(path: Path, n: int, setup: list[str], savepoint: bool, queue: bool) -> tuple[float, float]:
    """Per append: the store's 20-row INSERT (and, with ``queue``, its one search queue
    row, ``sqlite_append.queue_search``), then COMMIT."""
    copy = path.with_name("copy.db")
    shutil.copy(path, copy)
    db = sqlite3.connect(copy, isolation_level=None)
    try:
        for statement in ["PRAGMA journal_mode = WAL", "PRAGMA foreign_keys = ON", *setup]:
            db.execute(statement)
        pk = db.execute("SELECT pk FROM conversations WHERE id = 'conv_1'").fetchone()[0]
        seq = db.execute("SELECT max(seq) FROM items WHERE conv = ?", (pk,)).fetchone()[0] + 1
        inserting = committing = 0.0
        for _ in range(n):
            rows = [(pk, seq + k, it.id, it.type, it.body, it.mask) for k, it in enumerate(batch())]
            started = time.thread_time()
            db.execute("BEGIN IMMEDIATE")
            if savepoint:
                db.execute("SAVEPOINT write")
            db.executemany(INSERT, rows)
            if queue:
                sqlite_append.queue_search(db, pk, seq, seq + len(rows) - 1)
            if savepoint:
                db.execute("RELEASE write")
            inserted = time.thread_time()
            db.execute("COMMIT")
            inserting += inserted - started
            committing += time.thread_time() - inserted
            seq += len(rows)
        return inserting / n * 1e6, committing / n * 1e6
    finally:
        db.close()
        copy.unlink()


MEMORY = "PRAGMA temp_store = MEMORY"
VARIANTS: tuple[tuple[str, list[str], bool, bool], ...] = (
    (
        "0014: a queue row per item (trigger), SAVEPOINT, temp_store=MEMORY",
        [MEMORY, *PER_ITEM_QUEUE],
        True,
        False,
    ),
    (
        "0100: a queue row per append, SAVEPOINT, temp_store=MEMORY (the store)",
        [MEMORY],
        True,
        True,
    ),
    ("0100, temp_store default (a file)", ["PRAGMA temp_store = 0"], True, True),
    ("0100, no SAVEPOINT", [], False, True),
    ("no search queue at all", [], False, False),
    ("... and no items_id index", ["DROP INDEX items_id"], False, False),
    (
        "... and no items_conv_id index",
        ["DROP INDEX items_id", "DROP INDEX items_conv_id"],
        False,
        False,
    ),
)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    with tempfile.TemporaryDirectory(prefix="convostore-append-cost-") as tmp:
        path = Path(tmp) / "store.db"
        took = asyncio.run(through_store(path, n))
        print(
            f"SQLiteStore.append_items, 20 items, main-thread CPU per call: median"
            f" {statistics.median(took):.0f} us (quartiles {took[n // 4]:.0f}, {took[3 * n // 4]:.0f})"
        )
        reading, writing = indexing(Path(tmp) / "indexed.db", n)
        print(
            f"search indexer, thread CPU per item: reading the text {reading:.1f} us,"
            f" writing the words {writing:.1f} us"
        )
        for label, setup, savepoint, queue in VARIANTS:
            inserting, committing = raw(path, n, setup, savepoint, queue)
            print(f"  {label:72s} INSERTs {inserting:5.0f} us  COMMIT {committing:5.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
