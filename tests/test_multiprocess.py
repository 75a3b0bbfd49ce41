"""Several server processes on one database, many clients appending to the same conversations.

PostgreSQL: four ``convostore serve`` processes on four ports over one new, empty
database (so they also migrate it at the same moment), 32 client threads spread evenly
over them. SQLite: ``convostore serve --workers 4`` on one file. Each client request
appends a batch of three items to one of a few shared conversations. Afterwards every
acknowledged item is listed exactly once, each request's items are contiguous and in
request order, nothing unacknowledged was stored, and no request failed (on SQLite:
no "database is locked"). On PostgreSQL the servers together never held more than
processes x pool size connections.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from convostore.store import migrate
from tests.conftest import PostgresServer
from tests.support import free_port

CLIENTS = 32
REQUESTS = 50  # per client
BATCH = 3
CONVERSATIONS = 4


@contextmanager
def serving(db: str, log: Path, *args: str) -> Iterator[str]:
    """One ``convostore serve``; yields its base URL once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "convostore", "serve", "--db", db, "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(urls: list[str], logs: list[Path]) -> None:
    deadline = time.monotonic() + 45
    for url, log in zip(urls, logs, strict=True):
        while True:
            try:
                if httpx.get(url + "/conversations/conv_probe", timeout=2).status_code == 404:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not start:\n{log.read_text()}")
            time.sleep(0.05)


@contextmanager
def servers(db: str, tmp_path: Path, count: int, *args: str) -> Iterator[list[str]]:
    """``count`` servers started at the same moment (not one after the other)."""
    logs = [tmp_path / f"server{n}.log" for n in range(count)]
    with ExitStack() as stack:
        urls = [stack.enter_context(serving(db, log, *args)) for log in logs]
        wait_ready(urls, logs)
        yield urls
    for log in logs:
        text = log.read_text()
        assert "Traceback" not in text and "locked" not in text, text


def hammer(urls: list[str], conversation_ids: list[str]) -> tuple[list[tuple[str, list[str]]], int]:
    """32 clients, each bound to one server, each sending REQUESTS batches; returns the
    acknowledged batches as (conversation, [item ids in request order]) and the failures."""
    acknowledged: list[tuple[str, list[str]]] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        url = urls[number % len(urls)]
        with httpx.Client(base_url=url, timeout=60) as http:
            start.wait()
            for request in range(REQUESTS):
                conversation_id = conversation_ids[(number + request) % len(conversation_ids)]
                texts = [f"c{number}-r{request}-k{k}" for k in range(BATCH)]
                body = {"items": [{"role": "user", "content": t} for t in texts]}
                try:
                    response = http.post(f"/conversations/{conversation_id}/items", json=body)
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"{url}: {exc!r}")
                    continue
                if response.status_code != 200:
                    with lock:
                        failures.append(f"{url}: {response.status_code} {response.text}")
                    continue
                data = response.json()["data"]
                assert [d["content"][0]["text"] for d in data] == texts
                with lock:
                    acknowledged.append((conversation_id, [d["id"] for d in data]))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:5]
    return acknowledged, len(failures)


def list_all(url: str, conversation_id: str) -> list[str]:
    out: list[str] = []
    params: dict[str, Any] = {"order": "asc", "limit": 100}
    with httpx.Client(base_url=url, timeout=30) as http:
        while True:
            page = http.get(f"/conversations/{conversation_id}/items", params=params).json()
            out += [item["id"] for item in page["data"]]
            if not page["has_more"]:
                return out
            params["after"] = page["last_id"]


def run_workload(urls: list[str]) -> dict[str, float]:
    conversation_ids = []
    for n in range(CONVERSATIONS):
        created = httpx.post(urls[n % len(urls)] + "/conversations", json={}, timeout=30)
        assert created.status_code == 200, created.text
        conversation_ids.append(created.json()["id"])
    began = time.monotonic()
    acknowledged, _ = hammer(urls, conversation_ids)
    elapsed = time.monotonic() - began
    assert len(acknowledged) == CLIENTS * REQUESTS
    for n, conversation_id in enumerate(conversation_ids):
        listed = list_all(urls[-1 - n % len(urls)], conversation_id)
        batches = [ids for conv, ids in acknowledged if conv == conversation_id]
        # Exactly the acknowledged items, each once ...
        assert len(listed) == len(set(listed)) == sum(len(b) for b in batches)
        assert set(listed) == {i for b in batches for i in b}
        # ... and each request's items side by side, in request order.
        position = {item_id: p for p, item_id in enumerate(listed)}
        for batch in batches:
            first = position[batch[0]]
            assert listed[first : first + BATCH] == batch
    items = CLIENTS * REQUESTS * BATCH
    print(
        f"\n{len(urls)} server(s): {CLIENTS * REQUESTS} requests, {items} items in "
        f"{elapsed:.1f} s ({CLIENTS * REQUESTS / elapsed:.0f} requests/s)"
    )
    return {"seconds": elapsed}


class ConnectionSampler:
    """Counts the convostore connections to one database while the load runs."""

    def __init__(self, admin_url: str, database: str):
        self.admin_url = admin_url
        self.database = database
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            while not self._stop.is_set():
                count = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = $1 AND application_name = 'convostore'",
                    self.database,
                )
                self.peak = max(self.peak, int(count))
                self.samples += 1
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def recorded_versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    finally:
        await conn.close()


def test_four_servers_on_one_postgres_database(
    pg_server: PostgresServer, pg_url: str, tmp_path: Path
) -> None:
    pool_size = 3
    database = pg_url.rpartition("/")[2]
    with (
        servers(pg_url, tmp_path, 4, "--pool-size", str(pool_size)) as urls,
        ConnectionSampler(pg_server.dsn, database) as sampler,
    ):
        run_workload(urls)
    print(f"peak connections {sampler.peak} over {sampler.samples} samples (bound {4 * pool_size})")
    assert 0 < sampler.peak <= 4 * pool_size
    # The four servers migrated the empty database at the same moment: each version once.
    assert asyncio.run(recorded_versions(pg_url)) == [m.version for m in migrate.load("postgres")]


def test_sqlite_workers_share_one_file(tmp_path: Path) -> None:
    db = str(tmp_path / "convostore.db")
    with servers(db, tmp_path, 1, "--workers", "4") as urls:
        run_workload(urls)


def test_postgres_serve_workers_and_migrate_command(pg_url: str, tmp_path: Path) -> None:
    """``convostore migrate`` then ``serve --workers 2`` on PostgreSQL, CONVOSTORE_DB honoured."""
    env = {**os.environ, "CONVOSTORE_DB": pg_url}
    command = [sys.executable, "-m", "convostore", "migrate"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    versions = [m.version for m in migrate.load("postgres")]
    assert f"schema version {versions[-1]}" in first.stdout
    assert "applied" in first.stdout
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert "nothing to apply" in again.stdout, again.stdout + again.stderr
    with servers(pg_url, tmp_path, 1, "--workers", "2") as urls:
        created = httpx.post(
            urls[0] + "/conversations", json={"items": [{"role": "user", "content": "hi"}]}
        )
        assert created.status_code == 200, created.text
        conversation_id = created.json()["id"]
        for _ in range(10):  # several connections, so both workers likely answer
            with httpx.Client() as http:
                got = http.get(f"{urls[0]}/conversations/{conversation_id}/items")
                assert [i["content"][0]["text"] for i in got.json()["data"]] == ["hi"]


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers take their settings from flags here, not from the developer's environment."""
    for name in list(os.environ):
        if name.startswith("CONVOSTORE_") and name != "CONVOSTORE_TEST_PG":
            monkeypatch.delenv(name)
