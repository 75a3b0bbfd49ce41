"""The HTTP/1.1 connection protocol ``convostore serve`` runs: uvicorn's httptools
protocol plus the guards a server facing real networks needs.

uvicorn bounds the time a kept-alive connection may stay idle between requests, but not
the time a client may take to send a request's line and headers, nor their size: a
client that opens a connection and sends nothing, or one header byte a minute, would
hold it for ever, and enough of them exhaust the process's file descriptors. Here:

* a request's line and headers must arrive within ``header_timeout`` seconds of the
  connection opening (or of the request's first byte on a kept-alive connection); a
  slower client gets 408 if it sent anything, and the connection is closed;
* they may take at most ``max_header_bytes``; more gets 431 and a closed connection;
* beyond ``max_connections`` open connections, a request gets 503 with ``Retry-After``
  and its connection is closed, instead of the process running out of descriptors;
* what the HTTP parser refuses gets a 400 envelope, not uvicorn's plain text.

The header deadline costs a float per request: each connection notes when its headers are
due, and one timer per server sweeps the connections a few times per deadline period
(a timer armed and cancelled per request cost a few microseconds of every request).

Every answer made here is the OpenAI error envelope (D17), built by
:func:`convostore.api.render.error` like every other. The body of a request is guarded
in :meth:`convostore.api.request.Request.body` (408 when it is too slow, 413 when too big).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from convostore import errors
from convostore.api import render

log = logging.getLogger("convostore")

MAX_HEADER_BYTES = 64 * 1024


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with a header deadline, a header size cap and a
    connection cap (see the module docstring)."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any] | None = None,
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float = 30.0,
        max_header_bytes: int = MAX_HEADER_BYTES,
        max_connections: int = 0,
    ) -> None:
        super().__init__(config, server_state, app_state or {}, _loop)
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.max_connections = max_connections
        #: When the headers being awaited are due (the loop's clock), None when not waiting.
        self._header_deadline: float | None = None
        self._awaiting_headers = (
            True  # between a request's first byte (or the connection) and its headers
        )
        self._header_bytes = 0
        self._rejected = False

    # -- the header deadline --------------------------------------------------------------

    def _arm(self) -> None:
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_deadline = self.loop.time() + self.header_timeout

    def _disarm(self) -> None:
        self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or not self._awaiting_headers:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request waits behind one in progress: give it another period.
            self._header_deadline = self.loop.time() + self.header_timeout
            return
        if self._header_bytes == 0:
            self.transport.close()  # an idle connection: close it like a kept-alive one
            return
        self._reject(
            errors.RequestTimeout(
                f"Request timeout: the request headers did not arrive within "
                f"{self.header_timeout:g} seconds.",
                code="request_timeout",
            )
        )

    def _reject(self, error: errors.ApiError) -> None:
        """Answer ``error`` and close the connection (no request is running on it)."""
        self._rejected = True
        self._disarm()
        log.warning("closing a connection from %s: %s", _peer(self.client), error.message)
        body = render.error(error)
        head = [STATUS_LINE[error.status]]
        head.extend(
            name + b": " + value + b"\r\n"
            for name, value in (
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(h for h in error.headers if h[0] != b"connection"),
                (b"connection", b"close"),
            )
        )
        if not self.transport.is_closing():
            self.transport.write(b"".join(head) + b"\r\n" + body)
            self.transport.close()

    # -- uvicorn's callbacks ----------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """What the HTTP parser refuses (a malformed request line or header, both
        Content-Length and chunked, …): the envelope instead of uvicorn's plain text."""
        self._reject(errors.InvalidRequest(msg))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # The request cycles write through this: a response's head and body leave together.
        self.transport = OneSend(transport, self.loop)  # type: ignore[assignment]
        self._arm()
        if self.server_state not in _sweeping:
            _sweeping[self.server_state] = True
            _sweep(self.loop, self.connections, min(1.0, self.header_timeout / 4))

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        if self._awaiting_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if (
            self._awaiting_headers
            and self._header_bytes > self.max_header_bytes
            and not self._rejected
            and not self.transport.is_closing()
        ):
            self._reject(_headers_too_large(self.max_header_bytes))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._awaiting_headers:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._awaiting_headers = False
        if self._rejected:
            return
        if len(self.url) + sum(len(n) + len(v) for n, v in self.headers) > self.max_header_bytes:
            # All of them came in one read, before data_received could count them.
            self._reject(_headers_too_large(self.max_header_bytes))
            return
        if self.max_connections and len(self.connections) > self.max_connections:
            self._reject(
                errors.ServiceUnavailable(
                    f"Too many connections: this server process holds at most "
                    f"{self.max_connections}. Please retry.",
                    code="too_many_connections",
                )
            )
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._rejected:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._rejected:
            super().on_message_complete()


class OneSend:
    """A connection's transport that sends a response's head with its first body bytes.

    uvicorn writes a response's status line and headers, then its body, in two calls,
    and each is a ``send`` system call on an idle socket: a small JSON answer paid two.
    Here the head is held until the next write (a small body is appended to it; a large
    one follows it), and never beyond the current turn of the event loop: a callback
    scheduled when it is held sends it then, so a streamed answer whose first event
    comes later, or an answer without a body (HEAD, 304), is not delayed. Everything
    else is the real transport's.
    """

    __slots__ = ("head", "loop", "real")

    COALESCE_MAX = 64 * 1024  # larger bodies are not copied behind the head

    def __init__(self, real: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self.real = real
        self.loop = loop
        self.head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self.head
        if head is not None:
            self.head = None
            if len(data) <= self.COALESCE_MAX:
                self.real.write(head + data)
                return
            self.real.write(head)
        elif data[:9] == b"HTTP/1.1 " and data[9:10] != b"1":
            # The head of a final answer (not "100 Continue", which the client awaits).
            self.head = data
            self.loop.call_soon(self.flush)
            return
        self.real.write(data)

    def flush(self) -> None:
        head = self.head
        if head is not None:
            self.head = None
            if not self.real.is_closing():
                self.real.write(head)

    def close(self) -> None:
        self.flush()
        self.real.close()

    def is_closing(self) -> bool:
        return self.real.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


# The servers (uvicorn's per-server state) whose connections a sweep timer watches.
_sweeping: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any], interval: float) -> None:
    """Time out the connections whose headers are overdue, then look again in ``interval``."""
    now = loop.time()
    for connection in list(connections):
        deadline = getattr(connection, "_header_deadline", None)
        if deadline is not None and deadline <= now:
            connection._headers_too_slow()
    if not loop.is_closed():
        loop.call_later(interval, _sweep, loop, connections, interval)


def _headers_too_large(limit: int) -> errors.HeadersTooLarge:
    return errors.HeadersTooLarge(
        f"Request headers too large: the limit is {limit} bytes.",
        code="request_headers_too_large",
    )


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "an unknown peer"
