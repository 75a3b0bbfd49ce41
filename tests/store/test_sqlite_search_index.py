"""The deferred search index of the SQLite store (migrations 0004, 0014, 0100).

A write of items only queues them (one row per write: the conversation and the range of
positions); a background thread and every search index them. A search never misses a
committed item, a deleted item never comes back, and a reused rowid is indexed with its
new text.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import orjson

from convostore.store import search_text
from convostore.store import sqlite_maintenance as search_index
from convostore.store.base import (
    ConversationRow,
    ItemAppend,
    ItemSearch,
    NewConversation,
    Owner,
    SearchQuery,
    StoredItem,
)
from convostore.store.sqlite import SQLiteStore
from tests.support import Api, make_app


def search(api: Api, q: str) -> list[str]:
    response = api.get("/v1/conversations/search", params={"q": q})
    assert response.status_code == 200, response.text
    return [hit["item"]["content"][0]["text"] for hit in response.json()["data"]]


def pending(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM item_text_pending").fetchone()[0])


def rowid(path: Path, item_id: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT rowid FROM items WHERE id = ?", (item_id,)).fetchone()[0])


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
        rowid_of_deleted = rowid(path, old["id"])
        api.delete(f"/v1/conversations/{cid}/items/{old['id']}")
        (new,) = api.add(cid, {"role": "user", "content": "platypus"})
        assert rowid(path, new["id"]) == rowid_of_deleted  # the freed rowid, taken again
        assert search(api, "aardvark") == []
        assert search(api, "platypus") == ["platypus"]
        assert pending(path) == 0
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
        theirs = api.post(
            "/v1/conversations",
            json={"items": [{"role": "user", "content": "theirs"}]},
            headers=other,
        )
        assert theirs.status_code == 200
        assert search(api, "mine") == ["mine only"]
        assert pending(path) == 1  # the other owner's item is still queued
    finally:
        api.close()


# -- the queue of migration 0100: one range per write ----------------------------------------

ME = Owner("p", "")


def message(text: str, n: int = 0) -> StoredItem:
    content = [{"type": "input_text", "text": text}]
    body = orjson.dumps({"type": "message", "role": "user", "content": content})
    return StoredItem(f"msg_{text.replace(' ', '_')}_{n}", "message", body, 0)


async def opened(path: Path) -> SQLiteStore:
    """A migrated store whose background indexer is stopped: the test indexes."""
    store = SQLiteStore(path)
    await store.open()
    await store.migrate()
    assert store._maintenance is not None
    store._maintenance.stop()
    return store


async def hits(store: SQLiteStore, word: str) -> list[str]:
    page = await store.search_items(ME, ItemSearch(SearchQuery(((word,),)), 100))
    return [hit.item.id for hit in page.hits]


def queue(path: Path) -> list[tuple[int, int, int]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT conv, first_seq, last_seq FROM item_text_pending ORDER BY ticket"
        ).fetchall()


def integrity(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO item_text (item_text) VALUES ('integrity-check')")
        indexed = db.execute("SELECT count(*) FROM item_words").fetchone()[0]
        gone = db.execute(
            "SELECT count(*) FROM item_words w WHERE NOT EXISTS"
            " (SELECT 1 FROM items i WHERE i.rowid = w.rowid)"
        ).fetchone()[0]
        assert gone == 0, f"{gone} of {indexed} indexed rowids hold no item"


def index_all(path: Path) -> int:
    """What the background indexer does, on a connection of its own: batches until the
    queue is empty. The number of batches."""
    rounds = 0
    db = sqlite3.connect(path, isolation_level=None)
    try:
        while batch := search_index.extract(db):
            db.execute("BEGIN IMMEDIATE")
            search_index.store(db, batch)
            db.execute("COMMIT")
            rounds += 1
    finally:
        db.close()
    return rounds


def test_one_queue_row_per_write_and_a_long_range_in_parts(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    many = search_index.BATCH * 2 + 50

    async def scenario() -> None:
        store = await opened(path)
        try:
            created = [message("ibis", n) for n in range(many)]
            await store.create_conversation(
                ME, NewConversation(ConversationRow("conv_a", 1, b"{}"), created)
            )
            await store.append_items(
                ME, ItemAppend("conv_a", [message("heron", n) for n in range(20)])
            )
            (pk,) = store.db.execute("SELECT pk FROM conversations WHERE id = 'conv_a'").fetchone()
            assert queue(path) == [(pk, 0, many - 1), (pk, many, many + 19)]
            db = sqlite3.connect(path, isolation_level=None)
            try:
                (taken,) = search_index.extract(db)  # BATCH items, all of the first range
                assert (taken.first_seq, taken.next_seq, len(taken.items)) == (
                    0,
                    search_index.BATCH,
                    search_index.BATCH,
                )
                db.execute("BEGIN IMMEDIATE")
                search_index.store(db, [taken])
                db.execute("COMMIT")
            finally:
                db.close()
            assert queue(path) == [(pk, search_index.BATCH, many - 1), (pk, many, many + 19)]
            assert index_all(path) == 2
            assert queue(path) == []
            assert len(await hits(store, "ibis")) == 100  # a page: the newest 100
            page = await store.search_items(ME, ItemSearch(SearchQuery((("ibis",),)), 100))
            assert page.has_more
            assert len(await hits(store, "heron")) == 20
            integrity(path)
        finally:
            await store.close()

    asyncio.run(scenario())


def test_an_item_deleted_while_being_indexed_is_not_indexed(tmp_path: Path) -> None:
    """The indexer reads outside the write lock: an item deleted meanwhile, its rowid
    taken by a newer item, is skipped when the words are written; the newer item is
    indexed from its own queue row. Two indexers (two server processes) that read the
    same range write it once."""
    path = tmp_path / "s.db"

    async def scenario() -> None:
        store = await opened(path)
        try:
            await store.create_conversation(
                ME, NewConversation(ConversationRow("conv_a", 1, b"{}"))
            )
            await store.append_items(
                ME, ItemAppend("conv_a", [message("kiwi"), message("kiwi", 1)])
            )
            db = sqlite3.connect(path, isolation_level=None)
            other = sqlite3.connect(path, isolation_level=None)
            try:
                read = search_index.extract(db)
                twice = search_index.extract(other)
                last = max(item.item for item in read[0].items)
                await store.delete_item(ME, "conv_a", "msg_kiwi_1")
                await store.append_items(ME, ItemAppend("conv_a", [message("moa")]))
                (rowid,) = store.db.execute(
                    "SELECT rowid FROM items WHERE id = 'msg_moa_0'"
                ).fetchone()
                assert rowid == last  # the deleted item's rowid, taken again
                for conn, batch in ((db, read), (other, twice)):
                    conn.execute("BEGIN IMMEDIATE")
                    search_index.store(conn, batch)
                    conn.execute("COMMIT")
            finally:
                db.close()
                other.close()
            assert queue(path) != []  # moa's own row
            assert await hits(store, "kiwi") == ["msg_kiwi_0"]
            assert await hits(store, "moa") == ["msg_moa_0"]
            assert queue(path) == []
            integrity(path)
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_deleted_conversation_leaves_the_queue(tmp_path: Path) -> None:
    """Its queued ranges go with it, so a conversation that takes its pk again is not
    covered by them (it is indexed once, from its own row)."""
    path = tmp_path / "s.db"

    async def scenario() -> None:
        store = await opened(path)
        try:
            await store.create_conversation(
                ME, NewConversation(ConversationRow("conv_a", 1, b"{}"), [message("emu")])
            )
            (pk,) = store.db.execute("SELECT pk FROM conversations WHERE id = 'conv_a'").fetchone()
            await store.delete_conversation(ME, "conv_a")
            assert queue(path) == []
            await store.create_conversation(
                ME, NewConversation(ConversationRow("conv_b", 1, b"{}"), [message("rhea")])
            )
            assert queue(path) == [(pk, 0, 0)]  # the same pk, its own row only
            assert await hits(store, "emu") == []
            assert await hits(store, "rhea") == ["msg_rhea_0"]
            integrity(path)
        finally:
            await store.close()

    asyncio.run(scenario())


def item(item_id: str, doc: dict[str, object]) -> StoredItem:
    return StoredItem(item_id, str(doc["type"]), orjson.dumps({"id": item_id, **doc}), 0)


KINDS: list[dict[str, object]] = [
    {"type": "message", "role": "user", "content": "plain string content"},
    {
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "output_text", "text": "first part", "annotations": []},
            {"type": "refusal", "refusal": "cannot comply"},
            {"type": "input_image", "image_url": "https://example.com/not-text.png"},
            {"type": "output_text", "text": "third\u0000part", "annotations": []},
        ],
    },
    {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "summed up"}],
        "content": [{"type": "reasoning_text", "text": "thought through"}],
    },
    {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"city": "Oslo"}'},
    {"type": "function_call_output", "call_id": "c1", "output": "sunny in Oslo"},
    {
        "type": "function_call_output",
        "call_id": "c2",
        "output": [{"type": "input_text", "text": "listed"}],
    },
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "big " * 6000}]},
    {"type": "item_reference_like", "text": {"nested": "no type beside it"}},
]


def test_a_range_read_at_once_gives_each_item_the_words_read_alone(tmp_path: Path) -> None:
    """The small items of a range are read by one statement (small_parts), the others
    alone (texts): the words are the same either way, for every kind of item."""
    path = tmp_path / "s.db"

    async def scenario() -> None:
        store = await opened(path)
        try:
            written = [item(f"it_{n}", doc) for n, doc in enumerate(KINDS)]
            assert max(len(w.body) for w in written) > search_index.SMALL  # one read alone
            await store.create_conversation(
                ME, NewConversation(ConversationRow("conv_a", 1, b"{}"), written)
            )
            db = sqlite3.connect(path, isolation_level=None)
            try:
                (taken,) = search_index.extract(db)
                tag = search_text.owner_tag(ME.project, ME.user)
                kinds = dict(db.execute("SELECT rowid, type FROM items"))
                alone = {
                    rowid: search_text.indexed_words(tag, search_index.texts(db, rowid, kind))
                    for rowid, kind in kinds.items()
                }
            finally:
                db.close()
            assert {done.item: done.words for done in taken.items} == {
                rowid: words for rowid, words in alone.items()
            }
            # a string content as stored (the service stores parts) and no typed part: none
            assert len([w for w in alone.values() if w]) == len(KINDS) - 2
            assert index_all(path) == 1
            assert await hits(store, "comply") == ["it_1"]
            assert await hits(store, "oslo") == ["it_4", "it_3"]
            assert await hits(store, "listed") == ["it_5"]  # a typed part, wherever it is
            assert await hits(store, "summed") == ["it_2"]
            assert await hits(store, "big") == ["it_6"]
            assert await hits(store, "nested") == []
            assert await hits(store, "plain") == []
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_range_with_an_item_that_is_not_json_indexes_the_others(tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    async def scenario() -> None:
        store = await opened(path)
        try:
            await store.create_conversation(
                ME, NewConversation(ConversationRow("conv_a", 1, b"{}"))
            )
            await store.append_items(
                ME, ItemAppend("conv_a", [message("tapir", n) for n in range(5)])
            )
            store.db.execute("UPDATE items SET body = X'7b7b' WHERE id = 'msg_tapir_2'")
            assert sorted(await hits(store, "tapir")) == [f"msg_tapir_{n}" for n in (0, 1, 3, 4)]
            assert queue(path) == []
            integrity(path)
        finally:
            await store.close()

    asyncio.run(scenario())
