"""Graceful shutdown: SIGTERM stops accepting, lets requests in flight finish within
``--shutdown-grace-seconds``, then closes the database cleanly.

A request is held in flight by sending its headers with ``Expect: 100-continue``, then,
once the app reads its body (uvicorn answers ``100 Continue`` then), half the body, and
the rest after the signal. The tests wait on what the server shows (the interim answer,
refused connections, its "Shutting down" log lines), never for a fixed time; exits are
waited for with generous deadlines (they are not timed).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import time
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from tests.reliability.server import Server

pytestmark = pytest.mark.reliability

# uvicorn re-raises the signal once it has shut down, so a clean exit is "killed by SIGTERM".
CLEAN_EXIT = (0, -signal.SIGTERM)


def start_request(port: int, conversation_id: str, text: str) -> tuple[socket.socket, bytes]:
    """An append in flight: the app is reading its body, of which half was sent. Returns
    the socket and the rest of the body."""
    body = orjson.dumps({"items": [{"role": "user", "content": text}]})
    head = (
        f"POST /v1/conversations/{conversation_id}/items HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head)
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):  # sent when the app first reads the body
        chunk = sock.recv(1)
        assert chunk, f"connection closed after {interim!r}"
        interim += chunk
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    half = len(body) // 2
    sock.sendall(body[:half])
    return sock, body[half:]


def wait_for_log(server: Server, text: str, count: int = 1, timeout: float = 30) -> None:
    """Until the server's output holds ``text`` ``count`` times (polled, not slept on)."""
    deadline = time.monotonic() + timeout
    while server.output().count(text) < count:
        assert time.monotonic() < deadline, f"no {count} x {text!r} in:\n{server.output()}"
        time.sleep(0.02)


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(head.split(b" ", 2)[1]), rest


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def wait_exit(server: Server, timeout: float = 60) -> int:
    assert server.process is not None
    code = server.process.wait(timeout=timeout)
    server.process = None
    return code


def new_conversation(server: Server) -> str:
    response = httpx.post(server.url + "/conversations", json={}, timeout=10)
    assert response.status_code == 200
    conversation_id: str = response.json()["id"]
    return conversation_id


def test_sigterm_finishes_requests_in_flight_and_closes_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "shutdown.db"
    server = Server(path, tmp_path / "server.log", "--shutdown-grace-seconds", "20").start()
    try:
        cid = new_conversation(server)
        sock, rest = start_request(server.port, cid, "in flight")
        assert server.process is not None
        server.process.terminate()  # SIGTERM
        deadline = time.monotonic() + 20
        while not refuses_connections(server.port):  # stops accepting
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.05)
        assert server.process.poll() is None, "exited with a request in flight"
        sock.sendall(rest)
        status, body = read_response(sock)
        sock.close()
        assert status == 200, body
        assert orjson.loads(body)["data"][0]["content"][0]["text"] == "in flight"
        assert wait_exit(server) in CLEAN_EXIT
    finally:
        server.kill()
    log = server.output()
    assert "Traceback" not in log
    # Closed cleanly: the last connection checkpointed and removed the WAL.
    wal = tmp_path / "shutdown.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("SELECT count(*) FROM items").fetchone() == (1,)
    db.close()


def test_grace_period_bounds_the_wait(tmp_path: Path) -> None:
    """A request that never finishes is cut after the grace period; the database is
    still closed cleanly, and the process exits."""
    path = tmp_path / "grace.db"
    server = Server(
        path, tmp_path / "server.log",
        "--shutdown-grace-seconds", "1", "--request-timeout-seconds", "600",
    ).start()  # fmt: skip
    try:
        cid = new_conversation(server)
        sock, _ = start_request(server.port, cid, "never finished")
        assert server.process is not None
        server.process.terminate()
        assert wait_exit(server, timeout=30) in CLEAN_EXIT
        status, body = read_response(sock)  # cut with the envelope, not a plain 500
        sock.close()
        assert status == 503
        assert orjson.loads(body)["error"]["type"] == "server_error"
    finally:
        server.kill()
    log = server.output()
    assert "timeout graceful shutdown exceeded" in log
    assert "Traceback" not in log
    wal = tmp_path / "grace.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM items").fetchone() == (0,)
    db.close()


def test_sigterm_with_workers(tmp_path: Path) -> None:
    """``--workers 2``: the supervisor passes SIGTERM on; the request in flight finishes."""
    path = tmp_path / "workers.db"
    server = Server(path, tmp_path / "server.log", "--workers", "2").start()
    try:
        cid = new_conversation(server)
        sock, rest = start_request(server.port, cid, "in flight")
        assert server.process is not None
        server.process.terminate()
        wait_for_log(server, "Shutting down", count=2)  # both workers got the signal
        sock.sendall(rest)
        status, body = read_response(sock)
        sock.close()
        assert status == 200, body
        assert wait_exit(server) in CLEAN_EXIT
    finally:
        server.kill()
    assert "Traceback" not in server.output()
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM items").fetchone() == (1,)
    db.close()


def test_sigterm_postgres_closes_the_pool(pg_url: str, tmp_path: Path) -> None:
    server = Server(pg_url, tmp_path / "server.log", "--pool-min-size", "3").start()
    try:
        cid = new_conversation(server)
        sock, rest = start_request(server.port, cid, "in flight")
        assert server.process is not None
        server.process.terminate()
        wait_for_log(server, "Shutting down")
        sock.sendall(rest)
        status, _ = read_response(sock)
        sock.close()
        assert status == 200
        assert wait_exit(server) in CLEAN_EXIT
    finally:
        server.kill()
    assert "Traceback" not in server.output()

    async def check() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            left = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'convostore'"
            )
            assert left == 0, "the server left connections open"
            assert await conn.fetchval("SELECT count(*) FROM items") == 1
        finally:
            await conn.close()

    asyncio.run(check())
