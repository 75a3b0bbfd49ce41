"""Create, list, retrieve and delete items (CONTRACT.md §1, D3, D5 to D8, D14, D15, D18 to D21)."""

from __future__ import annotations

import re

import pytest

from tests.support import Api

MSG_ID = re.compile(r"^msg_[0-9a-f]{48}$")


def user(text: str) -> dict[str, object]:
    return {"type": "message", "role": "user", "content": text}


def texts(items: list[dict[str, object]]) -> list[str]:
    return [i["content"][0]["text"] for i in items]  # type: ignore[index]


def test_create_returns_only_new_items_in_request_order(api: Api) -> None:
    cid = api.new_conversation(items=[user("old")])
    response = api.post(f"/v1/conversations/{cid}/items", json={"items": [user("a"), user("b")]}).json()
    assert texts(response["data"]) == ["a", "b"]
    assert response["first_id"] == response["data"][0]["id"]
    assert response["last_id"] == response["data"][1]["id"]
    assert response["has_more"] is False
    for item in response["data"]:
        assert MSG_ID.match(item["id"])
        assert item["status"] == "completed"
        assert list(item) == ["id", "type", "role", "content", "status"]


def test_easy_messages_per_role(api: Api) -> None:
    cid = api.new_conversation()
    data = api.add(
        cid,
        {"role": "user", "content": "u"},
        {"role": "system", "content": "s"},
        {"role": "developer", "content": "d"},
        {"role": "assistant", "content": "a", "phase": "final_answer"},
    )
    assert [i["type"] for i in data] == ["message"] * 4
    assert [i["content"][0]["type"] for i in data] == ["input_text", "input_text", "input_text", "output_text"]
    assert data[3]["content"][0] == {"type": "output_text", "text": "a", "annotations": [], "logprobs": []}
    assert data[3]["phase"] == "final_answer"


def test_agents_style_assistant_message(api: Api) -> None:
    """D18: no id, no status, output_text without annotations or logprobs."""
    cid = api.new_conversation()
    (item,) = api.add(
        cid, {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]}
    )
    assert MSG_ID.match(item["id"])
    assert item["status"] == "completed"
    assert item["content"] == [{"type": "output_text", "text": "Hi", "annotations": [], "logprobs": []}]


def test_retrieve_and_delete_item(api: Api) -> None:
    cid = api.new_conversation(metadata={"k": "v"})
    a, b = api.add(cid, user("a"), user("b"))
    assert api.get(f"/v1/conversations/{cid}/items/{a['id']}").json() == a
    deleted = api.delete(f"/v1/conversations/{cid}/items/{a['id']}").json()
    assert deleted == api.get(f"/v1/conversations/{cid}").json()
    assert deleted["metadata"] == {"k": "v"}
    missing = api.get(f"/v1/conversations/{cid}/items/{a['id']}")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "message": f"Item with id '{a['id']}' not found in conversation.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert api.delete(f"/v1/conversations/{cid}/items/{a['id']}").status_code == 404
    assert [i["id"] for i in api.all_items(cid)] == [b["id"]]


def test_client_ids_are_kept_and_checked(api: Api) -> None:
    cid = api.new_conversation()
    mine = "msg_" + "ab" * 24
    (item,) = api.add(cid, {"id": mine, **user("x")})
    assert item["id"] == mine
    bad = api.post(f"/v1/conversations/{cid}/items", json={"items": [{"id": "item_wrongprefix", **user("y")}]})
    assert bad.status_code == 400
    assert bad.json()["error"] == {
        "message": "Invalid 'items[0].id': 'item_wrongprefix'. Expected an ID that begins with 'msg'.",
        "type": "invalid_request_error",
        "param": "items[0].id",
        "code": "invalid_value",
    }
    fco = {"type": "function_call_output", "id": "fco_" + "1" * 48, "call_id": "call_1", "output": "ok"}
    assert api.add(cid, fco)[0]["id"] == fco["id"]
    wrong = {"type": "function_call", "id": "call_1", "call_id": "c", "name": "f", "arguments": "{}"}
    response = api.post(f"/v1/conversations/{cid}/items", json={"items": [user("z"), wrong]})
    assert response.json()["error"]["param"] == "items[1].id"
    assert "begins with 'fc'" in response.json()["error"]["message"]


def test_id_already_in_conversation(api: Api) -> None:
    """D21 (b): 400 item_already_in_conversation, nothing stored."""
    cid = api.new_conversation()
    (first,) = api.add(cid, user("one"))
    response = api.post(
        f"/v1/conversations/{cid}/items", json={"items": [user("two"), {"id": first["id"], **user("dup")}]}
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "Item already in conversation",
        "type": "invalid_request_error",
        "param": "items",
        "code": "item_already_in_conversation",
    }
    assert texts(api.all_items(cid)) == ["one"]


def test_same_id_twice_in_one_request(api: Api) -> None:
    """D21 (c): refused like (b)."""
    cid = api.new_conversation()
    twice = "msg_" + "cd" * 24
    response = api.post(f"/v1/conversations/{cid}/items", json={"items": [{"id": twice, **user("a")}, {"id": twice, **user("b")}]})
    assert response.json()["error"]["code"] == "item_already_in_conversation"
    assert api.all_items(cid) == []


def test_known_id_from_another_conversation_brings_the_stored_item(api: Api) -> None:
    """D21 (a): the stored fields win over the sent ones."""
    source = api.new_conversation()
    (stored,) = api.add(source, user("original"))
    target = api.new_conversation()
    (copy,) = api.add(target, {"id": stored["id"], **user("ignored")})
    assert copy == stored
    assert api.get(f"/v1/conversations/{target}/items/{stored['id']}").json() == stored
    # The copies are independent: deleting one leaves the other.
    api.delete(f"/v1/conversations/{source}/items/{stored['id']}")
    assert api.get(f"/v1/conversations/{target}/items/{stored['id']}").status_code == 200


def test_id_of_another_owner_counts_as_new(api: Api) -> None:
    """D21 (d)."""
    source = api.new_conversation()
    (stored,) = api.add(source, user("alice's"))
    other = api.post("/v1/conversations", headers={"x-ms-user-isolation-key": "bob"}).json()["id"]
    response = api.post(
        f"/v1/conversations/{other}/items",
        json={"items": [{"id": stored["id"], **user("bob's")}]},
        headers={"x-ms-user-isolation-key": "bob"},
    )
    assert texts(response.json()["data"]) == ["bob's"]


def test_item_reference(api: Api) -> None:
    """D7: a copy of the referenced item, with its real type and id."""
    source = api.new_conversation()
    call = {"type": "function_call", "call_id": "call_9", "name": "lookup", "arguments": '{"q":1}'}
    (stored,) = api.add(source, call)
    target = api.new_conversation()
    (copy,) = api.add(target, {"type": "item_reference", "id": stored["id"]})
    assert copy == stored
    again = api.post(f"/v1/conversations/{target}/items", json={"items": [{"id": stored["id"], "type": "item_reference"}]})
    assert again.json()["error"]["code"] == "item_already_in_conversation"
    unknown = api.post(f"/v1/conversations/{target}/items", json={"items": [{"type": "item_reference", "id": "fc_nope"}]})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "Item with id 'fc_nope' not found."
    hidden = api.post(
        f"/v1/conversations/{target}/items",
        json={"items": [{"type": "item_reference", "id": stored["id"]}]},
        headers={"x-ms-user-isolation-key": "mallory"},
    )
    assert hidden.status_code == 404


def test_empty_items_answers_empty_list(api: Api) -> None:
    cid = api.new_conversation()
    body = api.post(f"/v1/conversations/{cid}/items", json={"items": []}).json()
    assert body == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        ({}, "Missing required parameter: 'items'.", "items", "missing_required_parameter"),
        ({"items": "x"}, "Invalid type for 'items': expected an array, but got a string instead.", "items", "invalid_type"),
        (
            {"items": [{"role": "user", "content": "x"}] * 21},
            "Invalid 'items': array too long. Expected an array with maximum length 20, "
            "but got an array with length 21 instead.",
            "items",
            "array_above_max_length",
        ),
        ({"items": [], "extra": True}, "Unknown parameter: 'extra'.", "extra", "unknown_parameter"),
        (
            {"items": [{"content": "x"}]},
            "Invalid value: ''. Supported values are: 'assistant', 'system', 'developer', and 'user'.",
            "items[0]",
            "invalid_value",
        ),
    ],
)
def test_create_items_body_errors(api: Api, body: object, message: str, param: str, code: str) -> None:
    cid = api.new_conversation()
    response = api.post(f"/v1/conversations/{cid}/items", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }


def test_validation_comes_before_existence(api: Api) -> None:
    response = api.post("/v1/conversations/conv_missing/items", json={"items": [{"type": "bogus"}]})
    assert response.status_code == 400
    response = api.post("/v1/conversations/conv_missing/items", json={"items": [user("ok")]})
    assert response.status_code == 404


def test_batch_is_atomic(api: Api) -> None:
    cid = api.new_conversation(items=[user("before")])
    items = [user("a"), user("b"), user("c"), {"role": "user", "content": [{"type": "input_text", "text": 3}]}]
    response = api.post(f"/v1/conversations/{cid}/items", json={"items": items})
    assert response.json()["error"]["param"] == "items[3].content[0].text"
    assert texts(api.all_items(cid)) == ["before"]
    bad_create = api.post("/v1/conversations", json={"items": [user("a"), {"type": "nope"}]})
    assert bad_create.json()["error"]["param"] == "items[1]"


def test_compaction_trigger_is_refused(api: Api) -> None:
    cid = api.new_conversation()
    response = api.post(f"/v1/conversations/{cid}/items", json={"items": [{"type": "compaction_trigger"}]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "items[0].type"
    assert response.json()["error"]["code"] == "invalid_value"
