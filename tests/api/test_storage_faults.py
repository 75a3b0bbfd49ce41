"""A database that cannot write answers 503 with the envelope; reads go on; it recovers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from convostore.store.sqlite import SQLiteStore
from tests.support import Api, make_app


def test_locked_sqlite_answers_503_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    api = Api(make_app(SQLiteStore(path, busy_timeout_ms=50)))
    try:
        cid = api.new_conversation(items=[{"role": "user", "content": "before"}])
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another process holding the write lock too long
        try:
            response = api.post(f"/v1/conversations/{cid}/items", json={"items": [{"role": "user", "content": "x"}]})
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            error = response.json()["error"]
            assert error["type"] == "server_error"
            assert "nothing was changed" in error["message"]
            assert api.post("/v1/conversations", json={}).status_code == 503
            # Reads keep working while writes cannot (WAL).
            assert [i["content"][0]["text"] for i in api.all_items(cid)] == ["before"]
        finally:
            other.execute("ROLLBACK")
            other.close()
        api.add(cid, {"role": "user", "content": "after"})
        assert [i["content"][0]["text"] for i in api.all_items(cid)] == ["before", "after"]
    finally:
        api.close()
