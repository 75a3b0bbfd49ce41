"""Issue 15: one tenant (or anyone who reaches the port) must never stop the others.

Each attack runs while another project (:class:`~tests.reliability.tenants.Victim`)
creates and reads conversations; the test asserts the property: every victim round
succeeds within ``BOUND`` seconds while the attack runs, the server's memory stays under
a bound, and afterwards everything the victim was told was created is there. The short
forms run by default; ``CONVOSTORE_FULL=1`` runs the sizes of the issue (2,100 idle
sockets with the default caps). Figures: docs/reliability.md, "Tenants".
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.reliability.server import FULL, Server, scale
from tests.reliability.tenants import (
    ATTACKER_KEY,
    KEYS_ENV,
    Victim,
    closed_by_server,
    headers,
    idle_sockets,
    sources,
)

pytestmark = [pytest.mark.reliability, pytest.mark.attack]

BOUND = 2.0  # seconds a victim's create + read may take while an attack runs


def start(tmp_path: Path, *args: str) -> Server:
    return Server(tmp_path / "tenants.db", tmp_path / "server.log", *args, env=KEYS_ENV).start()


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[Server]:
    """Small caps in the short form, the defaults in the full form."""
    args = () if FULL else (
        "--max-connections", "200", "--max-connections-per-peer", "50",
        "--idle-connection-seconds", "1",
    )  # fmt: skip
    server = start(tmp_path, *args)
    try:
        yield server
    finally:
        server.terminate()
    assert "Traceback" not in server.output()


def assert_unharmed(victim: Victim, rss_before_kib: int, *, memory_mib: float = 48) -> None:
    print(victim.figures.summary())
    assert victim.figures.failures == [], victim.figures.failures[:5]
    assert victim.figures.latencies, "the victim was never answered"
    assert max(victim.figures.latencies) < BOUND, victim.figures.summary()
    grown = (max(victim.figures.rss_kib) - rss_before_kib) / 1024
    assert grown < memory_mib, f"resident memory grew by {grown:.0f} MiB"
    victim.verify()


def test_idle_sockets_of_one_address_do_not_stop_others(capped: Server) -> None:
    """M2: many connections that send nothing, from one address: past the per-address
    cap they get 503 at once, the victim keeps its latency, and the idle ones are closed
    by the idle deadline."""
    count = scale(300, 2100)
    per_peer = 256 if FULL else 50
    victim = Victim(capped)
    before = capped.rss_kib()
    with victim.running():
        attack = idle_sockets(capped.port, count, sources(1))
        try:
            victim.wait_rounds(10)
            refused = [closed_by_server(s, 5) for s in attack[per_peer:]]
            assert all(r is not None and b" 503 " in r.split(b"\r\n")[0] for r in refused)
            body = orjson.loads(refused[0].partition(b"\r\n\r\n")[2])  # type: ignore[union-attr]
            assert body["error"]["code"] == "too_many_connections"
            # The admitted ones are closed by the idle deadline, without an answer.
            assert all(closed_by_server(s, 10) == b"" for s in attack[:per_peer])
            victim.wait_rounds(10)
        finally:
            for sock in attack:
                sock.close()
    assert_unharmed(victim, before)


@pytest.mark.parametrize("first_bytes", [b"", b"GET /v1/conversations/x HTTP/1.1\r\n"])
def test_idle_sockets_of_many_addresses_make_room_for_others(
    capped: Server, first_bytes: bytes
) -> None:
    """M2: idle connections from many addresses, more than the server holds in all,
    silent or sending headers they never finish: a new connection takes the place of the
    oldest one whose request has not begun, so the victim is still served."""
    peers = sources(9)
    count = scale(330, 2100)
    victim = Victim(capped)
    before = capped.rss_kib()
    with victim.running():
        attack = idle_sockets(capped.port, count, peers)
        try:
            for sock in attack:
                if first_bytes:
                    with contextlib.suppress(OSError):  # some were already made room for
                        sock.sendall(first_bytes)
            victim.wait_rounds(20)
        finally:
            for sock in attack:
                sock.close()
    assert_unharmed(victim, before)


def test_a_kept_alive_connection_is_served_when_new_ones_are_refused(tmp_path: Path) -> None:
    """M2: at the cap, every connection busy with a request (bodies that never finish), a
    new connection is refused, but a request on a connection already admitted is served
    (it used to get 503)."""
    server = start(tmp_path, "--max-connections", "20", "--max-connections-per-peer", "0")
    try:
        victim = Victim(server)
        victim.round(victim.kept)  # admitted before the attack
        attack = []
        slow_body = (
            f"POST /v1/conversations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {ATTACKER_KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 100\r\n\r\n{{"
        ).encode()
        for peer in sources(19 + 5):
            sock = socket.socket()
            sock.bind((peer, 0))
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(slow_body)  # a request that began: never made room for
            attack.append(sock)
        try:
            over = [closed_by_server(s, 5) for s in attack[19:]]
            assert all(r is not None and b" 503 " in r.split(b"\r\n")[0] for r in over), over
            for _ in range(5):
                victim.round(victim.kept)
            assert victim.figures.failures == []
        finally:
            for sock in attack:
                sock.close()
        victim.verify()
    finally:
        server.terminate()


def test_pages_nobody_reads_hold_little_memory_and_are_dropped(tmp_path: Path) -> None:
    """M3: pages of big items asked for and never read: each is cut at the page budget,
    the unread answers are abandoned after the send timeout (a page larger than the
    kernel's socket buffers waits in the server's memory until then), and the victim is
    served meanwhile."""
    item_mib, items, unread = scale(3, 8), scale(8, 12), 6
    budget = scale(7, 17) << 20  # two items a page
    page = 2 * (item_mib << 20)
    server = start(
        tmp_path, "--page-max-bytes", str(budget), "--send-timeout-seconds", str(scale(2, 30))
    )
    try:
        with httpx.Client(base_url=server.url, headers=headers(ATTACKER_KEY), timeout=60) as c:
            conversation = c.post("/conversations", json={}).json()["id"]
            for _ in range(items):
                made = c.post(
                    f"/conversations/{conversation}/items",
                    json={"items": [{"role": "user", "content": "x" * (item_mib << 20)}]},
                )
                assert made.status_code == 200
        request = (
            f"GET /v1/conversations/{conversation}/items?limit=100 HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {ATTACKER_KEY}\r\n\r\n"
        ).encode()
        victim = Victim(server)
        before = server.rss_kib()
        held = []
        with victim.running():
            for peer in sources(unread):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.bind((peer, 0))
                sock.connect(("127.0.0.1", server.port))
                sock.sendall(request)
                held.append(sock)
            try:
                victim.wait_rounds(20)
                deadline = time.monotonic() + 120
                while server.output().count("its answer was not read") < unread:
                    assert time.monotonic() < deadline, "unread answers were never dropped"
                    time.sleep(0.1)
                for sock in held:  # what was in flight, then the reset: not the page
                    got = b""
                    sock.settimeout(10)
                    with contextlib.suppress(ConnectionResetError):
                        while chunk := sock.recv(1 << 20):
                            got += chunk
                    assert len(got) < page
            finally:
                for sock in held:
                    sock.close()
        # The unread pages, plus the overhead every attack test allows (the background search
        # indexer works through the attacker's text meanwhile).
        assert_unharmed(victim, before, memory_mib=unread * budget / (1 << 20) + 48)
    finally:
        server.terminate()
