"""Bounds on what one request may make the server hold or store (issue 15: L1, L2, I5,
I7), on both backends. Each hostile request is a 400 with OpenAI's envelope, its error
body is small, nothing was stored, and the next ordinary request works."""

from __future__ import annotations

from typing import Any

import orjson

from tests.support import Api

ID_MAX = 256
DEPTH_MAX = 64
PARTS_MAX = 1000
INPUT_TEXT_MAX = 10_485_760


def refused(response: Any, code: str, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert len(response.content) < 4096, len(response.content)
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == code, error
    if param is not None:
        assert error["param"] == param
    return error


def nested(depth: int) -> Any:
    """A JSON object ``depth`` levels deep."""
    value: Any = {"type": "string"}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


def test_long_item_ids_and_isolation_keys(api: Api) -> None:
    """L1: PostgreSQL's btree refused keys over ~2.7 kB with a 500."""
    cid = api.new_conversation()
    refused(
        api.post(
            f"/v1/conversations/{cid}/items",
            json={
                "items": [
                    {"type": "message", "role": "user", "content": "x", "id": "msg_" + "a" * 3000}
                ]
            },
        ),
        "string_above_max_length",
        "items[0].id",
    )
    refused(
        api.post(
            "/v1/conversations",
            json={"items": [{"type": "item_reference", "id": "msg_" + "b" * 300}]},
        ),
        "string_above_max_length",
        "items[0].id",
    )
    refused(
        api.get(f"/v1/conversations/{cid}", headers={"x-ms-user-isolation-key": "k" * 3000}),
        "string_above_max_length",
    )
    refused(
        api.post("/v1/conversations", json={}, headers={"x-ms-user-isolation-key": "k" * 3000}),
        "string_above_max_length",
    )
    # At the bound, both work on both backends.
    longest = "msg_" + "c" * (ID_MAX - 4)
    api.add(cid, {"type": "message", "role": "user", "content": "x", "id": longest})
    key = {"x-ms-user-isolation-key": "k" * ID_MAX}
    assert api.post("/v1/conversations", json={}, headers=key).status_code == 200
    assert [item["id"] for item in api.all_items(cid)] == [longest]


def test_deeply_nested_free_form_json(api: Api) -> None:
    """L2: a tool's input_schema nested 300 levels made orjson.dumps fail: a 500."""
    cid = api.new_conversation()
    item = {
        "type": "mcp_list_tools",
        "id": "mcpl_1",
        "server_label": "s",
        "tools": [{"name": "t", "input_schema": nested(300)}],
    }
    error = refused(
        api.post(f"/v1/conversations/{cid}/items", json={"items": [item]}), "invalid_value"
    )
    assert f"{DEPTH_MAX} levels" in error["message"]
    item["tools"][0]["input_schema"] = nested(DEPTH_MAX - 10)
    assert api.post(f"/v1/conversations/{cid}/items", json={"items": [item]}).status_code == 200
    assert len(api.all_items(cid)) == 1


def test_nesting_at_the_bound_with_and_without_brackets_in_strings(api: Api) -> None:
    """The bound is exact whether or not the body has more ``{``/``[`` bytes than levels
    (with few, the server skips walking the body: issue 21)."""
    cid = api.new_conversation()
    for label in ("s", "{[" * 100):
        for inner, ok in ((DEPTH_MAX - 5, True), (DEPTH_MAX - 4, False)):
            item = {
                "type": "mcp_list_tools",
                "id": f"mcpl_{inner}_{len(label)}",
                "server_label": label,
                "tools": [{"name": "t", "input_schema": nested(inner)}],
            }  # body, items, item, tools, a tool: 5 levels around input_schema
            answer = api.post(f"/v1/conversations/{cid}/items", json={"items": [item]})
            if ok:
                assert answer.status_code == 200, answer.text
            else:
                assert f"{DEPTH_MAX} levels" in refused(answer, "invalid_value")["message"]
    assert len(api.all_items(cid)) == 2


def test_a_body_that_is_a_bare_number_or_boolean_is_a_400(api: Api) -> None:
    """A JSON body that is not an object gets the schema's 400, not a 500 (the nesting
    check tried to walk a number), and changes nothing."""
    cid = api.new_conversation()
    paths = ("/v1/conversations", f"/v1/conversations/{cid}", f"/v1/conversations/{cid}/items")
    for body in (b"5", b"1.5", b"true", b"false", b'"x"', b"[]"):
        for path in paths:
            answer = api.post(path, content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 400, (body, path, answer.text)
            assert "expected a JSON object" in answer.json()["error"]["message"]
    assert api.get(f"/v1/conversations/{cid}").json()["metadata"] == {}
    assert api.all_items(cid) == []


def test_parts_and_input_text_length(api: Api) -> None:
    """I7: a message's content had no length limit (H1's 200,000 parts), and input_text
    over the spec's 10 MiB was accepted in messages."""
    cid = api.new_conversation()
    parts = [{"type": "input_text", "text": "p"} for _ in range(PARTS_MAX + 1)]
    refused(
        api.post(
            f"/v1/conversations/{cid}/items", json={"items": [{"role": "user", "content": parts}]}
        ),
        "array_above_max_length",
        "items[0].content",
    )
    huge = [{"type": "input_text", "text": "t" * (INPUT_TEXT_MAX + 1)}]
    refused(
        api.post(
            f"/v1/conversations/{cid}/items",
            content=orjson.dumps({"items": [{"role": "user", "content": huge}]}),
            headers={"content-type": "application/json"},
        ),
        "string_above_max_length",
        "items[0].content[0].text",
    )
    assert api.all_items(cid) == []
    api.add(cid, {"role": "user", "content": parts[:PARTS_MAX]})
    assert len(api.all_items(cid)[0]["content"]) == PARTS_MAX


def test_errors_quote_values_up_to_a_short_length(api: Api) -> None:
    """I5: a 5 MB key name made a 10 MB error."""
    long_key = "k" * 5_000_000
    error = refused(
        api.post(
            "/v1/conversations",
            content=orjson.dumps({long_key: 1}),
            headers={"content-type": "application/json"},
        ),
        "unknown_parameter",
    )
    assert "(5000000 characters)" in error["message"]
    cid = api.new_conversation()
    error = refused(
        api.post(
            f"/v1/conversations/{cid}/items",
            json={
                "items": [{"type": "message", "role": "user", "content": [{"type": "x" * 100_000}]}]
            },
        ),
        "invalid_value",
    )
    assert "(100000 characters)" in error["message"]
    missing = api.get("/v1/conversations/conv_" + "z" * 20_000)
    assert missing.status_code == 404 and len(missing.content) < 4096
