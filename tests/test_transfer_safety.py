"""Moving and restoring keep everything (issue 19, point 3): keys travel, every item is
checked by the API's registry, a cut dump is detected, a stopped import says what it
committed and resumes, PostgreSQL is analysed after an import."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from convostore.service import transfer
from convostore.service.keys import Keys
from convostore.store.base import Store
from convostore.store.postgres import PostgresStore
from tests.conftest import drop_store, make_store
from tests.support import Api, make_app, running_server


@pytest.fixture
def api(store: Store) -> Iterator[Api]:
    """The app over the test store, seeing a key as soon as it is created."""
    client = Api(make_app(store, key_cache_seconds=0))
    yield client
    client.close()


async def full_dump(store: Store, **kwargs: Any) -> bytes:
    return b"".join([chunk async for chunk in transfer.export_dump(store, **kwargs)])


def seeded(api: Api, conversations: int = 5) -> tuple[str, list[str]]:
    """A key of project acme and conversations made with it; (secret, ids)."""
    store = api.app.store
    _, secret = api.run(Keys(store).create("acme", "backend"))
    auth = {"authorization": f"Bearer {secret}"}
    made = []
    for n in range(conversations):
        created = api.post("/v1/conversations", json={"items": [{"role": "user", "content": f"hello {n}"}]}, headers=auth)
        assert created.status_code == 200, created.text
        made.append(created.json()["id"])
    return secret, made


def other_store(backend: str, tmp_path: Path) -> Store:
    target = make_store(backend, tmp_path / "target")
    Api(make_app(target)).close()  # opened, migrated, closed
    return target


def test_keys_move_with_the_conversations(api: Api, backend: str, tmp_path: Path) -> None:
    """Row: after a move as docs/export.md said, the keys stayed behind; the new server ran
    open and answered the acme client 200 with an empty list."""
    secret, made = seeded(api)
    data = api.run(full_dump(api.app.store))
    records = [orjson.loads(line) for line in data.splitlines()]
    assert records[0]["object"] == "api_key" and records[0]["project"] == "acme"
    assert secret not in data.decode() and "sk-cs-" not in records[0]["hash"]
    assert records[-1] == {"object": "export.end", "version": 1, "counts": {"api_key": 1, "conversation": 5, "item": 5, "response.export": 0}}
    target = other_store(backend, tmp_path)
    copy = Api(make_app(target, key_cache_seconds=0))
    try:
        report = copy.run(transfer.import_lines(target, data.splitlines(keepends=True)))
        assert (report.imported, report.keys) == (5, 1)
        assert copy.run(full_dump(target)) == data  # before a request touches last_used_at
        auth = {"authorization": f"Bearer {secret}"}
        listed = copy.get("/v1/conversations", headers=auth, params={"limit": 100})
        assert listed.status_code == 200
        assert sorted(c["id"] for c in listed.json()["data"]) == sorted(made)
        assert copy.get("/v1/conversations").status_code == 401  # not open: keys came along
    finally:
        copy.close()
        drop_store(target)


def test_no_keys_leaves_them_out(api: Api) -> None:
    seeded(api, 1)
    data = api.run(full_dump(api.app.store, keys=False))
    assert b'"object":"api_key"' not in data
    full = api.run(full_dump(api.app.store))
    target_lines = full.splitlines(keepends=True)
    report = api.run(transfer.import_lines(api.app.store, target_lines, keys=False))
    assert (report.keys, report.keys_skipped, report.skipped) == (0, 0, 1)


def test_a_bogus_item_type_is_refused_like_the_api_refuses_it(api: Api) -> None:
    """Row: a "type": "bogus" item was imported and then served to the SDK."""
    line = orjson.dumps(
        {
            "object": "conversation.export", "version": 1, "id": "conv_bogus", "project": "default", "user_key": "",
            "created_at": 1, "updated_at": 1, "metadata": {}, "items": [{"id": "x_1", "type": "bogus"}],
        }
    ) + b"\n"
    refused = api.post("/v1/conversations", json={"items": [{"id": "x_1", "type": "bogus"}]})
    with pytest.raises(transfer.ImportFailed) as failed:
        api.run(transfer.import_lines(api.app.store, [line], require_end=False))
    assert refused.json()["error"]["message"] in str(failed.value)
    assert "line 1: conversation conv_bogus" in str(failed.value)
    assert api.get("/v1/conversations/conv_bogus").status_code == 404


def cut(data: bytes, at: int) -> list[bytes]:
    return data[:at].splitlines(keepends=True)


def test_a_dump_cut_mid_line_commits_the_lines_before_and_says_so_then_resumes(api: Api, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row: 15,000 conversations committed, then `DumpError: line 15009` with no word of
    what was kept."""
    monkeypatch.setattr(transfer, "IMPORT_CONVERSATIONS", 3)  # several transactions
    seeded(api, 10)
    data = api.run(full_dump(api.app.store))
    lines = data.splitlines(keepends=True)
    middle = sum(len(line) for line in lines[:8]) + 20  # inside line 9 (conversation 8)
    target = other_store(backend, tmp_path)
    copy = Api(make_app(target, key_cache_seconds=0))
    try:
        with pytest.raises(transfer.ImportFailed) as failed:
            copy.run(transfer.import_lines(target, cut(data, middle)))
        report = failed.value.report
        assert report.committed_through == 8
        assert (report.imported, report.keys) == (7, 1)
        message = str(failed.value)
        assert "line 9 is cut short" in message and "through line 8" in message
        assert "imported 7 conversations (7 items), 1 API keys" in message
        assert "run the same import again" in message
        assert copy.run(target.count_conversations(project=None, ids=None)) == 7
        again = copy.run(transfer.import_lines(target, lines))  # resumes
        assert (again.imported, again.skipped, again.keys_skipped) == (3, 7, 1)
        assert copy.run(full_dump(target)) == data
    finally:
        copy.close()
        drop_store(target)


def test_a_dump_cut_at_a_line_boundary_is_detected(api: Api) -> None:
    """Row: a dump cut at a line boundary imported with exit 0."""
    seeded(api, 3)
    data = api.run(full_dump(api.app.store))
    lines = data.splitlines(keepends=True)
    for kept in (lines[:-1], lines[:-2]):  # the trailer lost; a conversation lost too
        with pytest.raises(transfer.ImportFailed, match="without its export\\.end trailer"):
            api.run(transfer.import_lines(api.app.store, kept))
    missing_middle = [*lines[:2], *lines[3:]]
    with pytest.raises(transfer.ImportFailed, match=r"conversation: 3 in the trailer, 2 read"):
        api.run(transfer.import_lines(api.app.store, missing_middle))
    with pytest.raises(transfer.ImportFailed, match="after the export\\.end trailer"):
        api.run(transfer.import_lines(api.app.store, [*lines, lines[1]]))
    with pytest.raises(transfer.ImportFailed, match="unknown record kind 'spaceship'"):
        api.run(transfer.import_lines(api.app.store, [b'{"object":"spaceship"}\n', *lines]))


def test_postgres_is_analysed_after_an_import(api: Api, pg_url: str) -> None:
    seeded(api, 2)
    data = api.run(full_dump(api.app.store))
    target = PostgresStore(pg_url, max_size=2)
    copy = Api(make_app(target, key_cache_seconds=0))
    try:
        copy.run(transfer.import_lines(target, data.splitlines(keepends=True)))

        async def analysed() -> Any:
            conn = await asyncpg.connect(pg_url)
            try:
                return await conn.fetchval("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'items'")
            finally:
                await conn.close()

        assert copy.run(analysed()) is not None
    finally:
        copy.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convostore", *args], capture_output=True, text=True, timeout=120, check=False)


def test_sqlite_to_postgres_by_the_cli_keeps_keys(tmp_path: Path, pg_url: str) -> None:
    """The move of docs/export.md, as an operator types it; the acme client sees its data."""
    source = str(tmp_path / "old.db")
    assert cli("migrate", "--db", source).returncode == 0
    created = cli("keys", "create", "--db", source, "--project", "acme")
    secret = created.stdout.strip()
    with running_server(source) as base:
        made = httpx.post(f"{base}/conversations", json={}, headers={"authorization": f"Bearer {secret}"}).json()["id"]
    dump_file = tmp_path / "dump.jsonl"
    exported = cli("export", "--db", source)
    assert exported.returncode == 0 and "and 1 API keys" in exported.stderr
    dump_file.write_text(exported.stdout)
    assert cli("migrate", "--db", pg_url).returncode == 0
    imported = cli("import", str(dump_file), "--db", pg_url)
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 conversations (0 items), 1 API keys" in imported.stderr
    with running_server(pg_url) as base:
        listed = httpx.get(f"{base}/conversations", headers={"authorization": f"Bearer {secret}"})
        assert listed.status_code == 200 and [c["id"] for c in listed.json()["data"]] == [made]
        assert httpx.get(f"{base}/conversations").status_code == 401
    truncated = tmp_path / "cut.jsonl"
    truncated.write_text(exported.stdout[:-10])
    again = cli("import", str(truncated), "--db", str(tmp_path / "x.db"))
    assert again.returncode == 1 and "no SQLite database" in again.stderr
    assert cli("migrate", "--db", str(tmp_path / "x.db")).returncode == 0
    again = cli("import", str(truncated), "--db", str(tmp_path / "x.db"))
    assert again.returncode == 1 and "cut short" in again.stderr and "Committed before stopping" in again.stderr
    assert "Traceback" not in again.stderr
