"""GET /v1/conversations/search?q=…: full-text search over the text of the caller's items
(an extension, docs/search.md). Runs on SQLite (FTS5) and PostgreSQL (tsvector + GIN)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Api


def search(api: Api, q: str, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    response = api.get("/v1/conversations/search", params={"q": q, **params}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def hits(api: Api, q: str, **params: Any) -> list[tuple[str, str]]:
    """(conversation id, item id) of every hit, following ``after`` like a client."""
    out: list[tuple[str, str]] = []
    query: dict[str, Any] = {"limit": 2, **params}
    while True:
        page = search(api, q, **query)
        out += [(h["conversation_id"], h["item"]["id"]) for h in page["data"]]
        if not page["has_more"]:
            return out
        query["after"] = page["last_id"]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_finds_message_text_newest_first(api: Api) -> None:
    one = api.new_conversation(items=[user("The quick brown fox"), {"role": "assistant", "content": "jumps over the lazy dog"}])
    two = api.new_conversation()
    added = api.add(two, user("A quick reply about foxes"), user("nothing here"))
    first = api.all_items(one)
    assert hits(api, "quick") == [(two, added[0]["id"]), (one, first[0]["id"])]
    assert hits(api, "LAZY dog") == [(one, first[1]["id"])]
    assert hits(api, "fox") == [(one, first[0]["id"])]  # words, not substrings
    assert hits(api, "fox*") == [(two, added[0]["id"]), (one, first[0]["id"])]
    body = search(api, "quick")
    assert body["data"][0]["item"] == api.get(f"/v1/conversations/{two}/items/{added[0]['id']}").json()
    assert body["first_id"] == f"{two}/{added[0]['id']}"


def test_phrases_and_all_words(api: Api) -> None:
    conv = api.new_conversation(items=[user("red green blue"), user("green red")])
    a, b = (i["id"] for i in api.all_items(conv))
    assert sorted(hits(api, "red green")) == sorted([(conv, a), (conv, b)])
    assert hits(api, '"red green"') == [(conv, a)]
    assert hits(api, '"green red"') == [(conv, b)]
    assert hits(api, "red purple") == []
    assert hits(api, "red-green") == [(conv, a)]  # one chunk is the phrase of its parts


def test_every_searchable_field(api: Api) -> None:
    conv = api.new_conversation()
    items = api.add(
        conv,
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "alpha", "annotations": []}, {"type": "refusal", "refusal": "bravo"}]},
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": '{"city": "charlie"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "delta sunny"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "echo"}]},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "foxtrot"}]},
    )
    ids = [i["id"] for i in items]
    for word, index in [("alpha", 0), ("bravo", 0), ("charlie", 1), ("city", 1), ("delta", 2), ("echo", 3), ("foxtrot", 4)]:
        assert hits(api, word) == [(conv, ids[index])], word
    assert hits(api, "weather") == []  # the function's name is not its text
    assert hits(api, "call_1") == [] and hits(api, "assistant") == []


def test_scoped_to_the_caller(api: Api) -> None:
    mine = api.new_conversation(items=[user("secret plans")])
    api.post("/v1/conversations", json={"items": [user("secret recipes")]}, headers={"x-ms-user-isolation-key": "bob"})
    assert [c for c, _ in hits(api, "secret")] == [mine]
    bob = search(api, "secret", headers={"x-ms-user-isolation-key": "bob"})
    assert [h["item"]["content"][0]["text"] for h in bob["data"]] == ["secret recipes"]


def test_deletes_leave_the_index(api: Api) -> None:
    conv = api.new_conversation(items=[user("ephemeral one"), user("ephemeral two")])
    other = api.new_conversation(items=[user("ephemeral three")])
    first, second = (i["id"] for i in api.all_items(conv))
    api.delete(f"/v1/conversations/{conv}/items/{first}")
    assert sorted(hits(api, "ephemeral")) == sorted([(conv, second), (other, api.all_items(other)[0]["id"])])
    api.delete(f"/v1/conversations/{other}")
    assert hits(api, "ephemeral") == [(conv, second)]


def test_copies_are_found_in_each_conversation(api: Api) -> None:
    source = api.new_conversation(items=[user("shared words")])
    item_id = api.all_items(source)[0]["id"]
    target = api.new_conversation(items=[{"type": "item_reference", "id": item_id}])
    assert hits(api, "shared") == [(target, item_id), (source, item_id)]


def test_pages_and_cursor(api: Api) -> None:
    conv = api.new_conversation()
    made = api.add(conv, *[user(f"needle number {n}") for n in range(7)])
    expected = [(conv, i["id"]) for i in reversed(made)]
    assert hits(api, "needle") == expected
    page = search(api, "needle", limit=3)
    assert len(page["data"]) == 3 and page["has_more"] is True
    rest = search(api, "needle", limit=100, after=page["last_id"])
    assert [(h["conversation_id"], h["item"]["id"]) for h in rest["data"]] == expected[3:]
    empty = search(api, "haystack")
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_unicode_and_case(api: Api) -> None:
    conv = api.new_conversation(items=[user("Überraschung im Café"), user("数据库 search")])
    first, second = (i["id"] for i in api.all_items(conv))
    assert hits(api, "café") == [(conv, first)]
    assert hits(api, "SEARCH") == [(conv, second)]


def test_text_with_nul_escapes(api: Api) -> None:
    conv = api.new_conversation(items=[user("before\u0000after nul"), user("a backslash \\u0000 literal")])
    first, second = (i["id"] for i in api.all_items(conv))
    assert hits(api, "nul") == [(conv, first)]
    assert hits(api, "literal") == [(conv, second)]


@pytest.mark.parametrize(
    ("params", "status", "param", "code"),
    [
        ({}, 400, "q", "missing_required_parameter"),
        ({"q": ""}, 400, "q", "invalid_value"),
        ({"q": "!!! ---"}, 400, "q", "invalid_value"),
        ({"q": "x" * 1001}, 400, "q", "string_above_max_length"),
        ({"q": "x", "limit": "0"}, 400, "limit", "integer_below_min_value"),
        ({"q": "x", "after": "nonsense"}, 404, "after", None),
        ({"q": "x", "after": "conv_x/msg_y"}, 404, "after", None),
    ],
)
def test_bad_parameters(api: Api, params: dict[str, str], status: int, param: str, code: str | None) -> None:
    response = api.get("/v1/conversations/search", params=params)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


def test_query_syntax_is_never_an_error(api: Api) -> None:
    api.new_conversation(items=[user("plain words")])
    for q in ['"unclosed', "a AND OR NOT", "col:umn", "(paren", "*", "NEAR(a b)", "'quote", "^x", "plain*"]:
        response = api.get("/v1/conversations/search", params={"q": q})
        assert response.status_code in (200, 400), (q, response.text)
