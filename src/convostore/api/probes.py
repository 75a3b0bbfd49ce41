"""The probes: ``GET /healthz``, ``/readyz`` and ``/metrics`` (docs/observability.md).

``/healthz``: the process is up (no database call), open to all. ``/readyz``: the database
answers and its schema is at the version this server needs. ``/metrics``: Prometheus text
format (:mod:`convostore.api.metrics`). The last two reveal every project's counts, so
they answer only what ``check`` lets through (``ConvoStore.check_probe``: a key on a keyed
server, a loopback Host on an open one; issue 15, L8).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from convostore import errors
from convostore.api import render
from convostore.api.metrics import CONTENT_TYPE, Metrics
from convostore.store import migrate
from convostore.store.base import Store

log = logging.getLogger("convostore")

PATHS = ("/healthz", "/readyz", "/metrics")
_JSON = [(b"content-type", b"application/json")]


Check = Callable[[dict[str, Any]], Awaitable[None]]


async def _anyone(scope: dict[str, Any]) -> None:
    return None


class Probes:
    def __init__(self, store: Store, metrics: Metrics | None, check: Check = _anyone):
        self.store = store
        self.metrics = metrics  # None: metrics are off, /metrics answers 404
        self.check = check  # raises an ApiError when /readyz and /metrics may not answer

    async def answer(self, path: str, scope: dict[str, Any], send: Any) -> None:
        headers = _JSON
        if scope["method"] not in ("GET", "HEAD"):
            failure: errors.ApiError = errors.MethodNotAllowed(
                f"Invalid method for URL ({scope['method']} {path})", allow=("GET", "HEAD")
            )
            status, body = failure.status, render.error(failure)
            headers = [*_JSON, (b"allow", b"GET, HEAD")]
        elif path == "/healthz":
            status, body = 200, b'{"status":"ok"}'
        elif (refused := await self.refusal(scope)) is not None:
            status, body = refused.status, render.error(refused)
            headers = [*_JSON, *refused.headers]
        elif path == "/readyz":
            status, body = await self.readiness()
        elif self.metrics is None:
            failure = errors.NotFound(f"Invalid URL ({scope['method']} {path})")
            status, body = failure.status, render.error(failure)
        else:
            status, body = 200, await self.metrics.exposition()
            headers = [(b"content-type", CONTENT_TYPE)]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    async def refusal(self, scope: dict[str, Any]) -> errors.ApiError | None:
        """Why this probe may not be answered (a key, a loopback Host), or None."""
        try:
            await self.check(scope)
        except errors.ApiError as exc:
            return exc
        return None

    async def readiness(self) -> tuple[int, bytes]:
        store = self.store
        problem = store.health()
        if problem is not None:
            failure = errors.ServiceUnavailable(
                f"The database is damaged ({problem}); run `convostore check`."
            )
            return failure.status, render.error(failure)
        needed = max(m.version for m in migrate.load(store.backend))
        try:
            version = await asyncio.wait_for(store.schema_version(), timeout=5)
        except Exception as exc:
            log.warning("readyz: database unreachable: %s", type(exc).__name__)
            failure = errors.ServiceUnavailable("The database is unreachable.")
            return failure.status, render.error(failure)
        if version < needed:
            failure = errors.ServiceUnavailable(
                f"The database schema is at version {version}; this server needs {needed} "
                "(run `convostore migrate`)."
            )
            return failure.status, render.error(failure)
        return 200, orjson.dumps({"status": "ready", "schema_version": version})
