"""Backups and the health of the SQLite file (issue 19, point 4).

Row: "a SQLite file corrupted on disk: served; /readyz says ready; writes go into the
malformed file; a warning every 100 ms"."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from convostore.store import sqlite_health
from convostore.store.sqlite import SQLiteStore
from tests.support import Api, make_app


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convostore", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def filled(path: Path, conversations: int = 40, items: int = 20) -> list[str]:
    api = Api(make_app(SQLiteStore(path)))
    try:
        made = []
        for n in range(conversations):
            batch = [{"role": "user", "content": f"conversation {n} item {i} " + "x" * 400} for i in range(items)]
            made.append(api.new_conversation(items=batch))
        return made
    finally:
        api.close()


def damage(path: Path) -> None:
    """Overwrite pages in the middle of the file (item bodies and their b-tree) with garbage."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    with path.open("r+b") as raw:
        for number in range(pages // 3, pages // 3 + 12):
            raw.seek(number * page)
            raw.write(b"\xa5" * page)


def test_backup_of_a_live_database_and_check(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    api = Api(make_app(SQLiteStore(db)))
    try:
        made = [api.new_conversation(items=[{"role": "user", "content": "kept"}]) for _ in range(30)]
        # the server is running (its connection open, the WAL not checkpointed)
        result = cli("backup", "--db", str(db), "--to", "copy.db", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "integrity ok" in result.stdout
        api.new_conversation()  # writes go on
    finally:
        api.close()
    with closing(sqlite3.connect(tmp_path / "copy.db")) as copy:
        assert sorted(r[0] for r in copy.execute("SELECT id FROM conversations")) == sorted(made)
    assert not (tmp_path / "copy.db.partial").exists()
    again = cli("backup", "--db", str(db), "--to", "copy.db", cwd=tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr
    checked = cli("check", "--db", "copy.db", cwd=tmp_path)
    assert checked.returncode == 0 and "integrity ok" in checked.stdout


def test_backup_on_postgres_says_pg_dump(pg_url: str, tmp_path: Path) -> None:
    result = cli("backup", "--db", pg_url, "--to", "x", cwd=tmp_path)
    assert result.returncode == 1 and "pg_dump" in result.stderr
    assert cli("migrate", "--db", pg_url, cwd=tmp_path).returncode == 0
    checked = cli("check", "--db", pg_url, cwd=tmp_path)
    assert checked.returncode == 0 and "reachable" in checked.stdout


def test_check_finds_a_damaged_file(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    filled(db)
    damage(db)
    result = cli("check", "--db", str(db), cwd=tmp_path)
    assert result.returncode == 1
    assert "is damaged" in result.stderr and "restore it from a backup" in result.stderr
    assert sqlite_health.integrity_problems(db)


def test_a_corrupt_file_fails_readyz_refuses_writes_and_logs_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "x.db"
    made = filled(db)
    damage(db)
    api = Api(make_app(SQLiteStore(db)))
    try:
        assert api.get("/readyz").status_code == 200  # nothing read the damage yet
        with caplog.at_level(logging.ERROR, logger="convostore"):
            statuses = [api.get(f"/v1/conversations/{c}/items", params={"limit": 100}).status_code for c in made]
            assert 503 in statuses and 500 not in statuses, statuses
            ready = api.get("/readyz")
            assert ready.status_code == 503 and "damaged" in ready.json()["error"]["message"]
            for _ in range(20):
                refused = api.post("/v1/conversations", json={"items": [{"role": "user", "content": "lost?"}]})
                assert refused.status_code == 503 and "retry-after" in refused.headers
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as ro:
                count = ro.execute("SELECT count(*) FROM conversations").fetchone()[0]
            assert count == len(made)  # nothing written into the damaged file
        corrupt_lines = [r for r in caplog.records if "is corrupt" in r.getMessage()]
        assert len(corrupt_lines) == 1, [r.getMessage() for r in caplog.records]
    finally:
        api.close()


def test_throttle_says_once_a_minute() -> None:
    now = [0.0]
    throttle = sqlite_health.Throttle(60, clock=lambda: now[0])
    seen = []
    for tick in range(0, 1300, 1):  # ten times a second for two minutes
        now[0] = tick / 10
        seen.append(throttle.due())
    assert sum(seen) == 3  # at 0, 60 and 120 s
