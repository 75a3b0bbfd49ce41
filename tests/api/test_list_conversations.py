"""GET /v1/conversations: the caller's conversations, newest first, keyset pages, filters
(an extension, docs/list.md). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from convostore.settings import DEFAULT_PROJECT
from convostore.store.base import ConversationRow, NewConversation, Owner
from tests.support import Api

ME = Owner(DEFAULT_PROJECT, "")


def listing(api: Api, prefix: str = "/v1", **params: Any) -> dict[str, Any]:
    response = api.get(f"{prefix}/conversations", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def every_id(api: Api, **params: Any) -> list[str]:
    out: list[str] = []
    query = {"limit": 2, **params}
    while True:
        page = listing(api, **query)
        out += [c["id"] for c in page["data"]]
        if not page["has_more"]:
            return out
        query["after"] = page["last_id"]


def seed(api: Api, count: int, owner: Owner = ME, start: int = 1_700_000_000, **meta: str) -> list[str]:
    """Conversations created one second apart (oldest first), straight through the store."""
    ids = []
    for n in range(count):
        row = ConversationRow(f"conv_seed{start + n}{owner.user}", start + n, b"{}" if not meta else _json(meta))
        api.run(api.app.store.create_conversation(owner, NewConversation(row)))
        ids.append(row.id)
    return ids


def _json(meta: dict[str, str]) -> bytes:
    import orjson

    return orjson.dumps(meta)


def test_empty(api: Api) -> None:
    body = listing(api)
    assert body == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_newest_first_and_pages(api: Api) -> None:
    made = [api.new_conversation(metadata={"n": str(n)}) for n in range(5)]
    body = listing(api)
    assert [c["id"] for c in body["data"]] == made[::-1]
    newest = body["data"][0]
    # The ConversationResource of the other routes, plus the extension's two counters.
    assert {k: newest[k] for k in ("id", "object", "created_at", "metadata")} == api.get(f"/v1/conversations/{made[-1]}").json()
    assert (newest["item_count"], newest["last_active_at"]) == (0, newest["created_at"])
    assert every_id(api) == made[::-1]
    assert every_id(api, order="asc") == made
    page = listing(api, limit=2, order="asc")
    assert [c["id"] for c in page["data"]] == made[:2] and page["has_more"] is True
    page = listing(api, limit=2, order="asc", after=made[3])
    assert [c["id"] for c in page["data"]] == made[4:] and page["has_more"] is False
    assert [c["id"] for c in listing(api, "/openai/v1", limit=1)["data"]] == made[-1:]


def test_same_second_is_ordered_by_creation(api: Api) -> None:
    made = seed(api, 1) + [api.new_conversation() for _ in range(4)]
    assert every_id(api, order="asc") == made


def test_owner_scoping(api: Api) -> None:
    mine = api.new_conversation()
    theirs = api.post("/v1/conversations", json={}, headers={"x-ms-user-isolation-key": "bob"}).json()["id"]
    seed(api, 2, Owner("other-project", ""))
    assert every_id(api) == [mine]
    bob = api.get("/v1/conversations", headers={"x-ms-user-isolation-key": "bob"}).json()
    assert [c["id"] for c in bob["data"]] == [theirs]
    # another owner's id as a cursor is unknown, like a missing one
    response = api.get("/v1/conversations", params={"after": theirs})
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": f"No conversation found with id '{theirs}'",
        "type": "invalid_request_error",
        "param": "after",
        "code": None,
    }


def test_metadata_filters(api: Api) -> None:
    a = api.new_conversation(metadata={"topic": "billing", "tier": "gold"})
    b = api.new_conversation(metadata={"topic": "billing", "tier": "free"})
    c = api.new_conversation(metadata={"topic": "support"})
    assert every_id(api, **{"metadata[topic]": "billing"}) == [b, a]
    assert every_id(api, **{"metadata[topic]": "billing", "metadata[tier]": "gold"}) == [a]
    assert every_id(api, **{"metadata[tier]": "gold", "metadata[topic]": "support"}) == []
    assert every_id(api, **{"metadata[topic]": "nothing"}) == []
    # updates replace the pairs the filter sees; deletes remove them
    api.post(f"/v1/conversations/{c}", json={"metadata": {"topic": "billing"}})
    api.post(f"/v1/conversations/{a}", json={"metadata": None})
    assert every_id(api, **{"metadata[topic]": "billing"}) == [c, b]
    api.delete(f"/v1/conversations/{b}")
    assert every_id(api, **{"metadata[topic]": "billing"}) == [c]
    assert every_id(api, order="asc", **{"metadata[topic]": "billing"}) == [c]


def test_metadata_filter_with_unusual_keys(api: Api) -> None:
    odd = {"a b": "x y", "ключ": "значение", "k]": "v[", "": "empty key"}
    made = api.new_conversation(metadata=odd)
    api.new_conversation(metadata={"a b": "other"})
    for key, value in odd.items():
        assert every_id(api, **{f"metadata[{key}]": value}) == [made], key


def test_created_filters(api: Api) -> None:
    made = seed(api, 10)  # created_at 1_700_000_000 .. +9
    assert every_id(api, created_after=1_700_000_003) == made[3:][::-1]
    assert every_id(api, created_before=1_700_000_003) == made[:3][::-1]
    window = every_id(api, created_after=1_700_000_002, created_before=1_700_000_005, order="asc")
    assert window == made[2:5]
    assert every_id(api, created_after=1_800_000_000) == []


def test_filters_combine(api: Api) -> None:
    gold = seed(api, 6, start=1_700_000_000, tier="gold")
    seed(api, 6, start=1_700_000_100, tier="free")
    assert every_id(api, created_after=1_700_000_002, **{"metadata[tier]": "gold"}) == gold[2:][::-1]
    page = listing(api, limit=2, created_before=1_700_000_004, **{"metadata[tier]": "gold"})
    assert [c["id"] for c in page["data"]] == [gold[3], gold[2]] and page["has_more"]


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"limit": "0"}, "limit", "integer_below_min_value"),
        ({"limit": "101"}, "limit", "integer_above_max_value"),
        ({"limit": "x"}, "limit", "invalid_type"),
        ({"order": "up"}, "order", "invalid_value"),
        ({"created_after": "yesterday"}, "created_after", "invalid_type"),
        ({"created_before": "-1"}, "created_before", "invalid_type"),
        ({"metadata[" + "k" * 65 + "]": "v"}, "metadata." + "k" * 65, "property_name_above_max_length"),
        ({"metadata[k]": "v" * 513}, "metadata.k", "string_above_max_length"),
    ],
)
def test_bad_parameters(api: Api, params: dict[str, str], param: str, code: str) -> None:
    response = api.get("/v1/conversations", params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


def test_unknown_after_is_404(api: Api) -> None:
    response = api.get("/v1/conversations", params={"after": "conv_nope"})
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "after"


def test_official_routes_are_unchanged(api: Api) -> None:
    """POST still creates; the id 'search' still means a conversation id on every other
    method and deeper path."""
    assert api.post("/v1/conversations", json={}).status_code == 200
    for method in ("POST", "DELETE"):
        response = api.request(method, "/v1/conversations/search", json={"metadata": {}})
        assert response.status_code == 404, method
        assert response.json()["error"]["message"] == "Conversation with id 'search' not found."
    response = api.get("/v1/conversations/search/items")
    assert response.json()["error"]["message"] == "Conversation with id 'search' not found."
    response = api.request("PUT", "/v1/conversations/search")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, POST"


def test_nul_characters(api: Api) -> None:
    """U+0000 in metadata still stores and filters; in a cursor it is an unknown id."""
    made = api.new_conversation(metadata={"k": "a\u0000b", "z\u0000": "v"})
    assert every_id(api, **{"metadata[k]": "a\u0000b"}) == [made]
    assert every_id(api, **{"metadata[z\u0000]": "v"}) == [made]
    assert every_id(api, **{"metadata[k]": "a"}) == []
    assert api.get("/v1/conversations", params={"after": "conv_\u0000"}).status_code == 404
    response = api.get("/v1/conversations/search", params={"q": "x", "after": "conv_a/b\u0000"})
    assert response.status_code == 404


# -- D24: `before`, and unknown parameters -----------------------------------------------


def test_before_is_the_page_just_before(api: Api) -> None:
    made = seed(api, 7)  # oldest first
    newest_first = made[::-1]
    for order, expected in (("desc", newest_first), ("asc", made)):
        for at in range(len(expected)):
            for limit in (1, 2, 3, 10):
                page = listing(api, order=order, limit=limit, before=expected[at])
                want = expected[max(0, at - limit) : at]
                assert [c["id"] for c in page["data"]] == want, (order, at, limit)
                assert page["has_more"] is (at - limit > 0), (order, at, limit)
    # Paging backwards with `before=first_id` walks the whole list, in order, once.
    seen: list[str] = []
    page = listing(api, limit=2, before=newest_first[-1])
    while True:
        seen = [c["id"] for c in page["data"]] + seen
        if not page["has_more"]:
            break
        page = listing(api, limit=2, before=page["first_id"])
    assert seen == newest_first[:-1]
    # With `after` too: the range between them, still the part next to `before`.
    page = listing(api, limit=2, after=newest_first[0], before=newest_first[5])
    assert [c["id"] for c in page["data"]] == newest_first[3:5] and page["has_more"] is True
    # Filters apply as with `after`.
    tagged = seed(api, 3, start=1_800_000_000, team="red")
    page = listing(api, **{"metadata[team]": "red", "before": tagged[0], "order": "asc"})
    assert page["data"] == [] and page["has_more"] is False


def test_unknown_before_is_404(api: Api) -> None:
    error = api.get("/v1/conversations", params={"before": "conv_nope"}).json()["error"]
    assert error == {
        "message": "No conversation found with id 'conv_nope'",
        "type": "invalid_request_error",
        "param": "before",
        "code": None,
    }


@pytest.mark.parametrize("route", ["/v1/conversations", "/openai/v1/conversations", "/v1/conversations/search"])
def test_extension_routes_name_unknown_parameters(api: Api, route: str) -> None:
    base = {"q": "hello"} if route.endswith("search") else {}
    response = api.get(route, params={**base, "agent_name": "planner"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "Unknown parameter: 'agent_name'.",
        "type": "invalid_request_error",
        "param": "agent_name",
        "code": "unknown_parameter",
    }
    error = api.get(route, params={**base, "agent_id": "a", "colour": "red"}).json()["error"]
    assert (error["param"], error["message"]) == ("agent_id", "Unknown parameters: 'agent_id', 'colour'.")
    # What they know, and Azure's api-version (D12), pass.
    known = {"limit": "5", "order": "asc", "api-version": "2025-11-15-preview", "include[]": "reasoning.encrypted_content"}
    if not route.endswith("search"):
        known |= {"created_after": "1", "created_before": "9999999999", "metadata[team]": "red"}
    assert api.get(route, params={**base, **known}).status_code == 200


def test_official_routes_still_ignore_unknown_parameters(api: Api) -> None:
    cid = api.new_conversation(items=[{"role": "user", "content": "x"}])
    (item,) = api.all_items(cid)
    for path in (f"/v1/conversations/{cid}", f"/v1/conversations/{cid}/items", f"/v1/conversations/{cid}/items/{item['id']}"):
        assert api.get(path, params={"agent_name": "planner", "before": "x"}).status_code == 200
