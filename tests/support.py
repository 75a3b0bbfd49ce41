"""Test drivers: an in-process ASGI client and a real server over a socket.

Every response either client receives is checked against the OpenAI spec excerpt: 2xx
bodies against the schema of the operation, every other answer against the error
envelope (CONTRACT.md D17). A test cannot forget to validate.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from convostore.api.app import ConvoStore, create_app
from convostore.clock import SYSTEM, Clock
from convostore.settings import Settings
from convostore.store.base import Store
from tests import spec_schema

_ROUTES = [
    (re.compile(r"^/(?:openai/)?v1/conversations$"), {"POST": "conversation"}),
    (
        re.compile(r"^/(?:openai/)?v1/conversations/[^/]+$"),
        {"GET": "conversation", "POST": "conversation", "DELETE": "deleted"},
    ),
    (re.compile(r"^/(?:openai/)?v1/conversations/[^/]+/items$"), {"POST": "list", "GET": "list"}),
    (
        re.compile(r"^/(?:openai/)?v1/conversations/[^/]+/items/[^/]+$"),
        {"GET": "item", "DELETE": "conversation"},
    ),
]


# Extensions (issue 7): routes the spec does not have, checked against their documented
# shapes, with every conversation and item inside validated against the spec.
_EXTENSIONS = [
    (re.compile(r"^/(?:openai/)?v1/conversations$"), "GET", "conversation_list"),
    (re.compile(r"^/(?:openai/)?v1/conversations/search$"), "GET", "search"),
    (re.compile(r"^/(?:healthz|readyz)$"), "GET", "probe"),
    (re.compile(r"^/(?:openai/)?v1/conversations/[^/]+/fork$"), "POST", "fork"),
]


def _check_extension(kind: str, body: Any) -> None:
    if kind == "probe":
        assert body["status"] in ("ok", "ready"), body
        return
    if kind == "fork":  # the new conversation, as the list extension shows it (docs/fork.md)
        spec_schema.validate("ConversationResource", body)
        assert set(body) == {
            "id", "object", "created_at", "metadata", "item_count", "last_active_at", "safety_identifier"
        }, body
        return
    assert set(body) == spec_schema.LIST_KEYS and body["object"] == "list", body
    assert isinstance(body["has_more"], bool)
    data = body["data"]
    for entry in data:
        if kind == "conversation_list":
            spec_schema.validate("ConversationResource", entry)
            # What the extension adds (docs/list.md): live items and last activity.
            assert set(entry) == {
                "id", "object", "created_at", "metadata", "item_count", "last_active_at", "safety_identifier"
            }, entry
            assert entry["safety_identifier"] is None or isinstance(entry["safety_identifier"], str), entry
            assert isinstance(entry["item_count"], int) and entry["item_count"] >= 0, entry
            assert isinstance(entry["last_active_at"], int), entry
        else:
            assert set(entry) == {"object", "id", "conversation_id", "item"}, entry
            assert entry["object"] == "conversation.item.search_result"
            spec_schema.validate_item(entry["item"])
            assert entry["id"] == f"{entry['conversation_id']}/{entry['item']['id']}"
    if data:
        assert (body["first_id"], body["last_id"]) == (data[0]["id"], data[-1]["id"]), body
    else:
        assert (body["first_id"], body["last_id"], body["has_more"]) == (None, None, False), body


def check_response(method: str, path: str, response: httpx.Response) -> None:
    """Assert the body is what the spec says for this operation, or the error envelope."""
    if path == "/metrics" and response.status_code == 200:
        assert response.headers["content-type"].startswith("text/plain"), response.headers
        return
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    if response.status_code >= 300:
        spec_schema.error_envelope_ok(body)
        return
    assert response.status_code == 200, response.status_code
    for pattern, extension_method, kind in _EXTENSIONS:
        if pattern.match(path) and method == extension_method:
            _check_extension(kind, body)
            return
    for pattern, ops in _ROUTES:
        if pattern.match(path) and method in ops:
            spec_schema.validate_response(ops[method], body)
            return
    raise AssertionError(f"2xx from a route the spec does not have: {method} {path}")



class Api:
    """A synchronous client of an in-process app, validating every answer."""

    def __init__(self, app: ConvoStore, headers: dict[str, str] | None = None):
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000", headers=headers
        )
        self.loop.run_until_complete(app.startup())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.app.shutdown())
        self.loop.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.loop.run_until_complete(self.client.request(method, path, **kwargs))
        check_response(method, response.request.url.path, response)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def run(self, coro: Any) -> Any:
        """Run a coroutine (e.g. a direct store call) on the client's loop."""
        return self.loop.run_until_complete(coro)

    # conveniences -------------------------------------------------------------------------

    def new_conversation(self, **body: Any) -> str:
        response = self.post("/v1/conversations", json=body)
        assert response.status_code == 200, response.text
        conversation_id: str = response.json()["id"]
        return conversation_id

    def add(self, conversation_id: str, *items: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
        response = self.post(f"/v1/conversations/{conversation_id}/items", json={"items": list(items)}, **kwargs)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def all_items(self, conversation_id: str, **params: Any) -> list[dict[str, Any]]:
        """Every item, following ``after`` cursors like the SDKs do."""
        out: list[dict[str, Any]] = []
        query = {"order": "asc", "limit": 100, **params}
        while True:
            page = self.get(f"/v1/conversations/{conversation_id}/items", params=query).json()
            out.extend(page["data"])
            if not page["has_more"]:
                return out
            query["after"] = page["last_id"]


def make_app(store: Store, clock: Clock = SYSTEM, **settings: Any) -> ConvoStore:
    return create_app(Settings(**settings), store, clock)


class ManualClock(Clock):
    """A clock that moves only when the test says (:meth:`advance`): code on it waits on
    what the test does, and the test on what the code does, never on the wall clock."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:  # type: ignore[override]
        return self.now

    def time(self) -> float:  # type: ignore[override]
        return self.now

    async def sleep(self, seconds: float) -> None:  # type: ignore[override]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time on and wake the sleepers whose time came (they run at the loop's
        next turn)."""
        self.now += seconds
        due = [s for s in self.sleepers if s[0] <= self.now]
        self.sleepers = [s for s in self.sleepers if s[0] > self.now]
        for _, future in due:
            if not future.done():
                future.set_result(None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def launched(
    command: list[str],
    *,
    probe: str,
    timeout: float = 30,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    ready: Callable[[httpx.Response], bool] = lambda response: True,
) -> Iterator[None]:
    """A server subprocess, up once ``GET probe`` answers (and ``ready`` accepts the
    answer); stopped on exit.

    Its output goes to a file, not a pipe nobody reads (a chatty server could fill a pipe
    and block), and is shown when it exits before answering.
    """
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    process = subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                output = log.read().decode(errors="replace")
                raise RuntimeError(f"{command[:3]} exited with {process.returncode}:\n{output}")
            try:
                if ready(httpx.get(probe, timeout=2)):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[:3]} did not start within {timeout} s")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def running_server(db: str | Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``convostore serve`` in a subprocess; yields its base URL (``http://127.0.0.1:P/v1``)."""
    port = free_port()
    command = [sys.executable, "-m", "convostore", "serve", "--db", str(db), "--port", str(port), *args]
    base = f"http://127.0.0.1:{port}/v1"
    with launched(command, probe=f"{base}/conversations/conv_probe", env=env):
        yield base
