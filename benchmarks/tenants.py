"""Issue 15's attacks at full size, with the victim's latency and the server's memory.

    python benchmarks/tenants.py idle        # 2,100 sockets that send nothing
    python benchmarks/tenants.py unread      # 6 pages of 12 x 8 MiB items never read
    python benchmarks/tenants.py idle --src /path/to/other/checkout/src   # e.g. before

Starts ``convostore serve`` (default settings, two projects' keys, SQLite in a temporary
directory) from this checkout or from ``--src``, runs the victim of
tests/reliability/tenants.py (another project's create + read, alternately on a kept-alive
and a new connection) for ``--seconds`` while the attack holds, and prints the victim's
rounds, failures and latency and the server's resident memory. Loopback only; the
attacker connects from 127.0.0.2 and up. Figures: docs/reliability.md, "Tenants".
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reliability.server import Server
from tests.reliability.tenants import (
    ATTACKER_KEY,
    KEYS_ENV,
    Victim,
    headers,
    idle_sockets,
    sources,
)

ITEM_MIB = 8
ITEMS = 12
UNREAD = 6


def idle(server: Server, args: argparse.Namespace) -> list[socket.socket]:
    return idle_sockets(server.port, args.sockets, sources(args.peers))


def unread(server: Server, args: argparse.Namespace) -> list[socket.socket]:
    """The attacker's conversation of big items, then pages of it asked for and not read."""
    with httpx.Client(base_url=server.url, headers=headers(ATTACKER_KEY), timeout=120) as c:
        conversation = c.post("/conversations", json={}).json()["id"]
        text = "x" * (ITEM_MIB << 20)
        for _ in range(ITEMS):
            made = c.post(
                f"/conversations/{conversation}/items",
                json={"items": [{"role": "user", "content": text}]},
            )
            assert made.status_code == 200, made.text[:300]
    request = (
        f"GET /v1/conversations/{conversation}/items?limit=100 HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {ATTACKER_KEY}\r\n\r\n"
    ).encode()
    held = []
    for peer in sources(UNREAD):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind((peer, 0))
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(request)
        held.append(sock)
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("attack", choices=("idle", "unread"))
    parser.add_argument("--src", help="run the server from this src/ (e.g. a checkout of main)")
    parser.add_argument("--sockets", type=int, default=2100)
    parser.add_argument("--peers", type=int, default=1, help="attacker addresses (idle)")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    env = {**KEYS_ENV, "CONVOSTORE_ACCESS_LOG": "false"}
    if args.src:
        env["PYTHONPATH"] = args.src
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "t.db", Path(tmp) / "server.log", env=env).start()
        try:
            quiet = Victim(server)
            with quiet.running():
                time.sleep(3)
            print("no attack:", quiet.figures.summary())
            attack = (idle if args.attack == "idle" else unread)(server, args)
            victim = Victim(server)
            try:
                with victim.running():
                    time.sleep(args.seconds)
                print(f"{args.attack} ({len(attack)} sockets held):", victim.figures.summary())
                for failure in sorted(set(f[:80] for f in victim.figures.failures))[:5]:
                    print("  e.g.", failure)
            finally:
                for sock in attack:
                    sock.close()
            time.sleep(2)
            print(f"server RSS after the attack: {server.rss_kib() / 1024:.0f} MiB")
        finally:
            server.kill()


if __name__ == "__main__":
    main()
