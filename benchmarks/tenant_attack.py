"""One tenant attacks, another is measured (issue 15, rows H1 and M1).

Starts ``convostore serve`` on a scratch database with two projects' keys, then:

* ``--attack parts``: the attacker stores one message with ``--parts`` small
  ``input_text`` parts (H1: the search indexer used to hold SQLite's write lock for
  minutes on it, and every other write waited on the event loop thread);
* ``--attack search``: the victim holds ``--victim-items`` items; ``--attackers``
  clients of a project with no items run 16-prefix searches (M1: SQLite walked every
  project's matches), and the attacker times a word frequent in the victim's project
  against an absent one (the timing oracle).

Meanwhile one victim client creates a conversation with an item and reads it back, in a
loop, for ``--seconds``. Prints the victim's latency (p50, p99, max), its failures, the
server's peak RSS, and, at the end, that every acknowledged victim write is there.

    python benchmarks/tenant_attack.py --attack parts --parts 20000
    python benchmarks/tenant_attack.py --attack search --victim-items 20000
    python benchmarks/tenant_attack.py --backend postgres ...
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability.server import group_pids, rss_kib  # noqa: E402
from tests.support import free_port  # noqa: E402

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


def key() -> str:
    return "sk-cs-" + secrets.token_urlsafe(32)


def start(db: str, keys: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, CONVOSTORE_API_KEYS=keys)
    command = [sys.executable, "-m", "convostore", "serve", "--db", db, "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/conversations/x", timeout=2)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(log.read_text())


class Victim(threading.Thread):
    def __init__(self, url: str, secret: str, seconds: float):
        super().__init__(daemon=True)
        self.client = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {secret}"}, timeout=60
        )
        self.seconds = seconds
        self.latencies: list[float] = []
        self.failures: dict[str, int] = {}
        self.acknowledged: list[str] = []

    def run(self) -> None:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            for step in ("create", "read"):
                started = time.perf_counter()
                try:
                    if step == "create":
                        r = self.client.post(
                            "/conversations",
                            json={"items": [{"role": "user", "content": "victim text"}]},
                        )
                        if r.status_code == 200:
                            self.acknowledged.append(r.json()["id"])
                    else:
                        if not self.acknowledged:
                            continue
                        r = self.client.get(f"/conversations/{self.acknowledged[-1]}/items")
                    status = str(r.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.latencies.append(time.perf_counter() - started)
                if status != "200":
                    self.failures[status] = self.failures.get(status, 0) + 1


def seed(client: httpx.Client, items: int) -> None:
    batch = 20
    for n in range(0, items, batch):
        content = [
            {
                "type": "message",
                "role": "user",
                "content": " ".join(WORDS[(n + m + k) % len(WORDS)] + str(k) for k in range(8)),
            }
            for m in range(batch)
        ]
        r = client.post("/conversations", json={"items": content})
        r.raise_for_status()


def attack_parts(client: httpx.Client, parts: int) -> str:
    content = [{"type": "input_text", "text": f"w{n}"} for n in range(parts)]
    r = client.post(
        "/conversations", json={"items": [{"role": "user", "content": content}]}, timeout=600
    )
    return f"attack POST: {r.status_code} in {r.elapsed.total_seconds():.2f} s"


def attack_search(client: httpx.Client, stop: threading.Event, times: list[float]) -> None:
    # 16 prefixes of the victim's words (3 letters or more: the shortest allowed now).
    q = " ".join(f"{w[:3]}* {w[:4]}*" for w in WORDS)
    while not stop.is_set():
        started = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):
            client.get("/conversations/search", params={"q": q, "limit": 100})
        times.append(time.perf_counter() - started)


def oracle(client: httpx.Client) -> str:
    samples: dict[str, list[float]] = {"alpha1": [], "zulu9": []}
    for n in range(48):  # alternated; the first 8 warm the server's connections up
        q = "alpha1" if n % 2 else "zulu9"
        started = time.perf_counter()
        client.get("/conversations/search", params={"q": q})
        if n >= 8:
            samples[q].append(time.perf_counter() - started)
    frequent, absent = (statistics.median(samples[q]) * 1000 for q in ("alpha1", "zulu9"))
    return f"oracle: frequent word {frequent:.1f} ms, absent word {absent:.1f} ms (medians of 20)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attack", choices=["parts", "search"], required=True)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--parts", type=int, default=20_000)
    parser.add_argument("--victim-items", type=int, default=20_000)
    parser.add_argument("--attackers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tenant-attack-"))
    db = str(tmp / "attack.db")
    if args.backend == "postgres":
        import asyncio

        import asyncpg

        name = "attack_" + secrets.token_hex(4)

        async def create() -> None:
            conn = await asyncpg.connect(args.pg_url)
            await conn.execute(f"CREATE DATABASE {name}")
            await conn.close()

        asyncio.run(create())
        db = args.pg_url.rsplit("/", 1)[0] + "/" + name
    attacker, victim = key(), key()
    port = free_port()
    process = start(db, f"attacker:{attacker},victim:{victim}", port, tmp / "server.log")
    url = f"http://127.0.0.1:{port}/v1"
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], sum(rss_kib(p) for p in group_pids(process.pid)))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    attack_client = httpx.Client(
        base_url=url, headers={"authorization": f"Bearer {attacker}"}, timeout=600
    )
    notes: list[str] = []
    try:
        victim_client = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {victim}"}, timeout=600
        )
        if args.attack == "search":
            seed(victim_client, args.victim_items)
        idle_rss = sum(rss_kib(p) for p in group_pids(process.pid))
        sampler.start()
        measured = Victim(url, victim, args.seconds)
        measured.start()
        attackers: list[threading.Thread] = []
        search_times: list[float] = []
        if args.attack == "parts":
            notes.append(attack_parts(attack_client, args.parts))
        else:
            notes.append(oracle(attack_client))
            for _ in range(args.attackers):
                client = httpx.Client(
                    base_url=url, headers={"authorization": f"Bearer {attacker}"}, timeout=600
                )
                thread = threading.Thread(
                    target=attack_search, args=(client, stop, search_times), daemon=True
                )
                thread.start()
                attackers.append(thread)
        measured.join()
        stop.set()
        for thread in attackers:
            thread.join()
        if search_times:
            notes.append(
                f"attacker searches: {len(search_times)}, median"
                f" {statistics.median(search_times) * 1000:.1f} ms"
            )
        lost = 0
        for conversation_id in measured.acknowledged:
            r = victim_client.get(f"/conversations/{conversation_id}/items")
            if r.status_code != 200 or not r.json()["data"]:
                lost += 1
        lat = sorted(measured.latencies)
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
        print(f"attack={args.attack} backend={args.backend} parts={args.parts}"
              f" victim_items={args.victim_items}")  # fmt: skip
        for note in notes:
            print(note)
        print(
            f"victim: {len(lat)} requests in {args.seconds:.0f} s,"
            f" p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {lat[-1] * 1000:.1f} ms,"
            f" failures {measured.failures}, acknowledged {len(measured.acknowledged)}, lost {lost}"
        )
        print(f"server RSS: idle {idle_rss / 1024:.0f} MiB, peak {peak[0] / 1024:.0f} MiB")
    finally:
        stop.set()
        process.kill()
        process.wait()
        if args.backend == "postgres":

            async def drop() -> None:
                conn = await asyncpg.connect(args.pg_url)
                await conn.execute(f"DROP DATABASE IF EXISTS {name}")
                await conn.close()

            asyncio.run(drop())


if __name__ == "__main__":
    main()
