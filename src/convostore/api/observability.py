"""Observability around the ConvoStore app: probes, metrics, request ids, access logs.

:class:`Observed` wraps the ASGI app (``create_app`` returns it) and leaves the app's own
request handling alone:

* ``GET /healthz``: the process is up (no database call). ``GET /readyz``: the database
  answers and its schema is at the version this server needs. Both answer before
  authentication, like ``GET /metrics``.
* ``GET /metrics``: Prometheus text format (prometheus-client): requests by route, method
  and status, latency histograms by route, the database pool, items stored, purges.
* Every answer carries ``x-request-id`` (the client's, when it sent a sane one, else
  ``req_`` + 32 hex); the access log is one JSON line per request on stderr with that id,
  the method, the path (no query string: it may hold search text), the route, the status
  and the duration. Never bodies, headers or credentials.
* The background purge of the retention settings starts and stops with the app.

The per-request work is a route lookup, two metric updates and a log line: measured
in docs/observability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import re
import sys
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import IO, Any

import orjson
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.process_collector import ProcessCollector

from convostore import errors
from convostore.api import render
from convostore.api.routing import Router
from convostore.service import retention
from convostore.settings import Settings
from convostore.store import migrate
from convostore.store.base import Store

log = logging.getLogger("convostore")

REQUEST_ID_HEADER = b"x-request-id"
# Access-log lines are written in batches: at most this many, or this old (seconds). A
# crash can lose the lines of the last fraction of a second, never a request.
LOG_BUFFER_LINES = 256
LOG_FLUSH_SECONDS = 0.25
_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
PROBES = ("/healthz", "/readyz", "/metrics")
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
ITEMS_REFRESH_SECONDS = 30.0
UNMATCHED = "unmatched"

_JSON = [(b"content-type", b"application/json")]
_ACCESS_LINE = (
    b'{"time":%.3f,"level":"info","event":"request","request_id":"%s","method":"%s",'
    b'"path":%s,"route":"%s","status":'
)


class RouteLabels:
    """The route pattern that serves ``method path`` (the router's own choice: literal
    segments first, then a route that has the method), or ``unmatched``: a bounded set of
    label values, found in about a microsecond."""

    def __init__(self, router: Router):
        # exact paths: /openapi.json, and the console's pages
        self.root = frozenset([*getattr(router, "root", ()), *getattr(router, "pages", ())])
        self.by_length: dict[int, list[tuple[tuple[str | None, ...], str, frozenset[str]]]] = {}
        for route in router.routes:  # already in the router's order
            self.by_length.setdefault(len(route.segments), []).append(
                (route.segments, route.pattern, frozenset(route.methods))
            )

    def __call__(self, method: str, path: str) -> str:
        if path.startswith("/v1/"):
            parts = path[4:].split("/")
        elif path.startswith("/openai/v1/"):
            parts = path[11:].split("/")
        else:
            return path if path in self.root else UNMATCHED
        fallback = UNMATCHED
        for segments, pattern, methods in self.by_length.get(len(parts), ()):
            for segment, part in zip(segments, parts):  # noqa: B905 (same length)
                if (part != segment) if segment is not None else not part:
                    break
            else:
                if method in methods:
                    return pattern
                if fallback is UNMATCHED:
                    fallback = pattern
        return fallback


def route_of(router: Router, method: str, path: str) -> str:
    return RouteLabels(router)(method, path)


class Metrics:
    """The Prometheus registry of one app.

    Requests are counted in plain dicts (one event loop per process, so no lock) and
    turned into metric families only when scraped: the request path pays a dict update
    and a bisect, not prometheus-client's locked children."""

    def __init__(self, store: Store):
        self.store = store
        self.registry = CollectorRegistry(auto_describe=True)
        self.counts: dict[tuple[str, str, int], int] = {}
        # (route, method) -> [bucket counts..., +Inf count], sum of seconds
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = {}
        self.purged_conversations = Counter(
            "convostore_purged_conversations",
            "Conversations deleted by the retention purge of this process.",
            registry=self.registry,
        )
        self.purged_items = Counter(
            "convostore_purged_items",
            "Items deleted by the retention purge of this process.",
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        self.registry.register(_RequestCollector(self))
        self.registry.register(_StoreCollector(self))
        self.items_stored: int | None = None
        self.items_counted_at = 0.0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        pair = (route, method)
        buckets = self.buckets.get(pair)
        if buckets is None:
            buckets = self.buckets[pair] = [0] * (len(LATENCY_BUCKETS) + 1)
            self.sums[pair] = 0.0
        buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sums[pair] += seconds

    def purged(self, report: retention.PurgeReport) -> None:
        self.purged_conversations.inc(report.conversations)
        self.purged_items.inc(report.items)

    async def exposition(self) -> bytes:
        now = time.monotonic()
        if self.items_stored is None or now - self.items_counted_at > ITEMS_REFRESH_SECONDS:
            try:
                self.items_stored = await self.store.count_items()
                self.items_counted_at = now
            except Exception:  # the database is down: the scrape still answers
                log.warning("metrics: could not count items", exc_info=True)
        return generate_latest(self.registry)


class _RequestCollector:
    """``convostore_requests_total`` and ``convostore_request_duration_seconds``."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "convostore_requests",
            "HTTP requests answered, by route, method and status.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), count in sorted(self.metrics.counts.items()):
            requests.add_metric([route, method, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "convostore_request_duration_seconds",
            "Time from request to the end of the answer, by route and method.",
            labels=["route", "method"],
        )
        bounds = [*(repr(float(b)) for b in LATENCY_BUCKETS), "+Inf"]
        for (route, method), counts in sorted(self.metrics.buckets.items()):
            cumulative = list(itertools.accumulate(counts))
            latency.add_metric(
                [route, method],
                list(zip(bounds, cumulative, strict=True)),
                self.metrics.sums[(route, method)],
            )
        yield latency


class _StoreCollector:
    """Gauges read when scraped: pool use (from the driver's pool) and items stored."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        use = self.metrics.store.pool_use()
        pool = GaugeMetricFamily(
            "convostore_db_pool_connections",
            "Database connections of this process: open, lent to a request, and the most.",
            labels=["state"],
        )
        pool.add_metric(["open"], use.size)
        pool.add_metric(["in_use"], use.in_use)
        pool.add_metric(["max"], use.max_size)
        yield pool
        if self.metrics.items_stored is not None:
            yield GaugeMetricFamily(
                "convostore_items_stored",
                "Items in the database (refreshed at most every 30 s; on PostgreSQL above "
                "100,000 rows, the statistics' estimate).",
                value=self.metrics.items_stored,
            )


class Observed:
    """The ASGI app that serves: the ConvoStore app, observed."""

    def __init__(self, app: Any, settings: Settings, log_stream: IO[str] | None = None):
        self.app = app
        self.settings = settings
        self.router: Router = app.router
        self.route_of = RouteLabels(self.router)
        self.metrics = Metrics(app.store) if settings.metrics else None
        self.access_log = settings.access_log
        self.observing = self.metrics is not None or self.access_log
        # Request ids need to be unique, not secret: 64 random bits per process, then a
        # counter (a system call per request would cost more than the rest of the id).
        self.id_prefix = b"%016x" % int.from_bytes(os.urandom(8), "big")
        self.id_counter = itertools.count(1)
        self.log_stream = log_stream
        self._log_lines: list[tuple[float, bytes, str, str, str, int, float]] = []
        self._log_timer: asyncio.TimerHandle | None = None
        self.purger: asyncio.Task[None] | None = None

    def __getattr__(self, name: str) -> Any:
        # store, services, auth…: the wrapped app's
        return getattr(self.app, name)

    # -- lifecycle ---------------------------------------------------------------------------

    async def startup(self) -> None:
        await self.app.startup()
        self.start_background()

    async def shutdown(self) -> None:
        await self.stop_background()
        self.flush_log()
        await self.app.shutdown()

    def start_background(self) -> None:
        """The retention purge, when a retention is set (docs/retention.md)."""
        rules = retention.rules(self.settings.retention_days, self.settings.retention_by_project)
        if not rules or self.purger is not None:
            return
        purger = retention.Purger(self.app.store, rules, batch_size=self.settings.purge_batch_size)
        interval = self.settings.purge_interval
        self.purger = asyncio.get_running_loop().create_task(
            retention.purge_forever(
                purger,
                interval,
                random.uniform(0, min(60.0, interval)),  # spread the processes
                on_report=self.metrics.purged if self.metrics else None,
            )
        )

    async def stop_background(self) -> None:
        if self.purger is not None:
            self.purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.purger
            self.purger = None

    async def lifespan(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The app's own lifespan, with the background purge started once the app has
        started and stopped before it shuts down."""

        async def receive_and_stop() -> Any:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.stop_background()
                self.flush_log()
            return message

        async def send_and_start(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.start_background()
            await send(message)

        await self.app(scope, receive_and_stop, send_and_start)

    # -- requests ----------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path in PROBES:
                await self.probe(path, scope, send)
            else:
                await self.observe(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(scope, receive, send)

    async def observe(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        start = time.perf_counter()
        request_id = None
        for key, value in scope["headers"]:
            if key == REQUEST_ID_HEADER:
                if _SANE_ID.fullmatch(value):
                    request_id = value
                break
        if request_id is None:
            request_id = b"req_%s%016x" % (self.id_prefix, next(self.id_counter))
        status, route = 500, None  # what the client sees if the app fails before answering
        try:
            status, route = await self.app.http(
                scope, receive, send, [(REQUEST_ID_HEADER, request_id)]
            )
        finally:
            if self.observing:
                self.record(scope, request_id, status, route, time.perf_counter() - start)

    def record(
        self,
        scope: dict[str, Any],
        request_id: bytes,
        status: int,
        route: str | None,
        seconds: float,
    ) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        if route is None:  # refused before routing (401, 403, 404…): find the label
            route = self.route_of(method, path)
        if self.metrics is not None:
            self.metrics.observe(route, method, status, seconds)
        if self.access_log:
            self._log_lines.append((time.time(), request_id, method, path, route, status, seconds))
            if len(self._log_lines) >= LOG_BUFFER_LINES:
                self.flush_log()
            elif self._log_timer is None:
                self._log_timer = asyncio.get_running_loop().call_later(
                    LOG_FLUSH_SECONDS, self.flush_log
                )

    def flush_log(self) -> None:
        """Write the buffered access-log lines in one call (one syscall, not one a request)."""
        if self._log_timer is not None:
            self._log_timer.cancel()
            self._log_timer = None
        if self._log_lines:
            # Formatted here, a batch at a time: the request path only keeps a tuple. Only
            # the path can hold characters JSON must escape (request ids are checked, the
            # method is an HTTP token, the route a pattern or "unmatched").
            text = (
                b"\n".join(
                    _ACCESS_LINE
                    % (when, request_id, method.encode(), orjson.dumps(path), route.encode())
                    + b'%d,"duration_ms":%.3f}' % (status, seconds * 1000)
                    for when, request_id, method, path, route, status, seconds in self._log_lines
                ).decode()
                + "\n"
            )
            self._log_lines.clear()
            stream = self.log_stream or sys.stderr
            stream.write(text)
            stream.flush()

    async def probe(self, path: str, scope: dict[str, Any], send: Any) -> None:
        headers = _JSON
        if scope["method"] not in ("GET", "HEAD"):
            failure: errors.ApiError = errors.MethodNotAllowed(
                f"Invalid method for URL ({scope['method']} {path})", allow=("GET", "HEAD")
            )
            status, body = failure.status, render.error(failure)
            headers = [*_JSON, (b"allow", b"GET, HEAD")]
        elif path == "/healthz":
            status, body = 200, b'{"status":"ok"}'
        elif path == "/readyz":
            status, body = await self.readiness()
        elif self.metrics is None:
            failure = errors.NotFound(f"Invalid URL ({scope['method']} {path})")
            status, body = failure.status, render.error(failure)
        else:
            status, body = 200, await self.metrics.exposition()
            headers = [(b"content-type", CONTENT_TYPE_LATEST.encode())]
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

    async def readiness(self) -> tuple[int, bytes]:
        store: Store = self.app.store
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
