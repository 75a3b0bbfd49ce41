"""A bounded soak: a mixed workload on one server over loopback, memory and latency
sampled in ten windows. No request may fail, nothing acknowledged may be lost, and the
server's memory must level off (a leak grows with time; the working set does not).

Latency is reported, not asserted (timing bounds belong to benchmarks/).

Default run: 8 s. ``CONVOSTORE_FULL=1``: 10 minutes (``CONVOSTORE_SOAK_SECONDS`` sets
another length). Run alone: ``python -m pytest -m soak -s``.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import threading
import time
from pathlib import Path

import pytest

from tests.reliability.ledger import Client, Ledger
from tests.reliability.server import Server, scale

pytestmark = [pytest.mark.reliability, pytest.mark.soak]

CLIENTS = 4
WINDOWS = 10


def test_soak(tmp_path: Path) -> None:
    seconds = float(os.environ.get("CONVOSTORE_SOAK_SECONDS", scale(8, 600)))
    path = tmp_path / "soak.db"
    ledger = Ledger()
    rss: list[tuple[float, int]] = []
    cpu: list[tuple[float, float]] = []  # (elapsed, server CPU seconds so far)
    with Server(path, tmp_path / "server.log") as server:
        stop = threading.Event()
        clients = [Client(ledger, server.url, stop, seed=n) for n in range(CLIENTS)]
        started = time.monotonic()
        for client in clients:
            client.start()
        while (now := time.monotonic()) < started + seconds:
            rss.append((now - started, server.rss_kib()))
            cpu.append((now - started, server.cpu_seconds()))
            time.sleep(min(1.0, seconds / 100))
        stop.set()
        for client in clients:
            client.join(timeout=60)
        log = server.output()
    unexpected = [u for c in clients for u in c.unexpected]
    assert not unexpected, unexpected[:5]
    assert ledger.answers.get("no answer", 0) == 0, ledger.answers
    assert "Traceback" not in log
    db = sqlite3.connect(path)
    rows = [(c, i, s) for c, i, s in db.execute(
        "SELECT c.id, i.id, i.seq FROM items i JOIN conversations c ON c.pk = i.conv"
    )]  # fmt: skip
    conversations = {r[0] for r in db.execute("SELECT id FROM conversations")}
    db.close()
    stored = ledger.verify(rows, conversations)

    width = seconds / WINDOWS
    table = []
    for window in range(WINDOWS):
        low, high = started + window * width, started + (window + 1) * width
        lat = sorted(s for c in clients for when, s in c.latencies if low <= when < high)
        mem = [kib for at, kib in rss if window * width <= at < (window + 1) * width]
        used = [s for at, s in cpu if window * width <= at < (window + 1) * width]
        table.append(
            {
                "window": window + 1,
                "requests": len(lat),
                "p50_ms": round(statistics.median(lat) * 1000, 2) if lat else None,
                "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 2) if lat else None,
                "rss_mib": round(max(mem) / 1024, 1) if mem else None,
                # Server CPU per request: flat when the server's cost does not grow, so a
                # latency rise with a flat figure here is the clients' (or the machine's).
                "server_cpu_us": round((used[-1] - used[0]) / len(lat) * 1e6)
                if lat and len(used) > 1
                else None,
            }
        )
    print(f"\nsoak: {seconds:.0f} s, {ledger.requests} requests, answers {ledger.answers}, {stored}")
    for row in table:
        print("  ", row)
    # Memory levels off: the last window holds no more than the second (after warm-up)
    # plus a quarter and 16 MiB (the SQLite page cache and allocator arenas settle).
    settled, last = table[1]["rss_mib"], table[-1]["rss_mib"]
    assert settled and last
    assert last <= settled * 1.25 + 16, f"memory kept growing: {settled} MiB -> {last} MiB"
