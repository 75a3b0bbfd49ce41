"""Every item type of the spec, through the real API (table in tests/items/cases.py).

A valid payload round-trips: create, then retrieve with every include value, then list;
each answer is checked against the spec schema by the test client. An invalid payload
gets the exact ``param`` and ``code`` and stores nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from convostore.items.include import VALUES as INCLUDE_VALUES
from tests.items.cases import INCLUDE_FIELDS, INVALID, VALID
from tests.support import Api

ALL_INCLUDES = {"include[]": list(INCLUDE_VALUES)}
VALID_BY_NAME = dict(VALID)


def dig(item: dict[str, Any], path: str) -> tuple[bool, Any]:
    """(present, value) of a dotted path with [i] indices."""
    node: Any = item
    for part in path.replace("[", ".").replace("]", "").split("."):
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def keeps(sent: Any, got: Any) -> bool:
    """Everything the client sent comes back (the server may only add, D5/D18)."""
    if isinstance(sent, dict):
        return isinstance(got, dict) and all(
            v is None or (k in got and keeps(v, got[k])) for k, v in sent.items()
        )
    if isinstance(sent, list):
        return isinstance(got, list) and len(sent) == len(got) and all(map(keeps, sent, got))
    if isinstance(sent, str) and isinstance(got, list):  # easy message content
        return len(got) == 1 and got[0]["text"] == sent
    return bool(sent == got)


@pytest.mark.parametrize(("name", "payload"), VALID, ids=[name for name, _ in VALID])
def test_valid_item_round_trips(api: Api, name: str, payload: dict[str, Any]) -> None:
    cid = api.new_conversation()
    created = api.post(f"/v1/conversations/{cid}/items", json={"items": [payload]}, params=ALL_INCLUDES)
    assert created.status_code == 200, created.text
    (item,) = created.json()["data"]
    assert item["type"] == payload.get("type", "message")
    if "id" in payload:
        assert item["id"] == payload["id"]
    assert keeps(payload, item), (payload, item)
    retrieved = api.get(f"/v1/conversations/{cid}/items/{item['id']}", params=ALL_INCLUDES).json()
    assert retrieved == item
    listed = api.get(f"/v1/conversations/{cid}/items", params=ALL_INCLUDES).json()
    assert listed["data"] == [item]
    # Also accepted at creation of a conversation, and the same with no include at all.
    conv = api.post("/v1/conversations", json={"items": [payload]}).json()["id"]
    plain = api.get(f"/v1/conversations/{conv}/items").json()["data"]
    assert len(plain) == 1


def test_every_valid_case_in_one_conversation(api: Api) -> None:
    cid = api.new_conversation()
    payloads = [payload for _, payload in VALID]
    stored: list[dict[str, Any]] = []
    for start in range(0, len(payloads), 20):
        stored += api.add(cid, *payloads[start : start + 20], params=ALL_INCLUDES)
    assert [i["type"] for i in stored] == [p.get("type", "message") for p in payloads]
    assert api.all_items(cid, **ALL_INCLUDES) == stored


# D9 (revised): an unknown key inside an item is kept by default, refused when strict.
UNKNOWN = [c for c in INVALID if c[3] == "unknown_parameter"]
REFUSED = [c for c in INVALID if c[3] != "unknown_parameter"]


@pytest.mark.parametrize(("name", "payload", "param", "code"), UNKNOWN, ids=[c[0] for c in UNKNOWN])
def test_unknown_field_is_kept_verbatim(api: Api, name: str, payload: dict[str, Any], param: str, code: str) -> None:
    cid = api.new_conversation()
    (item,) = api.add(cid, payload, params=ALL_INCLUDES)
    present, value = dig(item, param.removeprefix("items[0]."))
    assert present and value == dig(payload, param.removeprefix("items[0]."))[1]
    assert api.get(f"/v1/conversations/{cid}/items/{item['id']}", params=ALL_INCLUDES).json() == item


@pytest.mark.parametrize(("name", "payload", "param", "code"), UNKNOWN, ids=[c[0] for c in UNKNOWN])
def test_unknown_field_is_refused_when_strict(
    strict_api: Api, name: str, payload: dict[str, Any], param: str, code: str
) -> None:
    test_invalid_item_is_refused(strict_api, name, payload, param, code)


@pytest.mark.parametrize(("name", "payload", "param", "code"), REFUSED, ids=[c[0] for c in REFUSED])
def test_invalid_item_is_refused(api: Api, name: str, payload: dict[str, Any], param: str, code: str) -> None:
    cid = api.new_conversation(items=[{"role": "user", "content": "kept"}])
    response = api.post(f"/v1/conversations/{cid}/items", json={"items": [payload]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code), error["message"]
    assert error["type"] == "invalid_request_error"
    assert len(api.all_items(cid)) == 1
    # The same item later in a batch names its own index, and the batch stores nothing.
    batch = [{"role": "user", "content": "first"}, payload]
    shifted = api.post(f"/v1/conversations/{cid}/items", json={"items": batch}).json()["error"]
    expected = param.replace("items[0]", "items[1]", 1) if param.startswith("items[0]") else param
    assert shifted["param"] == expected
    assert len(api.all_items(cid)) == 1


@pytest.mark.parametrize("include", sorted(INCLUDE_FIELDS))
def test_include_unlocks_its_field(api: Api, include: str) -> None:
    spec = INCLUDE_FIELDS[include]
    payload = VALID_BY_NAME[spec["case"]]
    cid = api.new_conversation()
    (full,) = api.add(cid, payload, params={"include": [include]})
    item_path = f"/v1/conversations/{cid}/items/{full['id']}"
    variants = {
        "retrieve": lambda params: api.get(item_path, params=params).json(),
        "list": lambda params: api.get(f"/v1/conversations/{cid}/items", params=params).json()["data"][0],
    }
    for how, fetch in variants.items():
        with_it = fetch({"include": include})
        bracket = fetch({"include[]": include})
        without = fetch({})
        assert with_it == bracket == full, how
        if spec["path"] is None:
            assert without == with_it
            continue
        present, value = dig(with_it, spec["path"])
        assert present and value == dig(payload, spec["path"])[1], how
        present, value = dig(without, spec["path"])
        expected = {"absent": (False, None), "null": (True, None), "[]": (True, [])}[spec["when_excluded"]]
        assert (present, value) == expected, how
        # Everything else is the same.
        others = {k: v for k, v in without.items() if k != spec["path"].split(".")[0].split("[")[0]}
        assert others == {k: v for k, v in with_it.items() if k in others}
    # Without any include on creation, the answer is trimmed too.
    again = api.post("/v1/conversations", json={"items": [payload]}).json()["id"]
    (plain,) = api.get(f"/v1/conversations/{again}/items").json()["data"]
    if spec["path"] is not None:
        assert dig(plain, spec["path"])[0] == (spec["when_excluded"] != "absent")


def test_unknown_include_value(api: Api) -> None:
    cid = api.new_conversation()
    for route in (f"/v1/conversations/{cid}/items", f"/v1/conversations/{cid}/items/msg_x"):
        response = api.get(route, params={"include": ["reasoning.encrypted_content", "nope"]})
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["param"], error["code"]) == ("include", "invalid_value")
        assert error["message"].startswith("Invalid value: 'nope'. Supported values are: 'file_search_call.results'")
