"""Two tenants on one server: a victim project that keeps working while an attacker
project (or anyone who reaches the port) tries to stop it (issue 15).

The victim creates a conversation with one item and reads it back, again and again,
alternately on a kept-alive connection and on a new one, and records how long each
round took and what failed; afterwards :meth:`Victim.verify` reads every conversation it
was told was created. The server's memory is sampled meanwhile. The attacks connect from
other loopback addresses (127.0.0.2 and up) so that a per-address cap tells them apart
from the victim, as it would tell two machines apart.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from tests.reliability.server import Server

VICTIM_KEY = "sk-cs-victim-" + "v" * 32
ATTACKER_KEY = "sk-cs-attacker-" + "a" * 32
KEYS_ENV = {"CONVOSTORE_API_KEYS": f"victim:{VICTIM_KEY},attacker:{ATTACKER_KEY}"}


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Figures:
    rounds: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds per create + read
    failures: list[str] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)

    def summary(self) -> str:
        lat = sorted(self.latencies) or [0.0]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        rss = max(self.rss_kib or [0]) / 1024
        return (
            f"{self.rounds} rounds, {len(self.failures)} failed; create+read p50 "
            f"{statistics.median(lat) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max "
            f"{lat[-1] * 1000:.1f} ms; server RSS max {rss:.0f} MiB"
        )


class Victim:
    """Another project's create and read, in a thread, until stopped."""

    def __init__(self, server: Server, *, timeout: float = 30.0):
        self.server = server
        self.timeout = timeout
        self.figures = Figures()
        self.created: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.kept = httpx.Client(base_url=server.url, headers=headers(VICTIM_KEY), timeout=timeout)

    def round(self, client: httpx.Client) -> None:
        start = time.perf_counter()
        try:
            made = client.post(
                "/conversations", json={"items": [{"role": "user", "content": "hi"}]}
            )
            if made.status_code != 200:
                self.figures.failures.append(f"create {made.status_code} {made.text[:200]}")
                return
            conversation = made.json()["id"]
            self.created.append(conversation)
            read = client.get(f"/conversations/{conversation}/items")
            if read.status_code != 200 or len(read.json()["data"]) != 1:
                self.figures.failures.append(f"read {read.status_code} {read.text[:200]}")
                return
        except httpx.HTTPError as exc:
            self.figures.failures.append(f"{type(exc).__name__}: {exc}")
            return
        finally:
            self.figures.rounds += 1
        self.figures.latencies.append(time.perf_counter() - start)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            self.figures.rss_kib.append(self.server.rss_kib())
            if n % 2:
                self.round(self.kept)
            else:  # a new connection each time: the admission path
                with httpx.Client(
                    base_url=self.server.url, headers=headers(VICTIM_KEY), timeout=self.timeout
                ) as fresh:
                    self.round(fresh)
            self._stop.wait(0.02)

    @contextlib.contextmanager
    def running(self) -> Iterator[Victim]:
        self.round(self.kept)  # the kept-alive connection is established before the attack
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=self.timeout * 3)

    def wait_rounds(self, count: int, *, limit: float = 60.0) -> None:
        """Until ``count`` more rounds finished (the attack is on meanwhile)."""
        target = self.figures.rounds + count
        deadline = time.monotonic() + limit
        while self.figures.rounds < target and time.monotonic() < deadline:
            time.sleep(0.05)

    def verify(self) -> None:
        """Every conversation the victim was told was created is there, with its item."""
        with httpx.Client(
            base_url=self.server.url, headers=headers(VICTIM_KEY), timeout=self.timeout
        ) as client:
            for conversation in self.created:
                read = client.get(f"/conversations/{conversation}/items")
                assert read.status_code == 200, read.text
                assert [i["content"][0]["text"] for i in read.json()["data"]] == ["hi"]
        self.kept.close()


def sources(count: int) -> list[str]:
    """``count`` loopback addresses other than 127.0.0.1: the attacker's machines."""
    return [f"127.0.0.{2 + n}" for n in range(count)]


def idle_sockets(port: int, count: int, peers: list[str]) -> list[socket.socket]:
    """``count`` connections that send nothing, spread over ``peers``. A connection the
    server refuses at once still counts (its socket is open on this side)."""
    opened = []
    for n in range(count):
        sock = socket.socket()
        sock.bind((peers[n % len(peers)], 0))
        sock.settimeout(10)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        opened.append(sock)
    return opened


def closed_by_server(sock: socket.socket, timeout: float) -> bytes | None:
    """What the server sent before closing ``sock`` (b"" for nothing), or None when it was
    still open after ``timeout`` seconds."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except TimeoutError:
        return None
    except OSError:
        return data
