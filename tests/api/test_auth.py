"""API keys: 401 before anything else, projects, env keys, revocation, rate limits (D13)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from convostore.service.keys import Keys, hash_secret
from convostore.settings import SettingsError
from convostore.store.base import Store
from convostore.store.postgres import PostgresStore
from convostore.store.sqlite import SQLiteStore
from tests.support import Api, ManualClock, make_app


@pytest.fixture
def keyed(store: Store) -> Iterator[tuple[Api, str, str]]:
    """An app with two keys of project acme and one of project beta; caching off."""
    api = Api(make_app(store, key_cache_seconds=0))
    keys = Keys(store)
    _, first = api.run(keys.create("acme", "one"))
    _, beta = api.run(keys.create("beta", "other"))
    yield api, first, beta
    api.close()


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def test_open_server_needs_no_key(api: Api) -> None:
    assert api.post("/v1/conversations", headers=bearer("anything")).status_code == 200
    assert api.post("/v1/conversations").status_code == 200


@pytest.mark.parametrize(
    ("headers", "message_start"),
    [
        ({}, "You didn't provide an API key."),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "Invalid authorization header"),
        ({"authorization": "Bearer "}, "Invalid authorization header"),
        ({"authorization": "Bearer sk-cs-not-a-real-key-at-all"}, "Incorrect API key provided: sk-cs-"),
        ({"api-key": "sk-cs-not-a-real-key-at-all"}, "Incorrect API key provided"),
    ],
)
def test_bad_credentials_are_401(keyed: tuple[Api, str, str], headers: dict[str, str], message_start: str) -> None:
    api, _, _ = keyed
    response = api.post("/v1/conversations", json={}, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["message"].startswith(message_start)
    assert "not-a-real-key-at-all" not in error["message"]


def test_401_comes_before_the_body_and_the_route(keyed: tuple[Api, str, str]) -> None:
    api, _, _ = keyed
    bad_json = api.post("/v1/conversations", content=b"{nope", headers={"content-type": "application/json"})
    assert bad_json.status_code == 401
    assert api.get("/v1/no/such/route").status_code == 401
    assert api.post("/v1/conversations", content=b"{nope", headers={"content-type": "application/json", **bearer("x" * 30)}).status_code == 401


def test_both_header_styles(keyed: tuple[Api, str, str]) -> None:
    api, secret, _ = keyed
    cid = api.post("/v1/conversations", headers=bearer(secret)).json()["id"]
    assert api.get(f"/openai/v1/conversations/{cid}", headers={"api-key": secret}).status_code == 200


def test_projects_do_not_see_each_other(keyed: tuple[Api, str, str]) -> None:
    api, acme, beta = keyed
    cid = api.post("/v1/conversations", headers=bearer(acme)).json()["id"]
    response = api.get(f"/v1/conversations/{cid}", headers=bearer(beta))
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"Conversation with id '{cid}' not found."
    # A second key of the same project sees it.
    _, acme2 = api.run(Keys(api.app.store).create("acme", "two"))
    assert api.get(f"/v1/conversations/{cid}", headers=bearer(acme2)).status_code == 200


def test_revocation_is_immediate_without_cache(keyed: tuple[Api, str, str]) -> None:
    api, secret, _ = keyed
    assert api.post("/v1/conversations", headers=bearer(secret)).status_code == 200
    (row,) = api.run(Keys(api.app.store).list("acme"))
    assert api.run(Keys(api.app.store).revoke(row.id)) is True
    assert api.post("/v1/conversations", headers=bearer(secret)).status_code == 401
    assert api.run(Keys(api.app.store).revoke(row.id)) is False


def test_revocation_reaches_a_caching_process_within_the_bound(store: Store) -> None:
    """With key_cache_seconds=2 a revoked key keeps working at most that long (on a clock
    the test moves: the bound is checked exactly, without waiting for it)."""
    bound = 2.0
    clock = ManualClock()
    api = Api(make_app(store, clock, key_cache_seconds=bound))
    try:
        keys = Keys(store)
        row, secret = api.run(keys.create("acme", "cached"))
        # The start-up "no keys yet" answer holds until the bound: the key is not asked for.
        assert api.post("/v1/conversations", headers=bearer(secret)).status_code == 200
        clock.advance(bound)
        assert api.post("/v1/conversations", headers=bearer(secret)).status_code == 200
        assert api.post("/v1/conversations").status_code == 401  # keys are required now
        api.run(keys.revoke(row.id))
        clock.advance(bound * 0.75)
        assert api.post("/v1/conversations", headers=bearer(secret)).status_code == 200  # cached
        clock.advance(bound * 0.25)
        assert api.post("/v1/conversations", headers=bearer(secret)).status_code == 401
    finally:
        api.close()


def test_last_used_is_recorded(keyed: tuple[Api, str, str]) -> None:
    api, secret, _ = keyed
    before = {r.name: r.last_used_at for r in api.run(Keys(api.app.store).list(None))}
    assert before == {"one": None, "other": None}
    api.post("/v1/conversations", headers=bearer(secret))
    after = {r.name: r.last_used_at for r in api.run(Keys(api.app.store).list(None))}
    assert after["one"] is not None and after["other"] is None


def test_keys_from_the_environment(store: Store) -> None:
    secret = "sk-env-" + "z" * 40
    api = Api(make_app(store, api_keys=f"acme:{secret}"))
    try:
        assert api.post("/v1/conversations").status_code == 401
        assert api.post("/v1/conversations", headers=bearer(secret)).status_code == 200
        assert "z" * 40 not in repr(api.app.settings)
    finally:
        api.close()
    with pytest.raises(SettingsError):
        make_app(store, api_keys="acme:short")


def test_rate_limit_answers_429_with_retry_after(store: Store) -> None:
    api = Api(make_app(store, key_cache_seconds=0, rate_limit=2))
    try:
        _, secret = api.run(Keys(store).create("acme", "limited"))
        codes = [api.post("/v1/conversations", headers=bearer(secret)).status_code for _ in range(4)]
        assert codes[:2] == [200, 200]
        assert 429 in codes[2:]
        limited = api.post("/v1/conversations", headers=bearer(secret))
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    finally:
        api.close()


def test_non_loopback_without_keys_refuses_to_start(store: Store) -> None:
    app = make_app(store, host="0.0.0.0")
    with pytest.raises(SettingsError, match="refusing to serve"):
        Api(app)
    Api(make_app(store, host="0.0.0.0", allow_unauthenticated=True)).close()


def test_non_loopback_with_keys_starts(store: Store) -> None:
    api = Api(make_app(store))
    api.run(Keys(store).create("acme", "k"))
    api.close()
    Api(make_app(store, host="0.0.0.0")).close()


def test_only_hashes_are_stored(tmp_path: Path) -> None:
    from convostore.store.sqlite import SQLiteStore

    path = tmp_path / "keys.db"
    store = SQLiteStore(path)
    api = Api(make_app(store))
    try:
        row, secret = api.run(Keys(store).create("acme", "k"))
        assert row.hash == hash_secret(secret)
        assert secret not in repr(row)
    finally:
        api.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in raw
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM api_keys WHERE hash = ?", (hash_secret(secret),)).fetchone() == (1,)


def test_revoking_the_last_key_does_not_open_the_server(keyed: tuple[Api, str, str]) -> None:
    api, secret, beta = keyed
    keys = Keys(api.app.store)
    for row in api.run(keys.list(None)):
        api.run(keys.revoke(row.id))
    for headers in ({}, bearer(secret), bearer(beta)):
        assert api.post("/v1/conversations", headers=headers).status_code == 401


def test_emptying_the_keys_table_does_not_open_a_keyed_server(
    keyed: tuple[Api, str, str], store: Store
) -> None:
    """L7 (issue 15): fail closed. With every key row deleted behind its back, a server
    that started with keys keeps refusing requests without one (and the gone keys)."""
    api, first, _ = keyed
    assert api.post("/v1/conversations", headers=bearer(first)).status_code == 200

    async def empty() -> None:
        if isinstance(store, PostgresStore):
            async with store.pool.acquire() as conn:
                await conn.execute("DELETE FROM api_keys")
        else:
            assert isinstance(store, SQLiteStore)
            async with store.transactions.write() as db:
                db.execute("DELETE FROM api_keys")

    api.run(empty())
    assert not api.run(store.has_keys())
    assert api.post("/v1/conversations").status_code == 401
    assert api.post("/v1/conversations", headers=bearer(first)).status_code == 401
    assert api.get("/v1/conversations/conv_x").status_code == 401
