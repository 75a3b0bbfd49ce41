"""Crash safety: SIGKILL the server at random moments under concurrent writes, restart it,
and check that nothing acknowledged was lost and nothing unacknowledged is half there.

SQLite: one ``convostore serve`` on one file, alternately with one process and with
``--workers 2`` (the whole process group is killed). PostgreSQL: two server processes
on one database, both killed; the database itself is never touched. After every kill:
``PRAGMA integrity_check`` and ``foreign_key_check`` (SQLite), the schema invariants
(no orphan item, every ``next_seq`` past the last position; on SQLite every item indexed
for search or queued, no words left of a deleted item), then :meth:`Ledger.verify`
on every stored row, then a restart and a read of every live conversation over HTTP.

Default run: 3 kills on SQLite and 2 on PostgreSQL. ``CONVOSTORE_FULL=1``: 25 each.
Run alone: ``python -m pytest -m crash``.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.reliability.ledger import Client, Ledger
from tests.reliability.server import Server, scale

pytestmark = [pytest.mark.reliability, pytest.mark.crash]

CLIENTS = 6
REPORT: dict[str, Any] = {}

Rows = tuple[list[tuple[str, str, int]], set[str]]

_ROWS = "SELECT c.id, i.id, i.seq FROM items i JOIN conversations c ON c.pk = i.conv"
_ORPHANS = "SELECT count(*) FROM items WHERE conv NOT IN (SELECT pk FROM conversations)"
_BEHIND = (
    "SELECT count(*) FROM conversations c"
    " WHERE c.next_seq <= (SELECT max(i.seq) FROM items i WHERE i.conv = c.pk)"
)

# Search (migration 0100): every item (each has text here) is indexed or in a queued range,
# in the transaction that wrote it; nothing indexed is gone.
_UNSEARCHABLE = (
    "SELECT count(*) FROM items i WHERE NOT EXISTS (SELECT 1 FROM item_words w"
    " WHERE w.rowid = i.rowid) AND NOT EXISTS (SELECT 1 FROM item_text_pending p"
    " WHERE p.conv = i.conv AND i.seq BETWEEN p.first_seq AND p.last_seq)"
)
_STALE_WORDS = "SELECT count(*) FROM item_words WHERE rowid NOT IN (SELECT rowid FROM items)"


def sqlite_rows(path: Path) -> Rows:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute(_ORPHANS).fetchone() == (0,)
        assert db.execute(_BEHIND).fetchone() == (0,)
        assert db.execute(_UNSEARCHABLE).fetchone() == (0,)
        assert db.execute(_STALE_WORDS).fetchone() == (0,)
        rows = [(c, i, s) for c, i, s in db.execute(_ROWS)]
        conversations = {r[0] for r in db.execute("SELECT id FROM conversations")}
    finally:
        db.close()
    return rows, conversations


def postgres_rows(url: str) -> Rows:
    async def read() -> Rows:
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval(_ORPHANS) == 0
            assert await conn.fetchval(_BEHIND) == 0
            rows = [(r[0], r[1], r[2]) for r in await conn.fetch(_ROWS)]
            conversations = {r[0] for r in await conn.fetch("SELECT id FROM conversations")}
        finally:
            await conn.close()
        return rows, conversations

    return asyncio.run(read())


def list_ids(url: str, conversation_id: str) -> list[str]:
    out: list[str] = []
    params: dict[str, Any] = {"order": "asc", "limit": 100}
    with httpx.Client(base_url=url, timeout=30) as http:
        while True:
            response = http.get(f"/conversations/{conversation_id}/items", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            out += [item["id"] for item in page["data"]]
            if not page["has_more"]:
                return out
            params["after"] = page["last_id"]


def crash_cycles(
    kills: int,
    start: Callable[[int], list[Server]],
    rows: Callable[[], Rows],
    seed: int,
) -> dict[str, Any]:
    """``kills`` times: start servers, load them, SIGKILL them at a random moment, check."""
    ledger = Ledger()
    rnd = random.Random(seed)
    unexpected: list[str] = []
    stored: dict[str, int] = {}
    for cycle in range(kills):
        servers = start(cycle)
        try:
            if cycle:
                # What the last check saw is served after the restart, in the same order.
                held, _ = rows()
                by_conv: dict[str, list[tuple[int, str]]] = {}
                for conv, item, seq in held:
                    by_conv.setdefault(conv, []).append((seq, item))
                for conv in ledger.live()[:20]:
                    expected = [item for _, item in sorted(by_conv.get(conv, []))]
                    assert list_ids(servers[0].url, conv) == expected
            stop = threading.Event()
            clients = [
                Client(ledger, servers[n % len(servers)].url, stop, seed * 1000 + cycle * 100 + n)
                for n in range(CLIENTS)
            ]
            for client in clients:
                client.start()
            time.sleep(rnd.uniform(0.3, 1.5))
        finally:
            for server in servers:
                server.kill()
        stop.set()
        for client in clients:
            client.join(timeout=30)
            assert not client.is_alive()
            unexpected += client.unexpected
        stored = ledger.verify(*rows())
    assert not unexpected, unexpected[:5]
    return {
        "kills": kills,
        "requests": ledger.requests,
        "answers": dict(sorted(ledger.answers.items())),
        "batches": len(ledger.batches),
        **stored,
        "losses": 0,
    }


def test_sigkill_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    log = tmp_path / "server.log"

    def start(cycle: int) -> list[Server]:
        workers = "2" if cycle % 2 else "1"
        return [Server(path, log, "--workers", workers).start()]

    kills = scale(3, 25)
    report = crash_cycles(kills, start, lambda: sqlite_rows(path), seed=kills)
    REPORT["sqlite"] = report
    print("\nsqlite crash:", report)
    assert "Traceback" not in log.read_text()


def test_sigkill_postgres(pg_url: str, tmp_path: Path) -> None:
    def start(cycle: int) -> list[Server]:
        with ExitStack() as stack:
            servers = [
                Server(pg_url, tmp_path / f"server{n}.log", "--pool-size", "4")
                for n in range(2)
            ]
            for server in servers:
                stack.callback(server.kill)
                server.start()
            stack.pop_all()
            return servers

    kills = scale(2, 25)
    report = crash_cycles(kills, start, lambda: postgres_rows(pg_url), seed=kills + 1)
    REPORT["postgres"] = report
    print("\npostgres crash:", report)
    for n in range(2):
        assert "Traceback" not in (tmp_path / f"server{n}.log").read_text()
