"""The deferred search index of the SQLite store (migration 0004).

Appends only queue rowids; a background thread and every search index them. A search
never misses a committed item, a deleted item never comes back, and a reused rowid is
indexed with its new text.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from convostore.store.sqlite import SQLiteStore
from tests.support import Api, make_app


def search(api: Api, q: str) -> list[str]:
    response = api.get("/v1/conversations/search", params={"q": q})
    assert response.status_code == 200, response.text
    return [hit["item"]["content"][0]["text"] for hit in response.json()["data"]]


def pending(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM item_text_pending").fetchone()[0])


def test_search_sees_items_appended_just_before(tmp_path: Path) -> None:
    api = Api(make_app(SQLiteStore(tmp_path / "s.db")))
    try:
        cid = api.new_conversation()
        api.add(cid, {"role": "user", "content": "zebra crossing"})
        assert search(api, "zebra") == ["zebra crossing"]
    finally:
        api.close()


def test_deleted_before_indexing_and_reused_rowid(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    api = Api(make_app(store))
    try:
        store._maintenance.stop()  # type: ignore[union-attr]  # keep items queued
        cid = api.new_conversation()
        (old,) = api.add(cid, {"role": "user", "content": "aardvark"})
        assert pending(path) == 1
        api.delete(f"/v1/conversations/{cid}/items/{old['id']}")
        assert pending(path) == 0
        api.add(cid, {"role": "user", "content": "platypus"})  # takes the freed rowid
        assert search(api, "aardvark") == []
        assert search(api, "platypus") == ["platypus"]
    finally:
        api.close()


def test_background_thread_indexes_and_deletes_unindex(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    api = Api(make_app(SQLiteStore(path)))
    try:
        cid = api.new_conversation()
        items = api.add(cid, *[{"role": "user", "content": f"walrus number{n}"} for n in range(20)])
        deadline = time.monotonic() + 30
        while pending(path):
            assert time.monotonic() < deadline, "the background indexer never ran"
            time.sleep(0.05)
        assert len(search(api, "walrus")) == 20
        for item in items[:5]:
            api.delete(f"/v1/conversations/{cid}/items/{item['id']}")
        assert sorted(search(api, "walrus")) == sorted(f"walrus number{n}" for n in range(5, 20))
        with sqlite3.connect(path) as db:
            db.execute("INSERT INTO item_text (item_text) VALUES ('integrity-check')")
    finally:
        api.close()


def test_an_item_that_is_not_json_does_not_stop_the_queue(tmp_path: Path) -> None:
    """Issue 15 (H1): a queued item whose text cannot be read is indexed without text;
    the items queued after it are indexed, the queue empties."""
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    api = Api(make_app(store))
    try:
        store._maintenance.stop()  # type: ignore[union-attr]
        cid = api.new_conversation()
        (broken,) = api.add(cid, {"role": "user", "content": "unreadable"})
        with sqlite3.connect(path) as db:
            db.execute("UPDATE items SET body = X'7b7b' WHERE id = ?", (broken["id"],))
        api.add(cid, {"role": "user", "content": "readable okapi"})
        assert search(api, "okapi") == ["readable okapi"]
        assert pending(path) == 0
    finally:
        api.close()


def test_search_waits_only_for_its_own_owners_queue(tmp_path: Path) -> None:
    """Issue 15 (H1, M1): another owner's queued items never delay a search."""
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    api = Api(make_app(store))
    try:
        store._maintenance.stop()  # type: ignore[union-attr]
        cid = api.new_conversation()
        api.add(cid, {"role": "user", "content": "mine only"})
        other = {"x-ms-user-isolation-key": "someone-else"}
        theirs = api.post("/v1/conversations", json={"items": [{"role": "user", "content": "theirs"}]}, headers=other)
        assert theirs.status_code == 200
        assert search(api, "mine") == ["mine only"]
        assert pending(path) == 1  # the other owner's item is still queued
    finally:
        api.close()
