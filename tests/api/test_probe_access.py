"""Issue 15, L8: probes that reveal counts (/readyz, /metrics) need a key on a keyed
server (unless public_probes) and a loopback Host on an open one; /healthz reveals
nothing and stays open."""

from __future__ import annotations

import pytest

from convostore.service.keys import Keys
from convostore.store.base import Store
from tests.support import Api, make_app

REVEALING = ("/readyz", "/metrics")


def test_a_keyed_server_wants_a_key(store: Store) -> None:
    api = Api(make_app(store, key_cache_seconds=0))
    try:
        _, secret = api.run(Keys(store).create("acme", "scraper"))
        for path in REVEALING:
            refused = api.get(path)
            assert refused.status_code == 401, path
            assert refused.json()["error"]["code"] == "invalid_api_key"
            assert api.get(path, headers={"authorization": "Bearer sk-cs-wrong"}).status_code == 401
            assert api.get(path, headers={"authorization": f"Bearer {secret}"}).status_code == 200
        assert api.get("/healthz").status_code == 200
    finally:
        api.close()


def test_public_probes_opens_them(store: Store) -> None:
    api = Api(make_app(store, key_cache_seconds=0, public_probes=True))
    try:
        api.run(Keys(store).create("acme", "scraper"))
        for path in REVEALING:
            assert api.get(path).status_code == 200, path
    finally:
        api.close()


@pytest.mark.parametrize("path", REVEALING)
def test_an_open_server_answers_only_loopback_hosts(api: Api, path: str) -> None:
    rebound = api.get(path, headers={"host": "evil.example:8000"})
    assert rebound.status_code == 403
    assert "evil.example" in rebound.json()["error"]["message"]
    assert api.get(path, headers={"host": "localhost:8000"}).status_code == 200
    assert api.get("/healthz", headers={"host": "evil.example:8000"}).status_code == 200
