"""HTTP-level answers: routes, methods, bodies, content types (CONTRACT.md D12, D16, D17)."""

from __future__ import annotations

import pytest

from tests.support import Api, make_app


def test_unknown_route_is_404_envelope(api: Api) -> None:
    for path in ["/v1/nothing", "/v2/conversations", "/", "/v1/conversations/x/items/y/z", "/v1/conversations//items"]:
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["message"] == f"Invalid URL (GET {path})"


def test_wrong_method_is_405_with_allow(api: Api) -> None:
    response = api.request("PUT", "/v1/conversations")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"  # GET lists (an extension, docs/list.md)
    response = api.request("PATCH", "/openai/v1/conversations/conv_x")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, POST"
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("raw", [b"{", b"[1,", b'{"metadata": }', b"\xff\xfe", b"nul"])
def test_invalid_json(api: Api, raw: bytes) -> None:
    response = api.post("/v1/conversations", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("We could not parse the JSON body of your request.")
    assert (error["param"], error["code"]) == (None, None)


def test_deep_nesting_is_a_clean_400(api: Api) -> None:
    raw = b'{"metadata":' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = api.post("/v1/conversations", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_non_object_body(api: Api) -> None:
    response = api.post("/v1/conversations", json=[1, 2])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_type"


def test_wrong_content_type_is_415(api: Api) -> None:
    response = api.post("/v1/conversations", content=b"metadata=x", headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_content_type"
    charset = api.post("/v1/conversations", content=b"{}", headers={"content-type": "application/json; charset=utf-8"})
    assert charset.status_code == 200


def test_oversized_body_is_413(tmp_path: object, store: object) -> None:
    small = Api(make_app(store, max_body_bytes=4096))  # type: ignore[arg-type]
    try:
        big = {"metadata": {"k": "v" * 400}, "items": [{"role": "user", "content": "x" * 8000}]}
        response = small.post("/v1/conversations", json=big)
        assert response.status_code == 413
        assert response.json()["error"]["message"] == "Request body too large: the limit is 4096 bytes."
        assert small.post("/v1/conversations", json={}).status_code == 200
    finally:
        small.close()


def test_function_call_output_of_10_mib(api: Api) -> None:
    cid = api.new_conversation()
    output = "o" * 10_485_760
    item = {"type": "function_call_output", "call_id": "call_big", "output": output}
    (stored,) = api.add(cid, item)
    assert len(api.get(f"/v1/conversations/{cid}/items/{stored['id']}").json()["output"]) == len(output)
    too_long = api.post(f"/v1/conversations/{cid}/items", json={"items": [{**item, "output": output + "o"}]})
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "string_above_max_length"


def test_percent_encoded_slash_stays_in_the_id(api: Api) -> None:
    """The SDK sends retrieve("a/b") as /conversations/a%2Fb: one unknown id, not a route."""
    response = api.get("/v1/conversations/a%2Fb")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Conversation with id 'a/b' not found."
    cid = api.new_conversation()
    item = api.get(f"/v1/conversations/{cid}/items/x%2Fy%3Fz")
    assert item.json()["error"]["message"] == "Item with id 'x/y?z' not found in conversation."


@pytest.mark.parametrize("limit", [" 5", "\uff15", "5.0", "1e1", ""])
def test_limit_takes_ascii_integers_only(api: Api, limit: str) -> None:
    cid = api.new_conversation()
    response = api.get(f"/v1/conversations/{cid}/items", params={"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_type"


def test_create_items_without_body_names_the_missing_items(api: Api) -> None:
    cid = api.new_conversation()
    error = api.post(f"/v1/conversations/{cid}/items").json()["error"]
    assert (error["message"], error["param"]) == ("Missing required parameter: 'items'.", "items")


def test_nul_in_ids_is_a_clean_answer(api: Api) -> None:
    """PostgreSQL cannot store NUL in text: such ids must never reach a store."""
    cid = api.new_conversation(items=[{"role": "user", "content": "x"}])
    assert api.get("/v1/conversations/a%00b").json()["error"]["message"] == "Conversation with id 'a\x00b' not found."
    assert api.delete(f"/v1/conversations/{cid}/items/m%00").status_code == 404
    assert api.get(f"/v1/conversations/{cid}/items", params={"after": "m\x00"}).status_code == 404
    for item in ({"id": "msg_\x00", "role": "user", "content": "x"}, {"type": "item_reference", "id": "\x00"}):
        response = api.post(f"/v1/conversations/{cid}/items", json={"items": [item]})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "items[0].id"
