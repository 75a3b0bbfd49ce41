"""api/protocol.py subclasses uvicorn's private ``HttpToolsProtocol``; pyproject.toml pins
uvicorn to the versions tested (0.54, 0.55). These tests fail the day a private name it
relies on changes: the constructor's signature, the hooks it overrides, the attributes it
reads, and the ``b"HTTP/1.1 "`` that starts the head of an answer (what ``OneSend``
holds back to send with the body). Then read the new uvicorn, adapt protocol.py, and
widen the pin."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import orjson
import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from convostore.api.protocol import GuardedHttpToolsProtocol, OneSend, send_whole
from tests.api.test_protocol import Recording

# Each hook protocol.py overrides, with the parameters it is called with.
HOOKS = {
    "send_400_response": ["self", "msg"],
    "connection_made": ["self", "transport"],
    "connection_lost": ["self", "exc"],
    "data_received": ["self", "data"],
    "on_message_begin": ["self"],
    "on_headers_complete": ["self"],
    "on_body": ["self", "body"],
    "on_message_complete": ["self"],
    # the send timeout (issue 15): the transport calls these when its buffer fills, drains
    "pause_writing": ["self"],
    "resume_writing": ["self"],
    # uvicorn's, without its keep-alive timer (issue 21): the sweep closes idle connections
    "on_response_complete": ["self"],
}

# What send_whole (issue 21) does in place of RequestResponseCycle.send's two messages,
# and what on_response_complete keeps of uvicorn's: if uvicorn's code no longer says
# these, read it again and adapt protocol.py.
REPLICATED = {
    RequestResponseCycle.send: (
        "self.default_headers + list(",
        "self.response_started = True",
        "self.waiting_for_100_continue = False",
        "if not self.keep_alive and not has_connection_close:",
        'content.append(b"connection: close\\r\\n")',
        "self.response_complete = True",
        "self.message_event.set()",
        "self.transport.close()",
        "self.on_response()",
        "if self.flow.write_paused and not self.disconnected:",
        "if self.access_log:",
    ),
    HttpToolsProtocol.on_response_complete: (
        "self.server_state.total_requests += 1",
        "if self.transport.is_closing():",
        "self._unset_keepalive_if_required()",
        "self.flow.resume_reading()",
        "cycle, app = self.pipeline.pop()",
        "self._start_asgi_task(cycle, app)",
        "self.loop.call_later(",
        "self.timeout_keep_alive, self.timeout_keep_alive_handler",
    ),
}


def test_constructor_signature() -> None:
    parameters = list(inspect.signature(HttpToolsProtocol.__init__).parameters)
    assert parameters == ["self", "config", "server_state", "app_state", "_loop"]


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_overridden_hooks(name: str) -> None:
    hook = getattr(HttpToolsProtocol, name)
    assert list(inspect.signature(hook).parameters) == HOOKS[name]
    assert getattr(GuardedHttpToolsProtocol, name) is not hook  # really overridden


@pytest.mark.parametrize("function", list(REPLICATED), ids=lambda f: f.__qualname__)
def test_replicated_code_is_unchanged(function: Any) -> None:
    source = inspect.getsource(function)
    for line in REPLICATED[function]:
        assert line in source


def test_status_lines_start_the_head() -> None:
    for status in (200, 400, 408, 431, 503):
        assert STATUS_LINE[status].startswith(b"HTTP/1.1 %d " % status)


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = orjson.dumps({"path": scope["path"]})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def connect(
    app: Any = echo_app, keep_alive: float = 5, **guards: Any
) -> tuple[GuardedHttpToolsProtocol, Recording, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    config = Config(
        app=app, lifespan="off", access_log=False, log_config=None, timeout_keep_alive=keep_alive
    )
    config.load()
    protocol = GuardedHttpToolsProtocol(config, ServerState(), {}, loop, **guards)
    transport = Recording()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport, loop


def run_until(loop: asyncio.AbstractEventLoop, done: Any) -> None:
    async def wait() -> None:
        while not done():
            await asyncio.sleep(0)

    loop.run_until_complete(asyncio.wait_for(wait(), 5))


def test_attributes_and_one_write_per_answer() -> None:
    protocol, transport, loop = connect()
    try:
        # what protocol.py reads from uvicorn's protocol
        assert isinstance(protocol.transport, OneSend) and protocol.loop is loop
        assert protocol.client == ("127.0.0.1", 1)
        assert protocol in protocol.connections and protocol.server_state is not None
        assert protocol.cycle is None
        protocol.data_received(b"GET /a HTTP/1.1\r\nHost: x\r\nX-Long: yes\r\n\r\n")
        assert protocol.url == b"/a" and (b"x-long", b"yes") in protocol.headers
        assert protocol.cycle is not None
        run_until(loop, lambda: protocol.cycle.response_complete and transport.writes)
        loop.run_until_complete(asyncio.sleep(0))
        # uvicorn writes the head with b"HTTP/1.1 " first, so OneSend sends it with the body
        assert len(transport.writes) == 1
        head, _, body = transport.writes[0].partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert orjson.loads(body) == {"path": "/a"}
    finally:
        protocol.connection_lost(None)
        loop.close()


def test_parser_refusals_reach_send_400_response() -> None:
    protocol, transport, loop = connect()
    try:
        protocol.data_received(b"NOT HTTP AT ALL\r\n\r\n")
        assert transport.closed
        head, _, body = b"".join(transport.writes).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ")
        assert orjson.loads(body)["error"]["type"] == "invalid_request_error"
    finally:
        loop.close()


# -- send_whole and the keep-alive deadline (issue 21) ------------------------------------

BODY = b'{"id":"msg_1"}'
FIELDS = b"content-type: application/json\r\nx-request-id: r1\r\ncontent-length: %d\r\n" % len(BODY)


async def messages_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"x-request-id", b"r1"),
        (b"content-length", b"%d" % len(BODY)),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


sent_whole: list[bool] = []


async def whole_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    sent = send_whole(send, scope["method"], 200, FIELDS, BODY)
    sent_whole.append(sent)
    if not sent:
        await messages_app(scope, receive, send)


def answer_of(app: Any, request: bytes) -> tuple[list[bytes], bool, GuardedHttpToolsProtocol]:
    protocol, transport, loop = connect(app)
    try:
        protocol.server_state.default_headers = [(b"date", b"Sun, 06 Dec 2026 04:00:00 GMT")]
        protocol.data_received(request)
        run_until(loop, lambda: protocol.cycle.response_complete)
        loop.run_until_complete(asyncio.sleep(0))  # what OneSend held leaves
        return transport.writes, transport.closed, protocol
    finally:
        protocol.connection_lost(None)
        loop.close()


@pytest.mark.parametrize(
    ("request_", "closes"),
    [
        (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", False),
        (b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", True),
        (b"GET /a HTTP/1.0\r\n\r\n", True),
    ],
    ids=["keep-alive", "close", "http/1.0"],
)
def test_send_whole_writes_what_the_messages_would_in_one_write(
    request_: bytes, closes: bool
) -> None:
    sent_whole.clear()
    expected, expected_closed, _ = answer_of(messages_app, request_)
    writes, closed, protocol = answer_of(whole_app, request_)
    assert sent_whole == [True]
    assert writes == [b"".join(expected)] and len(writes) == 1
    assert closed == expected_closed == closes
    assert (b"\r\nconnection: close\r\n" in writes[0]) == closes
    assert b"\r\ndate: Sun, 06 Dec 2026" in writes[0]
    assert protocol.server_state.total_requests == 1


def test_send_whole_leaves_head_requests_to_uvicorn() -> None:
    sent_whole.clear()
    writes, _, _ = answer_of(whole_app, b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sent_whole == [False]
    assert writes[0].endswith(b"\r\n\r\n")  # the head only


def test_send_whole_is_only_for_uvicorns_httptools_send() -> None:
    async def other_send(message: Any) -> None:
        raise AssertionError("not called")

    assert send_whole(other_send, "GET", 200, FIELDS, BODY) is False


def test_an_idle_kept_alive_connection_is_closed_by_the_sweep() -> None:
    protocol, transport, loop = connect(keep_alive=0.2)
    try:
        protocol.data_received(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        run_until(loop, lambda: protocol.cycle.response_complete)
        assert protocol.timeout_keep_alive_task is None  # no timer armed per answer
        assert protocol._keep_alive_deadline is not None and not transport.closed
        protocol.data_received(b"GET /b HTTP/1.1\r\n")  # the next request began: not idle
        assert protocol._keep_alive_deadline is None
        protocol.data_received(b"Host: x\r\n\r\n")
        run_until(loop, lambda: protocol.cycle.response_complete)
        run_until(loop, lambda: transport.closed)  # then idle past 0.2 s: closed
        assert len(transport.writes) == 2
    finally:
        protocol.connection_lost(None)
        loop.close()


def test_headers_over_the_cap_split_across_reads_after_a_kept_alive_answer() -> None:
    protocol, transport, loop = connect(max_header_bytes=1000)
    try:
        protocol.data_received(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        run_until(loop, lambda: protocol.cycle.response_complete)
        # the next request's headers begin in one read (0 counted before it: the request
        # began inside it) and end in a small one: 1,400 bytes in all
        protocol.data_received(b"GET /b HTTP/1.1\r\nX-A: " + b"a" * 1300)
        assert not transport.closed  # the cap is checked when the headers are complete
        protocol.data_received(b"a" * 100 + b"\r\nHost: x\r\n\r\n")
        assert transport.closed
        assert transport.writes[-1].startswith(b"HTTP/1.1 431 ")
    finally:
        protocol.connection_lost(None)
        loop.close()
