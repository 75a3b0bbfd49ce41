"""The Prometheus registry of one app (``GET /metrics``, docs/observability.md).

Requests by route, method and status, latency histograms by route, the database pool,
items stored, and the conversations and items the retention purge deleted.
"""

from __future__ import annotations

import itertools
import logging
import time
from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.process_collector import ProcessCollector

from convostore.service import retention
from convostore.store.base import Store

log = logging.getLogger("convostore")

CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()
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
        self.registry.register(_Collector(self))
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


class _Collector:
    """The families made when scraped: requests and latency from the plain dicts, then
    gauges of pool use (from the driver's pool) and items stored."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        yield from self.requests()
        yield from self.store()

    def requests(self) -> Iterable[Metric]:
        """``convostore_requests_total`` and ``convostore_request_duration_seconds``."""
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

    def store(self) -> Iterable[Metric]:
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
