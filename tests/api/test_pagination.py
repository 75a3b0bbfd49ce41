"""Listing items: order, limit, after, has_more (CONTRACT.md D2, D8, D15, §1.1)."""

from __future__ import annotations

import pytest

from tests.support import Api


@pytest.fixture
def conversation(api: Api) -> tuple[str, list[str]]:
    cid = api.new_conversation()
    ids: list[str] = []
    for start in range(0, 45, 15):
        data = api.add(cid, *[{"role": "user", "content": f"m{n}"} for n in range(start, start + 15)])
        ids += [i["id"] for i in data]
    return cid, ids


def page(api: Api, cid: str, **params: object) -> dict[str, object]:
    response = api.get(f"/v1/conversations/{cid}/items", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def ids_of(body: dict[str, object]) -> list[str]:
    return [i["id"] for i in body["data"]]  # type: ignore[attr-defined]


def test_default_is_desc_20(api: Api, conversation: tuple[str, list[str]]) -> None:
    cid, ids = conversation
    body = page(api, cid)
    assert ids_of(body) == ids[::-1][:20]
    assert body["has_more"] is True
    assert body["first_id"] == ids[-1]
    assert body["last_id"] == ids[-20]


def test_asc_and_limits(api: Api, conversation: tuple[str, list[str]]) -> None:
    cid, ids = conversation
    assert ids_of(page(api, cid, order="asc", limit=1)) == ids[:1]
    full = page(api, cid, order="asc", limit=100)
    assert ids_of(full) == ids
    assert full["has_more"] is False
    exact = page(api, cid, order="asc", limit=45)
    assert exact["has_more"] is False


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 7, 20, 44, 100])
def test_cursor_walk_visits_every_item_once(
    api: Api, conversation: tuple[str, list[str]], order: str, limit: int
) -> None:
    cid, ids = conversation
    seen: list[str] = []
    params: dict[str, object] = {"order": order, "limit": limit}
    while True:
        body = page(api, cid, **params)
        seen += ids_of(body)
        if not body["has_more"]:
            break
        params["after"] = body["last_id"]
    assert seen == (ids if order == "asc" else ids[::-1])


def test_after_is_exclusive_in_both_orders(api: Api, conversation: tuple[str, list[str]]) -> None:
    cid, ids = conversation
    assert ids_of(page(api, cid, order="asc", after=ids[10], limit=3)) == ids[11:14]
    assert ids_of(page(api, cid, order="desc", after=ids[10], limit=3)) == [ids[9], ids[8], ids[7]]
    last = page(api, cid, order="asc", after=ids[-1])
    assert last == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_after_unknown_or_deleted(api: Api, conversation: tuple[str, list[str]]) -> None:
    cid, ids = conversation
    api.delete(f"/v1/conversations/{cid}/items/{ids[5]}")
    for cursor in (ids[5], "msg_never"):
        response = api.get(f"/v1/conversations/{cid}/items", params={"after": cursor})
        assert response.status_code == 404
        assert response.json()["error"] == {
            "message": f"No item found with id '{cursor}'",
            "type": "invalid_request_error",
            "param": "after",
            "code": None,
        }


def test_after_from_another_conversation(api: Api, conversation: tuple[str, list[str]]) -> None:
    _, ids = conversation
    other = api.new_conversation(items=[{"role": "user", "content": "x"}])
    response = api.get(f"/v1/conversations/{other}/items", params={"after": ids[0]})
    assert response.status_code == 404


def test_deleted_items_leave_no_gap_in_pages(api: Api, conversation: tuple[str, list[str]]) -> None:
    cid, ids = conversation
    for victim in ids[3:9]:
        api.delete(f"/v1/conversations/{cid}/items/{victim}")
    body = page(api, cid, order="asc", limit=5, after=ids[1])
    assert ids_of(body) == [ids[2], *ids[9:13]]


def test_appends_go_after_everything(api: Api, conversation: tuple[str, list[str]]) -> None:
    cid, ids = conversation
    api.delete(f"/v1/conversations/{cid}/items/{ids[-1]}")
    (new,) = api.add(cid, {"role": "user", "content": "late"})
    assert ids_of(page(api, cid, limit=2)) == [new["id"], ids[-2]]


@pytest.mark.parametrize(
    ("params", "message", "param", "code"),
    [
        (
            {"limit": 1000},
            "Invalid 'limit': integer above maximum value. Expected a value <= 100, but got 1000 instead.",
            "limit",
            "integer_above_max_value",
        ),
        (
            {"limit": 0},
            "Invalid 'limit': integer below minimum value. Expected a value >= 1, but got 0 instead.",
            "limit",
            "integer_below_min_value",
        ),
        (
            {"limit": "ten"},
            "Invalid type for 'limit': expected an integer, but got a string instead.",
            "limit",
            "invalid_type",
        ),
        ({"order": "up"}, "Invalid value: 'up'. Supported values are: 'asc' and 'desc'.", "order", "invalid_value"),
    ],
)
def test_query_errors(api: Api, params: dict[str, object], message: str, param: str, code: str) -> None:
    cid = api.new_conversation()
    response = api.get(f"/v1/conversations/{cid}/items", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }
