"""An open server on loopback answers only requests addressed to a loopback name
(api/rebinding.py): a DNS-rebound page of another site reads nothing."""

from __future__ import annotations

import pytest

from convostore.api.rebinding import is_loopback_host
from convostore.store.base import Store
from tests.support import Api, make_app


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True),
        ("LOCALHOST:8000", True),
        ("console.localhost:8000", True),
        ("127.0.0.1:8000", True),
        ("127.8.9.10", True),
        ("[::1]:8000", True),
        ("[::1]", True),
        ("evil.example:8000", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.evil.example", False),
        ("10.0.0.5:8000", False),
        ("[::1", False),
        ("", False),
    ],
)
def test_loopback_names(host: str, allowed: bool) -> None:
    assert is_loopback_host(host) is allowed


def test_an_open_server_refuses_other_host_names(store: Store) -> None:
    api = Api(make_app(store))
    try:
        conversation = api.new_conversation()
        path = f"/v1/conversations/{conversation}"
        for host in ("evil.example:8000", "192.168.1.10:8000"):
            for method, body in (("GET", None), ("POST", {"metadata": {"a": "b"}}), ("DELETE", None)):
                response = api.request(method, path, json=body, headers={"host": host})
                assert response.status_code == 403, (host, method, response.text)
                assert response.json()["error"]["code"] == "host_not_allowed"
        assert api.get(path, headers={"host": "localhost:8000"}).status_code == 200
        assert api.get(path).json()["metadata"] == {}  # nothing changed
        # The console's page holds no data: served whatever the name.
        page = api.loop.run_until_complete(api.client.get("/console", headers={"host": "evil.example"}))
        assert page.status_code == 200
    finally:
        api.close()


def test_a_server_with_keys_does_not_check_names(store: Store) -> None:
    secret = "sk-test-" + "k" * 40
    api = Api(make_app(store, api_keys=f"proj:{secret}"), headers={"authorization": f"Bearer {secret}"})
    try:
        conversation = api.new_conversation()
        response = api.get(f"/v1/conversations/{conversation}", headers={"host": "api.example.com"})
        assert response.status_code == 200
    finally:
        api.close()
