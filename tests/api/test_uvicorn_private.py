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
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from convostore.api.protocol import GuardedHttpToolsProtocol, OneSend
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
}


def test_constructor_signature() -> None:
    parameters = list(inspect.signature(HttpToolsProtocol.__init__).parameters)
    assert parameters == ["self", "config", "server_state", "app_state", "_loop"]


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_overridden_hooks(name: str) -> None:
    hook = getattr(HttpToolsProtocol, name)
    assert list(inspect.signature(hook).parameters) == HOOKS[name]
    assert getattr(GuardedHttpToolsProtocol, name) is not hook  # really overridden


def test_status_lines_start_the_head() -> None:
    for status in (200, 400, 408, 431, 503):
        assert STATUS_LINE[status].startswith(b"HTTP/1.1 %d " % status)


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = orjson.dumps({"path": scope["path"]})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def connect(**guards: Any) -> tuple[GuardedHttpToolsProtocol, Recording, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    config = Config(app=echo_app, lifespan="off", access_log=False, log_config=None)
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
