"""Nobody reads a conversation that is not theirs (D11, D13).

Two projects, two end users (isolation keys) in each: four tenants. Every one of the 8
operations is tried by every tenant against every other tenant's conversation and items,
including ``after`` cursors and ``item_reference``. All of it answers 404 exactly like an
id that does not exist, and nothing changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from convostore.service.keys import Keys
from convostore.store.base import Store
from tests.support import Api, make_app


@dataclass
class Tenant:
    name: str
    headers: dict[str, str]
    conversation: str = ""
    item: str = ""


@pytest.fixture
def tenants(store: Store) -> Iterator[tuple[Api, list[Tenant]]]:
    api = Api(make_app(store, key_cache_seconds=0))
    keys = Keys(store)
    out: list[Tenant] = []
    for project in ("acme", "beta"):
        _, secret = api.run(keys.create(project, "test"))
        for user in ("u1", "u2"):
            out.append(Tenant(f"{project}/{user}", {"authorization": f"Bearer {secret}", "x-ms-user-isolation-key": user}))
    for tenant in out:
        conv = api.post(
            "/v1/conversations",
            json={"metadata": {"owner": tenant.name}, "items": [{"role": "user", "content": f"secret of {tenant.name}"}]},
            headers=tenant.headers,
        ).json()
        tenant.conversation = conv["id"]
        tenant.item = api.get(f"/v1/conversations/{conv['id']}/items", headers=tenant.headers).json()["data"][0]["id"]
    yield api, out
    api.close()


def snapshot(api: Api, tenant: Tenant) -> Any:
    conv = api.get(f"/v1/conversations/{tenant.conversation}", headers=tenant.headers).json()
    items = api.get(f"/v1/conversations/{tenant.conversation}/items", headers=tenant.headers, params={"limit": 100}).json()
    return conv, items


def assert_not_found(response: Any, message: str) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_every_operation_across_every_boundary(tenants: tuple[Api, list[Tenant]]) -> None:
    api, everyone = tenants
    before = {t.name: snapshot(api, t) for t in everyone}
    for me, victim in itertools.permutations(everyone, 2):
        h = me.headers
        conv = f"/v1/conversations/{victim.conversation}"
        missing_conv = f"Conversation with id '{victim.conversation}' not found."
        assert_not_found(api.get(conv, headers=h), missing_conv)
        assert_not_found(api.post(conv, json={"metadata": {"owner": me.name}}, headers=h), missing_conv)
        assert_not_found(api.delete(conv, headers=h), missing_conv)
        assert_not_found(api.get(f"{conv}/items", headers=h), missing_conv)
        assert_not_found(
            api.post(f"{conv}/items", json={"items": [{"role": "user", "content": "injected"}]}, headers=h),
            missing_conv,
        )
        assert_not_found(api.get(f"{conv}/items/{victim.item}", headers=h), missing_conv)
        assert_not_found(api.delete(f"{conv}/items/{victim.item}", headers=h), missing_conv)
        # The victim's item through my own conversation.
        mine = f"/v1/conversations/{me.conversation}"
        assert_not_found(
            api.get(f"{mine}/items/{victim.item}", headers=h),
            f"Item with id '{victim.item}' not found in conversation.",
        )
        assert_not_found(
            api.delete(f"{mine}/items/{victim.item}", headers=h),
            f"Item with id '{victim.item}' not found in conversation.",
        )
        # A cursor taken from the victim.
        after = api.get(f"{mine}/items", params={"after": victim.item}, headers=h)
        assert after.status_code == 404
        assert after.json()["error"]["param"] == "after"
        # References to the victim's item, in an append and at creation.
        ref = {"type": "item_reference", "id": victim.item}
        assert_not_found(api.post(f"{mine}/items", json={"items": [ref]}, headers=h), f"Item with id '{victim.item}' not found.")
        assert_not_found(api.post("/v1/conversations", json={"items": [ref]}, headers=h), f"Item with id '{victim.item}' not found.")
        # The victim's id sent as a new item's id stores my content, not theirs (D21 d).
        copy = api.post(
            "/v1/conversations", json={"items": [{"id": victim.item, "role": "user", "content": "mine"}]}, headers=h
        ).json()["id"]
        (stored,) = api.get(f"/v1/conversations/{copy}/items", headers=h).json()["data"]
        assert stored["content"][0]["text"] == "mine"
    after_all = {t.name: snapshot(api, t) for t in everyone}
    assert after_all == before


def test_the_same_tenant_sees_its_own(tenants: tuple[Api, list[Tenant]]) -> None:
    api, everyone = tenants
    for tenant in everyone:
        conv, items = snapshot(api, tenant)
        assert conv["metadata"] == {"owner": tenant.name}
        assert items["data"][0]["content"][0]["text"] == f"secret of {tenant.name}"
