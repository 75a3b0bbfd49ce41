"""Writes that a page of another site makes a browser send are refused (api/csrf.py,
issue 8); SDKs, curl and the console's own page are not. Through the in-process app, on
every backend; tests/console/test_browser.py shows it in a real browser."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from convostore.store.sqlite import SQLiteStore
from tests.support import Api, make_app

CROSS_SITE = [
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site", "origin": "http://127.0.0.1:3000"},
    {"origin": "http://evil.example"},
    {"origin": "null"},
    {"origin": "http://127.0.0.1.evil.example"},
]
SAME_SITE = [
    {},  # SDKs, curl: neither header
    {"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8000"},
    {"sec-fetch-site": "none"},
    {"origin": "http://127.0.0.1:8000"},  # an older browser, same origin
    {"origin": "HTTP://127.0.0.1:8000"},  # the scheme in capitals
    # Behind a proxy that rewrites Host, the browser's word decides.
    {"sec-fetch-site": "same-origin", "origin": "https://console.example.com"},
]


def listed(api: Api) -> list[str]:
    return [c["id"] for c in api.get("/v1/conversations").json()["data"]]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_cross_site_writes_are_refused(api: Api, headers: dict[str, str]) -> None:
    kept = api.new_conversation(items=[{"role": "user", "content": "keep me"}])
    item = api.all_items(kept)[0]["id"]
    attempts = [
        ("POST", "/v1/conversations", {}),
        ("POST", "/v1/conversations", {"json": {"metadata": {"a": "b"}}}),
        ("POST", f"/v1/conversations/{kept}", {"json": {"metadata": {"owned": "yes"}}}),
        ("POST", f"/v1/conversations/{kept}/items", {"json": {"items": [{"role": "user", "content": "x"}]}}),
        ("DELETE", f"/v1/conversations/{kept}/items/{item}", {}),
        ("DELETE", f"/v1/conversations/{kept}", {}),
        ("POST", "/openai/v1/conversations", {}),
        ("POST", "/v1/responses", {"json": {"model": "m", "input": "hi"}}),
    ]
    for method, path, kwargs in attempts:
        response = api.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 403, (method, path, response.text)
        error = response.json()["error"]
        assert error["code"] == "cross_site_request" and error["type"] == "invalid_request_error"
        assert error["message"].startswith("Cross-site request refused")
    # Nothing changed; reads are not refused (a page of another site cannot read them: no CORS).
    assert listed(api) == [kept]
    assert api.get(f"/v1/conversations/{kept}", headers=headers).json()["metadata"] == {}
    assert [i["id"] for i in api.all_items(kept)] == [item]


@pytest.mark.parametrize("headers", SAME_SITE)
def test_same_origin_and_non_browser_writes_pass(api: Api, headers: dict[str, str]) -> None:
    made = api.post("/v1/conversations", json={"items": [{"role": "user", "content": "hi"}]}, headers=headers)
    assert made.status_code == 200, made.text
    conversation = made.json()["id"]
    item = api.all_items(conversation)[0]["id"]
    assert api.post(f"/v1/conversations/{conversation}", json={"metadata": {"k": "v"}}, headers=headers).status_code == 200
    assert api.delete(f"/v1/conversations/{conversation}/items/{item}", headers=headers).status_code == 200
    assert api.delete(f"/v1/conversations/{conversation}", headers=headers).status_code == 200


def test_refused_before_authentication(tmp_path: Path) -> None:
    """A cross-site write is refused whatever its key (and spends no rate limit)."""
    keyed = Api(make_app(SQLiteStore(tmp_path / "c.db"), api_keys="acme:" + "k" * 32))
    try:
        response = keyed.post("/v1/conversations", headers={"sec-fetch-site": "cross-site"})
        assert response.status_code == 403
        assert keyed.post("/v1/conversations").status_code == 401
    finally:
        keyed.close()


def test_reads_and_preflights_pass(api: Api) -> None:
    """GET, HEAD and OPTIONS change nothing: never refused (OPTIONS still finds no route)."""
    cross = {"sec-fetch-site": "cross-site", "origin": "http://evil.example"}
    assert api.get("/v1/conversations", headers=cross).status_code == 200
    options: httpx.Response = api.loop.run_until_complete(api.client.options("/v1/conversations", headers=cross))
    assert options.status_code == 405
    assert options.json()["error"]["code"] != "cross_site_request"


