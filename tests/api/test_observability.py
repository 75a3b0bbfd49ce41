"""Probes, Prometheus metrics, request ids and access logs (docs/observability.md), on
SQLite and PostgreSQL, in process and in a real server process."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import orjson
import pytest

from convostore.api.app import ConvoStore
from convostore.settings import Settings
from convostore.store import migrate as migrations
from convostore.store.base import Store
from tests.support import Api, running_server

REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")


def observed(store: Store, **settings: object) -> tuple[Api, io.StringIO]:
    stream = io.StringIO()
    config = Settings(**settings)  # type: ignore[arg-type]
    return Api(ConvoStore(config, store, log_stream=stream)), stream


def test_healthz_and_readyz(api: Api) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready["status"] == "ready" and ready["schema_version"] >= 3
    assert api.request("POST", "/healthz").status_code == 405
    response = api.loop.run_until_complete(api.client.head("/healthz"))
    assert response.status_code == 200 and response.content == b""


def test_readyz_fails_without_the_database_or_the_schema(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    real = migrations.load
    monkeypatch.setattr(migrations, "load", lambda backend: [*real(backend), migrations.Migration(999, "future", ())])
    response = api.get("/readyz")
    assert response.status_code == 503
    assert "this server needs 999" in response.json()["error"]["message"]
    monkeypatch.setattr(migrations, "load", real)
    assert api.get("/readyz").status_code == 200
    store = api.app.store
    api.run(store.close())
    try:
        response = api.get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"]["message"] == "The database is unreachable."
        assert api.get("/healthz").status_code == 200  # the process is still up
    finally:
        api.run(store.open())


def test_request_ids(api: Api) -> None:
    first = api.post("/v1/conversations", json={})
    second = api.get("/v1/conversations/conv_missing")
    for response in (first, second):
        assert REQUEST_ID.fullmatch(response.headers["x-request-id"]), response.headers
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    mine = api.get("/v1/conversations", headers={"x-request-id": "trace-abc.123:4"})
    assert mine.headers["x-request-id"] == "trace-abc.123:4"
    for odd in ("x" * 129, "has space", "semi;colon"):
        response = api.get("/v1/conversations", headers={"x-request-id": odd})
        assert REQUEST_ID.fullmatch(response.headers["x-request-id"]), odd
    assert api.request("PUT", "/v1/conversations").headers["x-request-id"]  # errors too


def test_metrics(api: Api) -> None:
    conversation_id = api.new_conversation(items=[{"role": "user", "content": "one"}, {"role": "user", "content": "two"}])
    api.get(f"/v1/conversations/{conversation_id}/items")
    api.get("/v1/conversations/conv_nope")
    api.get("/v1/nowhere")
    response = api.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    assert 'convostore_requests_total{method="POST",route="/conversations",status="200"} 1.0' in text
    assert 'convostore_requests_total{method="GET",route="/conversations/{conversation_id}/items",status="200"} 1.0' in text
    assert 'convostore_requests_total{method="GET",route="/conversations/{conversation_id}",status="404"} 1.0' in text
    assert 'convostore_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'convostore_request_duration_seconds_bucket{le="0.005",method="POST",route="/conversations"}' in text
    assert 'convostore_db_pool_connections{state="max"}' in text
    assert "convostore_items_stored 2.0" in text
    assert conversation_id not in text  # ids never become labels
    assert "process_cpu_seconds_total" in text


def test_pool_gauge_counts_connections(api: Api, backend: str) -> None:
    api.new_conversation()
    text = api.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith('convostore_db_pool_connections{state="open"}'))
    assert float(line.split()[-1]) >= 1


def test_access_log(store: Store) -> None:
    api, stream = observed(store)
    try:
        conversation_id = api.new_conversation(items=[{"role": "user", "content": "very private words"}])
        api.get("/v1/conversations/search", params={"q": "private"}, headers={"authorization": "Bearer sk-secret-value"})
        api.get("/healthz")
    finally:
        api.close()
    text = stream.getvalue()
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert [(r["method"], r["route"], r["status"]) for r in lines] == [
        ("POST", "/conversations", 200),
        ("GET", "/conversations/search", 200),
    ]  # probes are not logged
    first = lines[0]
    assert set(first) == {"time", "level", "logger", "event", "request_id", "method", "path", "route", "status", "duration_ms"}
    assert REQUEST_ID.fullmatch(first["request_id"]) and first["duration_ms"] >= 0
    assert lines[1]["path"] == "/v1/conversations/search"
    for secret in ("private", "sk-secret-value", "Bearer", "very"):
        assert secret not in text
    assert conversation_id not in text  # created by POST /conversations: not in the path


def test_access_log_escapes_paths_and_labels_refusals(store: Store) -> None:
    api, stream = observed(store)
    try:
        assert api.get('/v1/conversations/conv_"q\\é/items').status_code == 404
        assert api.get("/v1/elsewhere").status_code == 404
        assert api.delete("/v1/conversations").status_code == 405
    finally:
        api.close()
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["path"], r["route"], r["status"]) for r in lines] == [
        ('/v1/conversations/conv_"q\\é/items', "/conversations/{conversation_id}/items", 404),
        ("/v1/elsewhere", "unmatched", 404),
        ("/v1/conversations", "/conversations", 405),
    ]
    assert len({r["request_id"] for r in lines}) == 3


def test_switches(store: Store) -> None:
    api, stream = observed(store, metrics=False, access_log=False)
    try:
        api.new_conversation()
        assert api.get("/metrics").status_code == 404
        assert api.get("/healthz").status_code == 200
    finally:
        api.close()
    assert stream.getvalue() == ""


def test_route_labels(api: Api) -> None:
    router = api.app.router
    assert router.label("GET", "/v1/conversations") == "/conversations"
    assert router.label("GET", "/openai/v1/conversations/search") == "/conversations/search"
    assert router.label("POST", "/v1/conversations/search") == "/conversations/{conversation_id}"
    assert router.label("GET", "/v1/conversations/c/items/i") == "/conversations/{conversation_id}/items/{item_id}"
    assert router.label("GET", "/v1/conversations//items") == "unmatched"
    assert router.label("GET", "/elsewhere") == "unmatched"


def test_in_a_real_server(tmp_path: Path) -> None:
    with running_server(tmp_path / "served.db") as url:
        base = url.removesuffix("/v1")
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz").status_code == 200
        created = httpx.post(f"{url}/conversations", json={})
        assert REQUEST_ID.fullmatch(created.headers["x-request-id"])
        metrics = httpx.get(f"{base}/metrics").text
        assert 'route="/conversations",status="200"' in metrics
