"""Create, retrieve, update and delete conversations (CONTRACT.md §1, D1, D4, D12, D19)."""

from __future__ import annotations

import re
import time

import pytest

from tests.support import Api

CONV_ID = re.compile(r"^conv_[0-9a-f]{48}$")


@pytest.mark.parametrize("body", [None, {}, {"items": []}, {"items": None, "metadata": None}])
def test_create_empty_conversation(api: Api, body: object) -> None:
    kwargs = {} if body is None else {"json": body}
    response = api.post("/v1/conversations", **kwargs)
    assert response.status_code == 200
    conv = response.json()
    assert CONV_ID.match(conv["id"])
    assert conv["object"] == "conversation"
    assert conv["metadata"] == {}
    assert abs(conv["created_at"] - time.time()) < 5
    assert list(conv) == ["id", "object", "created_at", "metadata"]
    listed = api.get(f"/v1/conversations/{conv['id']}/items").json()
    assert listed == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_create_with_items_and_metadata(api: Api) -> None:
    response = api.post(
        "/v1/conversations",
        json={
            "metadata": {"topic": "demo", "user": "ana"},
            "items": [
                {"type": "message", "role": "user", "content": "Hello!"},
                {"role": "assistant", "content": "Hi Ana."},
            ],
        },
    )
    conv = response.json()
    assert conv["metadata"] == {"topic": "demo", "user": "ana"}
    items = api.all_items(conv["id"])
    assert [i["role"] for i in items] == ["user", "assistant"]
    assert items[0]["content"] == [{"type": "input_text", "text": "Hello!"}]
    assert items[1]["content"] == [
        {"type": "output_text", "text": "Hi Ana.", "annotations": [], "logprobs": []}
    ]


def test_retrieve_under_both_prefixes(api: Api) -> None:
    cid = api.new_conversation(metadata={"k": "v"})
    openai = api.get(f"/v1/conversations/{cid}").json()
    azure = api.get(f"/openai/v1/conversations/{cid}", params={"api-version": "preview"}).json()
    assert openai == azure
    assert openai["metadata"] == {"k": "v"}


def test_update_replaces_metadata(api: Api) -> None:
    cid = api.new_conversation(metadata={"a": "1", "b": "2"})
    updated = api.post(f"/v1/conversations/{cid}", json={"metadata": {"c": "3"}}).json()
    assert updated["metadata"] == {"c": "3"}
    assert api.get(f"/v1/conversations/{cid}").json()["metadata"] == {"c": "3"}


def test_update_null_metadata_means_empty(api: Api) -> None:
    cid = api.new_conversation(metadata={"a": "1"})
    assert api.post(f"/v1/conversations/{cid}", json={"metadata": None}).json()["metadata"] == {}


def test_update_requires_metadata(api: Api) -> None:
    cid = api.new_conversation()
    error = api.post(f"/v1/conversations/{cid}", json={}).json()["error"]
    assert error == {
        "message": "Missing required parameter: 'metadata'.",
        "type": "invalid_request_error",
        "param": "metadata",
        "code": "missing_required_parameter",
    }


def test_delete_cascades_and_is_not_idempotent(api: Api) -> None:
    cid = api.new_conversation(items=[{"role": "user", "content": "x"}])
    item_id = api.all_items(cid)[0]["id"]
    deleted = api.delete(f"/v1/conversations/{cid}")
    assert deleted.json() == {"id": cid, "object": "conversation.deleted", "deleted": True}
    missing = f"Conversation with id '{cid}' not found."
    for method, path in [
        ("GET", f"/v1/conversations/{cid}"),
        ("POST", f"/v1/conversations/{cid}"),
        ("DELETE", f"/v1/conversations/{cid}"),
        ("GET", f"/v1/conversations/{cid}/items"),
        ("GET", f"/v1/conversations/{cid}/items/{item_id}"),
        ("DELETE", f"/v1/conversations/{cid}/items/{item_id}"),
    ]:
        body = {"metadata": {}} if method == "POST" else None
        response = api.request(method, path, json=body)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["message"] == missing
    response = api.post(f"/v1/conversations/{cid}/items", json={"items": []})
    assert response.status_code == 404
    # D4: the items went with the conversation; nobody can reference them any more.
    other = api.new_conversation()
    ref = api.post(f"/v1/conversations/{other}/items", json={"items": [{"type": "item_reference", "id": item_id}]})
    assert ref.status_code == 404
    assert ref.json()["error"]["message"] == f"Item with id '{item_id}' not found."


@pytest.mark.parametrize(
    ("metadata", "param", "code"),
    [
        ("x", "metadata", "invalid_type"),
        ({str(i): "v" for i in range(17)}, "metadata", "object_above_max_properties"),
        ({"k" * 65: "v"}, "metadata." + "k" * 65, "property_name_above_max_length"),
        ({"k": "v" * 513}, "metadata.k", "string_above_max_length"),
        ({"k": 1}, "metadata.k", "invalid_type"),
    ],
)
def test_metadata_bounds(api: Api, metadata: object, param: str, code: str) -> None:
    response = api.post("/v1/conversations", json={"metadata": metadata})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


def test_metadata_at_the_bounds_is_accepted(api: Api) -> None:
    metadata = {f"{i:064d}": "v" * 512 for i in range(16)}
    assert api.post("/v1/conversations", json={"metadata": metadata}).json()["metadata"] == metadata


def test_metadata_error_messages(api: Api) -> None:
    cases = {
        "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, "
        "but got an object with 17 properties instead.": {str(i): "v" for i in range(17)},
        "Invalid property name in 'metadata': '" + "k" * 65 + "' is too long. Expected a string "
        "with maximum length 64, but got a string with length 65 instead.": {"k" * 65: "v"},
        "Invalid 'metadata.k': string too long. Expected a string with maximum length 512, "
        "but got a string with length 513 instead.": {"k": "v" * 513},
        "Invalid type for 'metadata.k': expected a string, but got an integer instead.": {"k": 1},
    }
    for message, metadata in cases.items():
        assert api.post("/v1/conversations", json={"metadata": metadata}).json()["error"]["message"] == message


def test_unknown_top_level_key(api: Api) -> None:
    error = api.post("/v1/conversations", json={"metadata": {}, "foo": 1}).json()["error"]
    assert error == {
        "message": "Unknown parameter: 'foo'.",
        "type": "invalid_request_error",
        "param": "foo",
        "code": "unknown_parameter",
    }


def test_isolation_key_partitions_conversations(api: Api) -> None:
    mine = api.new_conversation()
    keyed = api.post("/v1/conversations", headers={"x-ms-user-isolation-key": "alice"}).json()["id"]
    assert api.get(f"/v1/conversations/{keyed}", headers={"x-ms-user-isolation-key": "alice"}).status_code == 200
    assert api.get(f"/v1/conversations/{keyed}").status_code == 404
    assert api.get(f"/v1/conversations/{keyed}", headers={"x-ms-user-isolation-key": "bob"}).status_code == 404
    assert api.get(f"/openai/v1/conversations/{mine}", headers={"x-ms-user-isolation-key": "alice"}).status_code == 404
    assert api.get(f"/openai/v1/conversations/{mine}").status_code == 200
