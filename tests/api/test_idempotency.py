"""``Idempotency-Key`` on the POST routes (issue 20), on both backends: a retry with the
same key and body answers the first answer and changes nothing; another body is a 422;
keys belong to an owner; answers expire and are purged; two racing requests with one
key write once. And the ambiguous commit: a connection lost after the database committed
is a 503 saying the outcome is unknown, and the retry with the key finds the write."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from convostore.store.base import (
    AnswerTaken,
    ConversationRow,
    ItemAppend,
    NewConversation,
    Owner,
    Remembered,
    StoredItem,
)
from convostore.store.postgres import PostgresStore
from tests.reliability.pgproxy import CuttingProxy
from tests.support import Api, make_app

MSG = {"type": "message", "role": "user", "content": "hello"}


def keyed(key: str, **headers: str) -> dict[str, str]:
    return {"Idempotency-Key": key, **headers}


def conversation_count(api: Api, **headers: str) -> int:
    return len(api.get("/v1/conversations", params={"limit": 100}, headers=headers).json()["data"])


def test_create_replays_the_first_answer(api: Api) -> None:
    first = api.post("/v1/conversations", json={"items": [MSG]}, headers=keyed("k-1"))
    assert first.status_code == 200
    again = api.post("/v1/conversations", json={"items": [MSG]}, headers=keyed("k-1"))
    assert again.status_code == 200
    assert again.content == first.content
    assert conversation_count(api) == 1
    assert len(api.all_items(first.json()["id"])) == 1
    # Without a key, the same body is a new conversation.
    api.post("/v1/conversations", json={"items": [MSG]})
    assert conversation_count(api) == 2


def test_append_replays_and_stores_once(api: Api) -> None:
    cid = api.new_conversation()
    body = {"items": [MSG, {**MSG, "content": "two"}]}
    first = api.post(f"/v1/conversations/{cid}/items", json=body, headers=keyed("append-1"))
    assert first.status_code == 200
    for _ in range(3):
        again = api.post(f"/v1/conversations/{cid}/items", json=body, headers=keyed("append-1"))
        assert again.status_code == 200 and again.content == first.content
    assert [i["id"] for i in api.all_items(cid)] == [d["id"] for d in first.json()["data"]]


def test_same_key_other_request_is_422_and_changes_nothing(api: Api) -> None:
    cid = api.new_conversation()
    path = f"/v1/conversations/{cid}/items"
    assert api.post(path, json={"items": [MSG]}, headers=keyed("k")).status_code == 200
    for other in (
        lambda: api.post(path, json={"items": [{**MSG, "content": "other"}]}, headers=keyed("k")),
        lambda: api.post(path, params={"include[]": "message.output_text.logprobs"}, json={"items": [MSG]}, headers=keyed("k")),
        lambda: api.post("/v1/conversations", json={"items": [MSG]}, headers=keyed("k")),
    ):
        response = other()
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "idempotency_key_reused" and error["param"] == "Idempotency-Key"
    assert len(api.all_items(cid)) == 1
    assert conversation_count(api) == 1


def test_keys_belong_to_their_owner(api: Api) -> None:
    alice = api.post("/v1/conversations", json={}, headers=keyed("same", **{"x-ms-user-isolation-key": "alice"}))
    bob = api.post("/v1/conversations", json={}, headers=keyed("same", **{"x-ms-user-isolation-key": "bob"}))
    assert alice.status_code == bob.status_code == 200
    assert alice.json()["id"] != bob.json()["id"]
    assert conversation_count(api, **{"x-ms-user-isolation-key": "bob"}) == 1


def test_update_replays_the_first_answer(api: Api) -> None:
    cid = api.new_conversation()
    first = api.post(f"/v1/conversations/{cid}", json={"metadata": {"a": "1"}}, headers=keyed("u"))
    assert first.status_code == 200 and first.json()["metadata"] == {"a": "1"}
    assert api.post(f"/v1/conversations/{cid}", json={"metadata": {"a": "2"}}).status_code == 200
    again = api.post(f"/v1/conversations/{cid}", json={"metadata": {"a": "1"}}, headers=keyed("u"))
    assert again.content == first.content
    assert api.get(f"/v1/conversations/{cid}").json()["metadata"] == {"a": "2"}  # unchanged


def test_refused_requests_keep_no_answer(api: Api) -> None:
    missing = "conv_" + "0" * 48
    path = f"/v1/conversations/{missing}/items"
    assert api.post(path, json={"items": [MSG]}, headers=keyed("r")).status_code == 404
    assert api.post("/v1/conversations", json={"items": "no"}, headers=keyed("r")).status_code == 400
    # The key is still free: a good request under it is served.
    assert api.post("/v1/conversations", json={}, headers=keyed("r")).status_code == 200


@pytest.mark.parametrize("key", [b"", b"x" * 256, "caf\u00e9".encode(), b"tab\there"])
def test_invalid_keys_are_400(api: Api, key: bytes) -> None:
    response = api.post("/v1/conversations", json={}, headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert conversation_count(api) == 0


def test_answers_expire_and_are_purged(api: Api) -> None:
    idempotency = api.app.services.idempotency
    first = api.post("/v1/conversations", json={}, headers=keyed("old"))
    later = time.time() + idempotency.keep_seconds + 10
    idempotency.clock = lambda: later
    try:
        # Expired: the key is free again, and a new write replaces the old answer.
        again = api.post("/v1/conversations", json={}, headers=keyed("old"))
        assert again.json()["id"] != first.json()["id"]
        api.post("/v1/conversations", json={}, headers=keyed("other"))
        idempotency.clock = lambda: later + idempotency.keep_seconds + 10
        assert api.run(idempotency.purge(batch=1)) == 2
        assert api.run(idempotency.purge()) == 0
    finally:
        idempotency.clock = time.time


def test_racing_requests_with_one_key_write_once(api: Api) -> None:
    cid = api.new_conversation()
    body = {"items": [MSG]}

    async def both() -> list[httpx.Response]:
        send = [
            api.client.post(f"/v1/conversations/{cid}/items", json=body, headers=keyed("race"))
            for _ in range(4)
        ]
        return list(await asyncio.gather(*send))

    answers = api.run(both())
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1
    assert len(api.all_items(cid)) == 1


def test_store_undoes_a_write_whose_key_is_taken(api: Api) -> None:
    store = api.app.store
    owner = Owner("default", "")
    now = int(time.time())
    row = ConversationRow("conv_" + "1" * 48, now, b"{}")
    remember = Remembered("taken", b"f" * 32, b"{}", now, now - 3600)
    api.run(store.create_conversation(owner, NewConversation(row, [], remember)))
    item = StoredItem("msg_" + "2" * 48, "message", b'{"type":"message"}', 0)
    with pytest.raises(AnswerTaken):
        api.run(store.append_items(owner, ItemAppend(row.id, [item], remember)))
    with pytest.raises(AnswerTaken):
        api.run(store.create_conversation(owner, NewConversation(ConversationRow("conv_" + "3" * 48, now, b"{}"), [], remember)))
    assert api.all_items(row.id) == []
    assert conversation_count(api) == 1


def _through(proxy: CuttingProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.mark.parametrize("tag", [b"INSERT 0 ", b"COMMIT"])
def test_a_commit_whose_answer_is_lost_is_503_unknown_and_the_keyed_retry_finds_it(
    pg_url: str, tmp_path: Path, tag: bytes
) -> None:
    """The proxy drops the connection right after PostgreSQL finished the write: without a
    key (one statement, tag INSERT) and with one (a transaction, tag COMMIT)."""
    parts = urlsplit(pg_url)
    proxy = CuttingProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    api = Api(make_app(PostgresStore(_through(proxy, pg_url), max_size=2)))
    try:
        cid = api.new_conversation()
        headers: dict[str, Any] = keyed("ambiguous") if tag == b"COMMIT" else {}
        proxy.cut_on(tag)
        lost = api.post(f"/v1/conversations/{cid}/items", json={"items": [MSG]}, headers=headers)
        assert proxy.cuts == 1
        assert lost.status_code == 503
        assert lost.headers["retry-after"] == "1"
        error = lost.json()["error"]
        assert error["code"] == "commit_outcome_unknown"
        assert "may or may not have been applied" in error["message"]
        # It was committed: the item is there once.
        assert len(api.all_items(cid)) == 1
        if headers:
            retry = api.post(f"/v1/conversations/{cid}/items", json={"items": [MSG]}, headers=headers)
            assert retry.status_code == 200
            assert [d["id"] for d in retry.json()["data"]] == [i["id"] for i in api.all_items(cid)]
            assert len(api.all_items(cid)) == 1
        # The pool replaced the cut connection: no slot leaked, service goes on.
        for _ in range(4):
            api.add(cid, MSG)
        assert api.app.store.pool_use().in_use == 0
    finally:
        api.close()
        proxy.close()
