"""Forking a conversation at an item (issue 18, docs/fork.md), on SQLite and PostgreSQL:
the fork holds the items up to ``until`` with their ids, then both sides evolve apart."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from convostore.service import transfer
from convostore.service.keys import Keys
from convostore.store.base import Store
from tests.support import Api, make_app


def fork(api: Api, conversation_id: str, **body: Any) -> dict[str, Any]:
    response = api.post(f"/v1/conversations/{conversation_id}/fork", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def texts(items: list[dict[str, Any]]) -> list[str]:
    return [
        item["content"][0]["text"] if item["type"] == "message" else item["type"] for item in items
    ]


def source(api: Api) -> tuple[str, list[dict[str, Any]]]:
    conv = api.new_conversation(
        metadata={"topic": "trip"},
        items=[
            {"role": "user", "content": "m0"},
            {"role": "assistant", "content": "m1"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "done"},
            {"role": "user", "content": "m4"},
            {"role": "assistant", "content": "m5"},
        ],
    )
    return conv, api.all_items(conv)


async def export_of(store: Store, *ids: str) -> dict[str, dict[str, Any]]:
    lines = b"".join([chunk async for chunk in transfer.export_lines(store, ids=list(ids))])
    return {line["id"]: line for line in map(orjson.loads, lines.splitlines())}


@pytest.mark.parametrize("at", ["first", "middle", "last", "absent"])
def test_fork_then_both_sides_evolve(api: Api, at: str) -> None:
    conv, items = source(api)
    cut = {"first": 0, "middle": 2, "last": 5, "absent": 5}[at]
    body = {} if at == "absent" else {"until": items[cut]["id"]}
    forked = fork(api, conv, **body)
    assert forked["id"] != conv and forked["id"].startswith("conv_")
    assert forked["object"] == "conversation"
    assert forked["metadata"] == {"topic": "trip"}  # the source's, when none is given
    assert forked["item_count"] == cut + 1
    assert forked["last_active_at"] == forked["created_at"]
    copied = api.all_items(forked["id"])
    assert copied == items[: cut + 1]  # same order, ids and bodies
    assert api.get(f"/v1/conversations/{forked['id']}").json()["metadata"] == {"topic": "trip"}

    # Appends on both sides go to one side only.
    api.add(conv, {"role": "user", "content": "source grows"})
    api.add(forked["id"], {"role": "user", "content": "fork grows"})
    assert texts(api.all_items(conv))[-2:] == ["m5", "source grows"]
    assert texts(api.all_items(forked["id"])) == [*texts(items[: cut + 1]), "fork grows"]
    # An id copied into the fork may be added again nowhere (D21b) but still on both sides by
    # reference to another conversation: the fork holds it already.
    again = api.post(
        f"/v1/conversations/{forked['id']}/items", json={"items": [{"type": "item_reference", "id": items[0]["id"]}]}
    )
    assert again.status_code == 400 and again.json()["error"]["code"] == "item_already_in_conversation"

    # Deletes on both sides touch one side only.
    shared = items[0]["id"]
    api.delete(f"/v1/conversations/{forked['id']}/items/{shared}")
    assert shared in [i["id"] for i in api.all_items(conv)]
    assert shared not in [i["id"] for i in api.all_items(forked["id"])]
    api.delete(f"/v1/conversations/{conv}/items/{items[cut]['id']}")
    if cut > 0:
        assert items[cut]["id"] in [i["id"] for i in api.all_items(forked["id"])]

    # Exports of both: each conversation exactly as its item list shows it.
    exported = api.run(export_of(api.app.store, conv, forked["id"]))
    for conversation_id in (conv, forked["id"]):
        assert exported[conversation_id]["items"] == api.all_items(conversation_id)
    listed = {
        c["id"]: c["item_count"] for c in api.get("/v1/conversations", params={"limit": 100}).json()["data"]
    }
    assert listed[forked["id"]] == len(api.all_items(forked["id"]))
    assert listed[conv] == len(api.all_items(conv))

    # Deleting the source leaves the fork whole, and the other way round.
    before = api.all_items(forked["id"])
    api.delete(f"/v1/conversations/{conv}")
    assert api.all_items(forked["id"]) == before
    assert api.get(f"/v1/conversations/{conv}/items").status_code == 404


def test_fork_of_a_fork_and_delete_fork_keeps_source(api: Api) -> None:
    conv, items = source(api)
    first = fork(api, conv, until=items[3]["id"], metadata={"branch": "a"})
    assert first["metadata"] == {"branch": "a"}
    second = fork(api, first["id"], metadata=None)
    assert second["metadata"] == {}
    assert api.all_items(second["id"]) == items[:4]
    api.delete(f"/v1/conversations/{first['id']}")
    assert api.all_items(conv) == items
    assert api.all_items(second["id"]) == items[:4]
    # The fork's positions go on after the copied ones, with gaps from deletes kept apart.
    api.add(second["id"], {"role": "user", "content": "next"})
    assert texts(api.all_items(second["id"]))[-1] == "next"
    # Search finds the copied text in both conversations.
    hits = api.get("/v1/conversations/search", params={"q": "m0"}).json()["data"]
    assert {h["conversation_id"] for h in hits} == {conv, second["id"]}


def test_fork_keeps_the_source_safety_identifier(api: Api) -> None:
    """D22: a fork serves the same end user, so it carries the source's identifier."""
    made = api.post("/v1/conversations", json={"safety_identifier": "user-123", "items": [{"role": "user", "content": "hi"}]})
    forked = fork(api, made.json()["id"])
    assert forked["safety_identifier"] == "user-123"
    listed = api.get("/v1/conversations").json()["data"]
    assert {c["id"]: c["safety_identifier"] for c in listed}[forked["id"]] == "user-123"
    assert fork(api, api.new_conversation())["safety_identifier"] is None
    explicit = api.post(f"/v1/conversations/{made.json()['id']}/fork", json={"until": None})
    assert explicit.status_code == 200 and explicit.json()["item_count"] == 1  # null: all items


def test_fork_of_an_empty_conversation_and_after_deletes(api: Api) -> None:
    empty = api.new_conversation()
    forked = fork(api, empty)
    assert forked["item_count"] == 0 and api.all_items(forked["id"]) == []
    api.add(forked["id"], {"role": "user", "content": "first"})
    assert texts(api.all_items(forked["id"])) == ["first"]

    conv, items = source(api)
    api.delete(f"/v1/conversations/{conv}/items/{items[1]['id']}")
    forked = fork(api, conv, until=items[2]["id"])
    assert forked["item_count"] == 2
    assert api.all_items(forked["id"]) == [items[0], items[2]]


def test_fork_refusals_change_nothing(api: Api) -> None:
    conv, items = source(api)
    before = api.get("/v1/conversations", params={"limit": 100}).json()

    missing = api.post(f"/v1/conversations/{conv}/fork", json={"until": "msg_nope"})
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "message": "No item found with id 'msg_nope'",
        "type": "invalid_request_error",
        "param": "until",
        "code": None,
    }
    gone = api.post("/v1/conversations/conv_nope/fork", json={})
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == "Conversation with id 'conv_nope' not found."
    unknown = api.post(f"/v1/conversations/{conv}/fork", json={"untill": items[0]["id"]})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_parameter"
    typed = api.post(f"/v1/conversations/{conv}/fork", json={"until": 3})
    assert typed.status_code == 400 and typed.json()["error"]["param"] == "until"
    meta = api.post(f"/v1/conversations/{conv}/fork", json={"metadata": {"k": 1}})
    assert meta.status_code == 400 and meta.json()["error"]["param"] == "metadata.k"
    # An item of another conversation is not in this one.
    other = api.new_conversation(items=[{"role": "user", "content": "x"}])
    elsewhere = api.all_items(other)[0]["id"]
    assert api.post(f"/v1/conversations/{conv}/fork", json={"until": elsewhere}).status_code == 404
    assert api.get("/v1/conversations", params={"limit": 100}).json()["data"][1:] == before["data"]
    # No body at all forks everything.
    bare = api.post(f"/v1/conversations/{conv}/fork")
    assert bare.status_code == 200 and bare.json()["item_count"] == len(items)
    assert api.post(f"/openai/v1/conversations/{conv}/fork", json={}).status_code == 200


def test_fork_of_another_tenant_is_not_found(store: Store) -> None:
    api = Api(make_app(store, key_cache_seconds=0))
    try:
        keys = Keys(store)
        _, acme = api.run(keys.create("acme", "test"))
        _, beta = api.run(keys.create("beta", "test"))
        owner = {"authorization": f"Bearer {acme}"}
        conv = api.post(
            "/v1/conversations", json={"items": [{"role": "user", "content": "acme's"}]}, headers=owner
        ).json()["id"]
        item = api.get(f"/v1/conversations/{conv}/items", headers=owner).json()["data"][0]["id"]
        for headers in (
            {"authorization": f"Bearer {beta}"},
            {**owner, "x-ms-user-isolation-key": "someone"},
        ):
            for body in ({}, {"until": item}):
                answer = api.post(f"/v1/conversations/{conv}/fork", json=body, headers=headers)
                assert answer.status_code == 404, answer.text
                assert answer.json()["error"]["message"] == f"Conversation with id '{conv}' not found."
        assert api.get("/v1/conversations", headers={"authorization": f"Bearer {beta}"}).json()["data"] == []
        # The owner's fork is the owner's: same project, same isolation key.
        mine = api.post(f"/v1/conversations/{conv}/fork", json={}, headers=owner).json()["id"]
        theirs = api.get(f"/v1/conversations/{mine}", headers={"authorization": f"Bearer {beta}"})
        assert theirs.status_code == 404
        assert api.get(f"/v1/conversations/{mine}", headers=owner).status_code == 200
    finally:
        api.close()
