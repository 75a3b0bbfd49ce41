"""Storage faults: a full disk and a read-only database file.

For the full disk the SQLite file lives on a small tmpfs mounted for the test; the
read-only file is made immutable with ``chattr +i`` (both need root; without them the
tests skip with the reason). Writes must answer 503 with the envelope and log a line
that names the cause, reads must go on, nothing may be corrupted, and once space (or
write access) is back, writes succeed again without a restart.

Also: SQLITE_BUSY never reaches a client as a 5xx with ``--workers 4`` on one file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from convostore.store.sqlite import SQLiteStore
from tests.reliability.ledger import Client, Ledger
from tests.reliability.server import Server, scale
from tests.support import Api, make_app

pytestmark = pytest.mark.reliability


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own, unmounted afterwards."""
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Take every free byte of the file system; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


def texts(api: Api, cid: str) -> list[str]:
    return [item["content"][0]["text"] for item in api.all_items(cid)]


def integrity(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()


def test_disk_full_answers_503_reads_go_on_and_writes_come_back(
    small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = small_fs / "convostore.db"
    api = Api(make_app(SQLiteStore(path)))
    try:
        cid = api.new_conversation(items=[{"role": "user", "content": "before"}])
        filler = fill(small_fs)
        big = "x" * 200_000
        caplog.set_level(logging.ERROR, logger="convostore")
        refused = None
        for _ in range(20):  # the WAL may still have room for a few pages
            response = api.post(
                f"/v1/conversations/{cid}/items", json={"items": [{"role": "user", "content": big}]}
            )
            if response.status_code != 200:
                refused = response
                break
        assert refused is not None, "the full disk never refused a write"
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert error["type"] == "server_error" and "nothing was changed" in error["message"]
        assert any("database or disk is full" in r.getMessage() for r in caplog.records)
        stored_before = texts(api, cid)
        assert stored_before[0] == "before"
        # New conversations cannot be written either; reads go on.
        assert api.post("/v1/conversations", json={"items": [{"role": "user", "content": big}]}).status_code == 503
        assert api.get(f"/v1/conversations/{cid}").status_code == 200
        # Space comes back: the same process writes again, without a restart.
        filler.unlink()
        api.add(cid, {"role": "user", "content": "after"})
        assert texts(api, cid) == [*stored_before, "after"]
        assert api.new_conversation(items=[{"role": "user", "content": big}])
    finally:
        api.close()
    integrity(path)


def chattr(flag: str, *paths: Path) -> None:
    for path in paths:
        result = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"chattr {flag} is not possible here: {result.stderr.strip()}")


def test_read_only_database_file_answers_503_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database file and its WAL made immutable (``chattr +i``: root's permission
    bits do not stop root) while the server has them open."""
    path = tmp_path / "convostore.db"
    wal = tmp_path / "convostore.db-wal"
    api = Api(make_app(SQLiteStore(path)))
    try:
        cid = api.new_conversation(items=[{"role": "user", "content": "before"}])
        caplog.set_level(logging.ERROR, logger="convostore")
        # Not the -shm file: SQLite maps it, and a write to a mapped immutable page is a SIGBUS.
        chattr("+i", path, wal)
        try:
            for attempt in (
                lambda: api.post(f"/v1/conversations/{cid}/items", json={"items": [{"role": "user", "content": "x"}]}),
                lambda: api.post("/v1/conversations", json={}),
                lambda: api.post(f"/v1/conversations/{cid}", json={"metadata": {"a": "b"}}),
                lambda: api.delete(f"/v1/conversations/{cid}"),
            ):
                response = attempt()
                assert response.status_code == 503, response.text
                assert response.json()["error"]["type"] == "server_error"
            assert any(
                "database unavailable" in r.getMessage() and "disk I/O error" in r.getMessage()
                for r in caplog.records
            )
            assert texts(api, cid) == ["before"]
            assert api.get(f"/v1/conversations/{cid}").status_code == 200
        finally:
            chattr("-i", path, wal)
        api.add(cid, {"role": "user", "content": "after"})
        assert texts(api, cid) == ["before", "after"]
    finally:
        api.close()
    integrity(path)


def test_sqlite_busy_never_reaches_a_client_with_workers(tmp_path: Path) -> None:
    """``--workers 4`` on one file (docs/scale-out.md), 12 clients writing at once:
    creates, appends, item and conversation deletes, reads. No 5xx, nothing lost."""
    path = tmp_path / "busy.db"
    ledger = Ledger()
    with Server(path, tmp_path / "server.log", "--workers", "4") as server:
        stop = threading.Event()
        clients = [Client(ledger, server.url, stop, seed=n) for n in range(12)]
        for client in clients:
            client.start()
        time.sleep(scale(3, 60))
        stop.set()
        for client in clients:
            client.join(timeout=60)
        unexpected = [u for c in clients for u in c.unexpected]
        assert not unexpected, unexpected[:5]
        assert ledger.answers.get("no answer", 0) == 0
        assert "locked" not in server.output() and "Traceback" not in server.output()
    db = sqlite3.connect(path)
    rows = [(c, i, s) for c, i, s in db.execute(
        "SELECT c.id, i.id, i.seq FROM items i JOIN conversations c ON c.pk = i.conv"
    )]
    conversations = {r[0] for r in db.execute("SELECT id FROM conversations")}
    db.close()
    ledger.verify(rows, conversations)
    print(f"\n--workers 4: {ledger.requests} requests, answers {ledger.answers}")
    assert os.path.exists(path)
