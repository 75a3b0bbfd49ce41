"""Concurrent clients against a real ``convostore serve`` on SQLite, and all-or-nothing
batches seen through HTTP and through the database file itself (CONTRACT.md D14, D15).
"""

from __future__ import annotations

import random
import re
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import check_response, running_server

THREADS = 16
REQUESTS_PER_THREAD = 25
TAG = re.compile(r"^t(\d+)-r(\d+)-i(\d+)$")


class Http:
    """An httpx client on the server's ``/v1`` that checks every answer against the spec."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None):
        self.client = httpx.Client(base_url=base_url, timeout=60, headers=headers)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Http:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        check_response(method, response.request.url.path, response)
        return response

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code == 200, (method, path, response.text)
        return response.json()

    def new_conversation(self, **body: Any) -> str:
        conversation_id: str = self.ok("POST", "/conversations", json=body)["id"]
        return conversation_id

    def all_items(self, conversation_id: str, order: str = "asc") -> list[dict[str, Any]]:
        """Every item, following ``after`` cursors like the SDKs do."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"order": order, "limit": 100}
        while True:
            page = self.ok("GET", f"/conversations/{conversation_id}/items", params=params)
            out.extend(page["data"])
            if not page["has_more"]:
                return out
            params["after"] = page["last_id"]


def text(item: dict[str, Any]) -> str:
    value: str = item["content"][0]["text"]
    return value


def user(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": value, **extra}


def run_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run ``target(n)`` for n in range(count) at once; re-raise the first failure."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(target, n) for n in range(count)]
        return [future.result() for future in futures]


def db_counts(db: Path) -> tuple[int, int]:
    """(conversations, items) rows, read from the file by a read-only connection."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        conversations = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
        items = conn.execute("SELECT count(*) FROM items").fetchone()[0]
    return int(conversations), int(items)


@dataclass
class Server:
    url: str
    db: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("concurrency") / "convostore.db"
    with running_server(db) as url:
        yield Server(url, db)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two server processes sharing one SQLite file."""
    db = tmp_path_factory.mktemp("two-workers") / "convostore.db"
    with running_server(db, "--workers", "2") as url:
        yield Server(url, db)


@pytest.fixture
def http(server: Server) -> Iterator[Http]:
    with Http(server.url) as client:
        yield client


# --- many writers, one conversation ---------------------------------------------------------


def append_concurrently(url: str, conversation_id: str) -> dict[tuple[int, int], list[str]]:
    """16 threads x 25 requests of 1..5 tagged items; returns the ids each request got."""
    start = threading.Barrier(THREADS)

    def worker(thread: int) -> dict[tuple[int, int], list[str]]:
        rng = random.Random(thread)
        acked: dict[tuple[int, int], list[str]] = {}
        with Http(url) as client:
            start.wait()
            for request in range(REQUESTS_PER_THREAD):
                batch = [
                    user(f"t{thread:02d}-r{request:02d}-i{index}")
                    for index in range(rng.randint(1, 5))
                ]
                data = client.ok(
                    "POST", f"/conversations/{conversation_id}/items", json={"items": batch}
                )["data"]
                assert [text(i) for i in data] == [b["content"] for b in batch]
                acked[(thread, request)] = [i["id"] for i in data]
        return acked

    acked: dict[tuple[int, int], list[str]] = {}
    for part in run_threads(THREADS, worker):
        acked.update(part)
    return acked


def check_interleaving(
    items: list[dict[str, Any]], acked: dict[tuple[int, int], list[str]]
) -> None:
    expected_ids = [i for ids in acked.values() for i in ids]
    assert len(items) == len(expected_ids), "stored count differs from the acknowledged count"
    stored_ids = [i["id"] for i in items]
    assert len(set(stored_ids)) == len(stored_ids), "duplicate item ids"
    assert set(stored_ids) == set(expected_ids)

    positions: dict[tuple[int, int], list[tuple[int, int, str]]] = defaultdict(list)
    for position, item in enumerate(items):
        match = TAG.match(text(item))
        assert match, text(item)
        thread, request, index = map(int, match.groups())
        positions[(thread, request)].append((position, index, item["id"]))

    first_position: dict[int, list[int]] = defaultdict(list)
    for key in sorted(positions):
        found = positions[key]
        places = [p for p, _, _ in found]
        # contiguous, in request order, and the ids the request was answered with
        assert places == list(range(places[0], places[0] + len(places))), f"{key} interleaved"
        assert [i for _, i, _ in found] == list(range(len(found))), f"{key} reordered"
        assert [i for _, _, i in found] == acked[key], f"{key} stored other ids than answered"
        first_position[key[0]].append(places[0])
    for thread, starts in first_position.items():
        assert starts == sorted(starts), f"thread {thread}'s requests out of order"
        assert len(starts) == REQUESTS_PER_THREAD


def test_concurrent_appends_to_one_conversation(server: Server, http: Http) -> None:
    conversation_id = http.new_conversation()
    acked = append_concurrently(server.url, conversation_id)
    items = http.all_items(conversation_id)
    check_interleaving(items, acked)
    assert http.all_items(conversation_id, order="desc") == items[::-1]


def test_concurrent_appends_across_two_workers(two_workers: Server) -> None:
    """Two server processes on one SQLite file: the same guarantees across processes."""
    with Http(two_workers.url) as client:
        conversation_id = client.new_conversation()
        acked = append_concurrently(two_workers.url, conversation_id)
        items = client.all_items(conversation_id)
    check_interleaving(items, acked)
    with closing(sqlite3.connect(f"file:{two_workers.db}?mode=ro", uri=True)) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM items JOIN conversations c ON c.pk = items.conv WHERE c.id = ?",
            (conversation_id,),
        ).fetchone()[0]
    assert stored == len(items)


@pytest.mark.parametrize("which", ["server", "two_workers"])
def test_racing_the_same_new_id_lets_exactly_one_in(
    request: pytest.FixtureRequest, which: str
) -> None:
    """8 clients send the same new client id to one conversation at once (D21 b)."""
    url = request.getfixturevalue(which).url
    with Http(url) as client:
        conversation_id = client.new_conversation()
        for round_ in range(5):
            item_id = f"msg_race_{round_:04d}"
            start = threading.Barrier(8)

            def send(n: int, item_id: str = item_id, start: threading.Barrier = start) -> int:
                with Http(url) as mine:
                    start.wait()
                    response = mine.request(
                        "POST",
                        f"/conversations/{conversation_id}/items",
                        json={"items": [user(f"sender {n}"), user(f"id {n}", id=item_id)]},
                    )
                if response.status_code != 200:
                    assert response.status_code == 400, response.text
                    assert error_of(response)["code"] == "item_already_in_conversation"
                return response.status_code

            statuses = run_threads(8, send)
            assert sorted(statuses) == [200] + [400] * 7
        items = client.all_items(conversation_id)
    assert len(items) == 10  # one batch of two per round, nothing of the refused ones
    assert [i["id"] for i in items[1::2]] == [f"msg_race_{r:04d}" for r in range(5)]


# --- creates, deletes and appends mixed ---------------------------------------------------------


@pytest.mark.parametrize("which", ["server", "two_workers"])
def test_mixed_create_delete_append_never_5xx(request: pytest.FixtureRequest, which: str) -> None:
    server: Server = request.getfixturevalue(which)
    with Http(server.url) as http:
        mixed_create_delete_append(server, http)


def mixed_create_delete_append(server: Server, http: Http) -> None:
    statuses: list[int] = []
    lock = threading.Lock()
    shared = http.new_conversation(items=[user("shared")])
    doomed = [http.new_conversation() for _ in range(4)]
    start = threading.Barrier(12)

    def note(response: httpx.Response) -> httpx.Response:
        with lock:
            statuses.append(response.status_code)
        assert response.status_code < 500, response.text
        return response

    def lifecycle(client: Http, n: int) -> int:
        """Conversations of its own: create, append, read, delete; all must succeed."""
        done = 0
        for round_ in range(12):
            cid = note(
                client.request("POST", "/conversations", json={"items": [user("a"), user("b")]})
            )
            assert cid.status_code == 200, cid.text
            conversation_id = cid.json()["id"]
            added = note(
                client.request(
                    "POST", f"/conversations/{conversation_id}/items", json={"items": [user("c")]}
                )
            )
            assert added.status_code == 200, added.text
            item_id = added.json()["data"][0]["id"]
            listed = note(client.request("GET", f"/conversations/{conversation_id}/items"))
            assert [text(i) for i in listed.json()["data"]] == ["c", "b", "a"]
            gone = note(
                client.request("DELETE", f"/conversations/{conversation_id}/items/{item_id}")
            )
            assert gone.status_code == 200, gone.text
            if round_ % 2:
                deleted = note(client.request("DELETE", f"/conversations/{conversation_id}"))
                assert deleted.status_code == 200, deleted.text
                after = note(client.request("GET", f"/conversations/{conversation_id}/items"))
                assert after.status_code == 404
            done += 1
        return done

    def appender(client: Http, n: int) -> int:
        """Appends to the shared conversation and to conversations being deleted."""
        done = 0
        seen_gone: set[str] = set()
        for request in range(30):
            target = shared if request % 2 else doomed[request % len(doomed)]
            response = note(
                client.request(
                    "POST",
                    f"/conversations/{target}/items",
                    json={"items": [user(f"a{n}-{request}-{i}") for i in range(3)]},
                )
            )
            if target == shared:
                assert response.status_code == 200, response.text
            else:
                assert response.status_code in (200, 404), response.text
                if response.status_code == 404:
                    seen_gone.add(target)
                else:
                    assert target not in seen_gone, "an append succeeded after a 404"
            done += 1
        return done

    def deleter(client: Http, n: int) -> int:
        for conversation_id in doomed:
            response = note(client.request("DELETE", f"/conversations/{conversation_id}"))
            assert response.status_code == 200, response.text
        return len(doomed)

    roles = [lifecycle] * 6 + [appender] * 5 + [deleter]

    def run(n: int) -> int:
        with Http(server.url) as client:
            start.wait()
            return roles[n](client, n)

    run_threads(len(roles), run)
    assert statuses and max(statuses) < 500
    # Every appender's shared appends are there, each batch of 3 contiguous.
    shared_items = http.all_items(shared)
    assert len(shared_items) == 1 + 5 * 15 * 3
    texts = [text(i) for i in shared_items[1:]]
    for start_index in range(0, len(texts), 3):
        batch = texts[start_index : start_index + 3]
        prefix = batch[0].rsplit("-", 1)[0]
        assert batch == [f"{prefix}-{i}" for i in range(3)]
    for conversation_id in doomed:
        assert http.request("GET", f"/conversations/{conversation_id}").status_code == 404
    # D4: nothing of the deleted conversations is left in the file.
    with closing(sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)) as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM items WHERE conv NOT IN (SELECT pk FROM conversations)"
        ).fetchone()[0]
        placeholders = ",".join("?" * len(doomed))
        remaining = conn.execute(
            f"SELECT count(*) FROM conversations WHERE id IN ({placeholders})", doomed
        ).fetchone()[0]
    assert (orphans, remaining) == (0, 0)


# --- atomicity -------------------------------------------------------------------------------


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def test_batch_with_an_invalid_item_stores_nothing(server: Server, http: Http) -> None:
    conversation_id = http.new_conversation(items=[user("before")])
    before = http.all_items(conversation_id)
    counts = db_counts(server.db)
    batch = [user(f"ok {n}") for n in range(5)]
    batch[3] = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": 3}]}
    response = http.request(
        "POST", f"/conversations/{conversation_id}/items", json={"items": batch}
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"].startswith("items[3]"), error
    assert error["param"] == "items[3].content[0].text"
    assert error["code"] == "invalid_type"
    assert http.all_items(conversation_id) == before
    assert db_counts(server.db) == counts


def test_batch_repeating_an_id_stores_nothing(server: Server, http: Http) -> None:
    """D21 (c): item 2 repeats the id of item 0."""
    conversation_id = http.new_conversation()
    counts = db_counts(server.db)
    batch = [user(f"ok {n}") for n in range(5)]
    batch[0] = user("first", id="msg_repeated_0001")
    batch[2] = user("again", id="msg_repeated_0001")
    response = http.request(
        "POST", f"/conversations/{conversation_id}/items", json={"items": batch}
    )
    assert response.status_code == 400
    assert error_of(response) == {
        "message": "Item already in conversation",
        "type": "invalid_request_error",
        "param": "items",
        "code": "item_already_in_conversation",
    }
    assert http.all_items(conversation_id) == []
    assert db_counts(server.db) == counts
    # the id is still free: the same items without the repeat go in
    del batch[2]
    path = f"/conversations/{conversation_id}/items"
    assert len(http.ok("POST", path, json={"items": batch})["data"]) == 4


def test_batch_naming_an_id_already_in_the_conversation_stores_nothing(
    server: Server, http: Http
) -> None:
    """D21 (b): refused by the store inside the transaction; the valid items before it too."""
    conversation_id = http.new_conversation(items=[user("held", id="msg_held_0001")])
    before = http.all_items(conversation_id)
    counts = db_counts(server.db)
    batch = [user(f"ok {n}") for n in range(4)] + [user("dup", id="msg_held_0001")]
    response = http.request(
        "POST", f"/conversations/{conversation_id}/items", json={"items": batch}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "item_already_in_conversation"
    assert http.all_items(conversation_id) == before
    assert db_counts(server.db) == counts
    # the sequence is not disturbed: a later append lands right after the old items
    http.ok("POST", f"/conversations/{conversation_id}/items", json={"items": [user("next")]})
    assert [text(i) for i in http.all_items(conversation_id)] == ["held", "next"]


@pytest.mark.parametrize(
    ("bad", "status", "param"),
    [
        ({"type": "item_reference", "id": "msg_nowhere"}, 404, None),
        (user("x", id="wrong_prefix"), 400, "items[3].id"),
        ({"type": "message", "role": "user", "content": "x", "status": "paused"}, 400, "items[3].status"),
        ({"type": "no_such_type"}, 400, "items[3]"),
    ],
)
def test_batch_with_other_bad_items_stores_nothing(
    server: Server, http: Http, bad: dict[str, Any], status: int, param: str | None
) -> None:
    conversation_id = http.new_conversation(items=[user("before")])
    counts = db_counts(server.db)
    batch = [user(f"ok {n}") for n in range(5)]
    batch[3] = bad
    response = http.request(
        "POST", f"/conversations/{conversation_id}/items", json={"items": batch}
    )
    assert response.status_code == status, response.text
    assert error_of(response)["param"] == param
    assert [text(i) for i in http.all_items(conversation_id)] == ["before"]
    assert db_counts(server.db) == counts


@pytest.mark.parametrize(
    ("bad", "status", "code"),
    [
        ({"type": "message", "role": "user"}, 400, "missing_required_parameter"),
        (user("dup", id="msg_twice_0001"), 400, "item_already_in_conversation"),
        ({"type": "item_reference", "id": "msg_nowhere"}, 404, None),
    ],
)
def test_create_conversation_with_a_bad_item_creates_nothing(
    server: Server, http: Http, bad: dict[str, Any], status: int, code: str | None
) -> None:
    counts = db_counts(server.db)
    items = [user("msg one", id="msg_twice_0001"), user("two"), bad]
    response = http.request("POST", "/conversations", json={"metadata": {"k": "v"}, "items": items})
    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code
    assert db_counts(server.db) == counts
    # a valid create right after works, and adds exactly one conversation with its items
    conversation_id = http.new_conversation(items=items[:2])
    assert [text(i) for i in http.all_items(conversation_id)] == ["msg one", "two"]
    assert db_counts(server.db) == (counts[0] + 1, counts[1] + 2)
