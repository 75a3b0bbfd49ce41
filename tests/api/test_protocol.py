"""The connection protocol's one-send transport (api/protocol.py), alone and over a socket."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

from convostore.api.protocol import OneSend
from tests.support import running_server


class Recording:
    """What a transport was asked to write and whether it was closed."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def one_send(transport: Recording) -> tuple[OneSend, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    return OneSend(transport, loop), loop  # type: ignore[arg-type]


def test_head_and_small_body_leave_in_one_write() -> None:
    real = Recording()
    sender, loop = one_send(real)
    sender.write(HEAD)
    assert real.writes == []
    sender.write(b"{}")
    assert real.writes == [HEAD + b"{}"]
    loop.run_until_complete(asyncio.sleep(0))  # the scheduled flush finds nothing held
    assert real.writes == [HEAD + b"{}"]
    assert sender.get_extra_info("peername") == ("127.0.0.1", 1)
    loop.close()


def test_a_large_body_is_not_copied_behind_the_head() -> None:
    real = Recording()
    sender, loop = one_send(real)
    body = b"x" * (OneSend.COALESCE_MAX + 1)
    sender.write(HEAD)
    sender.write(body)
    assert real.writes == [HEAD, body]
    loop.close()


def test_a_head_without_body_leaves_at_the_end_of_the_loop_turn() -> None:
    real = Recording()
    sender, loop = one_send(real)
    sender.write(HEAD)  # a HEAD answer, a 304, or a stream whose first event comes later
    assert real.writes == []
    loop.run_until_complete(asyncio.sleep(0))
    assert real.writes == [HEAD]
    loop.close()


def test_interim_answers_and_closes_are_never_held() -> None:
    real = Recording()
    sender, loop = one_send(real)
    sender.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client waits for it
    assert real.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    sender.write(HEAD)
    sender.close()
    assert real.writes[-1] == HEAD and real.closed
    loop.close()


def exchange(port: int, request: bytes, until: bytes, *, then: bytes = b"", wait_for: bytes = b"") -> bytes:
    """Send ``request`` (and ``then`` once ``wait_for`` arrived); read until ``until``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        if wait_for:
            while wait_for not in received:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed after {received!r}"
                received += chunk
            sock.sendall(then)
        while not received.endswith(until):
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {received!r}"
            received += chunk
    return received


def test_over_a_socket(tmp_path: Path) -> None:
    with running_server(tmp_path / "p.db") as base:
        port = int(base.split(":")[2].split("/")[0])
        # Keep-alive: a HEAD answer (head only), then a GET on the same connection.
        answer = exchange(
            port,
            b"HEAD /console HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\nGET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n",
            until=b'{"status":"ok"}',
        )
        first, _, rest = answer.partition(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200") and b"content-length" in first.lower()
        assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(b'{"status":"ok"}')
        # Expect: 100-continue: the body is sent only after the interim answer arrives.
        body = json.dumps({"metadata": {"a": "b"}}).encode()
        answer = exchange(
            port,
            b"POST /v1/conversations HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"expect: 100-continue\r\ncontent-length: %d\r\n\r\n" % len(body),
            b"}}",
            wait_for=b"100 Continue\r\n\r\n",
            then=body,
        )
        final = answer.split(b"100 Continue\r\n\r\n", 1)[1]
        assert final.startswith(b"HTTP/1.1 200")
        assert json.loads(final.partition(b"\r\n\r\n")[2])["metadata"] == {"a": "b"}
