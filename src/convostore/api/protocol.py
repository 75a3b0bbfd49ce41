"""The HTTP/1.1 connection protocol ``convostore serve`` runs: uvicorn's httptools
protocol plus the guards a server facing real networks needs.

uvicorn bounds the time a kept-alive connection may stay idle between requests, but not
the time a client may take to send a request's line and headers, nor their size, nor the
number of connections one peer holds, nor the time a reader may leave an answer unread: a
client that opens connections and sends nothing, or reads nothing, would hold them for
ever. Here (docs/reliability.md, "Connections"):

* a new connection must send its first byte within ``idle_timeout`` seconds (much shorter
  than the header deadline: a socket that says nothing is the cheapest attack there is);
* a request's line and headers must arrive within ``header_timeout`` seconds of the
  connection opening (or of the request's first byte on a kept-alive connection); a
  slower client gets 408 if it sent anything, and the connection is closed;
* they may take at most ``max_header_bytes``; more gets 431 and a closed connection;
* connections are admitted when they open, never refused later: a request on a
  connection already admitted is always served. A peer (IP address) holding
  ``max_connections_per_peer`` connections gets 503 ``too_many_connections`` on its next
  one. Beyond ``max_connections`` in all, the new connection takes the place of the
  oldest one that has not finished the headers of its first request (silent, or sending
  them a byte at a time: closed, as its deadline would); only when there is none is the
  new one refused with 503;
* an answer the client stops reading (the socket's send buffer full, no byte taken for
  ``send_timeout`` seconds) is abandoned and the connection aborted, which frees its memory;
* what the HTTP parser refuses gets a 400 envelope, not uvicorn's plain text.

The deadlines cost a float per request: each connection notes when its headers are due,
and when, kept alive after an answer, it is closed if no new request began (uvicorn's
``timeout_keep_alive``, which uvicorn times with a timer armed after every answer and
cancelled by the next request's first byte); one timer per server sweeps the connections
a few times per deadline period (a timer armed and cancelled per request cost a few
microseconds of every request).

Every answer made here is the OpenAI error envelope (D17), built by
:func:`convostore.api.render.error` like every other. The body of a request is guarded
in :meth:`convostore.api.request.Request.body` (408 when it is too slow, 413 when too big).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from convostore import errors
from convostore.api import render

log = logging.getLogger("convostore")

MAX_HEADER_BYTES = 64 * 1024
REFUSED_LINGER = 1.0  # seconds a refused connection waits for the request it will not serve
REFUSED_LINGERING_MAX = 1024  # beyond this many waiting, a refused connection closes at once
WARN_EVERY = 10.0  # seconds between two log lines about refused or evicted connections


class ServerGuard:
    """What the connections of one server share: their count per peer, and the
    connections that have not finished their first request's headers (oldest first)."""

    __slots__ = (
        "__weakref__",
        "admitted",
        "evicted",
        "last_warning",
        "lingering",
        "peers",
        "refused",
        "unstarted",
    )

    def __init__(self) -> None:
        self.admitted = 0  # connections open and admitted (refused ones wait outside)
        self.lingering = 0  # refused connections waiting REFUSED_LINGER for their request
        self.peers: dict[str, int] = {}
        # connections admitted whose first request's headers are not complete, in the
        # order they came (a dict keeps insertion order: the first key is the oldest)
        self.unstarted: dict[GuardedHttpToolsProtocol, None] = {}
        self.refused = 0
        self.evicted = 0
        self.last_warning = -WARN_EVERY

    def oldest_unstarted(self) -> GuardedHttpToolsProtocol | None:
        for connection in self.unstarted:
            return connection
        return None

    def note(self, now: float) -> None:
        """One warning line every WARN_EVERY seconds at most, whatever the flood."""
        if now - self.last_warning >= WARN_EVERY and (self.refused or self.evicted):
            log.warning(
                "connections: refused %d, closed %d idle ones to admit new ones "
                "(caps: see docs/reliability.md)",
                self.refused,
                self.evicted,
            )
            self.refused = self.evicted = 0
            self.last_warning = now


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with an idle deadline, a header deadline, a header size
    cap, connection caps (per peer and in all) and a send timeout (see the module
    docstring)."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any] | None = None,
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float = 30.0,
        idle_timeout: float = 5.0,
        send_timeout: float = 30.0,
        max_header_bytes: int = MAX_HEADER_BYTES,
        max_connections: int = 0,
        max_connections_per_peer: int = 0,
    ) -> None:
        super().__init__(config, server_state, app_state or {}, _loop)
        self.header_timeout = header_timeout
        self.idle_timeout = min(idle_timeout, header_timeout)
        self.send_timeout = send_timeout
        self.max_header_bytes = max_header_bytes
        self.max_connections = max_connections
        self.max_connections_per_peer = max_connections_per_peer
        #: When the headers being awaited are due (the loop's clock), None when not waiting.
        self._header_deadline: float | None = None
        #: When the first request's headers are due (the deadline once a byte came).
        self._headers_due = 0.0
        self._awaiting_headers = (
            True  # between a request's first byte (or the connection) and its headers
        )
        self._header_bytes = 0
        self._fed = 0  # the size of the read being parsed
        #: The size of the reads, since the header deadline was armed, that ended before
        #: the headers did (a bound of the headers' size: see on_headers_complete).
        self._unfinished = 0
        self._rejected = False
        self._guard: ServerGuard | None = None
        self._admitted = False
        self._lingering = False
        self._silent = True  # no byte came yet (the idle deadline applies)
        self._peer = ""
        #: While the send buffer is full: since when no byte left it, and its size then.
        self._stalled_since: float | None = None
        self._stalled_size = 0
        #: When a kept-alive connection waiting for its next request's first byte is closed
        #: (uvicorn's ``timeout_keep_alive`` after the last answer), None when not waiting.
        self._keep_alive_deadline: float | None = None

    # -- the header deadline --------------------------------------------------------------

    def _arm(self) -> None:
        self._awaiting_headers = True
        self._header_bytes = self._unfinished = 0
        self._header_deadline = self.loop.time() + self.header_timeout

    def _disarm(self) -> None:
        self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or not self._awaiting_headers:
            return
        if self._rejected:  # refused when it came, and its request never did
            self.transport.close()
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
        if not self.transport.is_closing():
            self.transport.write(_answer(error))
            self.transport.close()

    # -- admission: connection caps -------------------------------------------------------

    def _admit(self) -> None:
        """Count the connection for its peer; refuse it, or make room for it, over a cap."""
        guard = self._guard = _guards.get(self.server_state)
        if guard is None:
            guard = self._guard = _guards[self.server_state] = ServerGuard()
            keep_alive = max(self.timeout_keep_alive / 4, 0.05)  # uvicorn allows 0
            interval = min(1.0, self.idle_timeout / 4, self.header_timeout / 4, keep_alive)
            _sweep(self.loop, self.connections, interval)
        self._peer = peer = self.client[0] if self.client else ""
        count = guard.peers.get(peer, 0)
        if self.max_connections_per_peer and count >= self.max_connections_per_peer:
            self._refuse(
                f"Too many connections from your address: this server process holds at most "
                f"{self.max_connections_per_peer} per client address. Please retry."
            )
            return
        if self.max_connections and guard.admitted >= self.max_connections:
            oldest = guard.oldest_unstarted()
            if oldest is None:
                self._refuse(
                    f"Too many connections: this server process holds at most "
                    f"{self.max_connections}. Please retry."
                )
                return
            guard.unstarted.pop(oldest, None)
            guard.evicted += 1
            oldest.transport.close()  # no request of it began: as its deadline would
            guard.note(self.loop.time())
        guard.unstarted[self] = None
        guard.admitted += 1
        guard.peers[peer] = count + 1
        self._admitted = True

    def _refuse(self, message: str) -> None:
        """503 at once, without waiting for the request: the connection holds nothing but
        its socket, for at most REFUSED_LINGER seconds (its request, if it comes, is read
        and dropped, so the close does not reset the answer away)."""
        self._rejected = True
        assert self._guard is not None
        self._guard.refused += 1
        self._guard.note(self.loop.time())
        error = errors.ServiceUnavailable(message, code="too_many_connections")
        self.transport.write(_answer(error))
        if self._guard.lingering >= REFUSED_LINGERING_MAX:
            self.transport.close()
            return
        self._guard.lingering += 1
        self._lingering = True
        self._header_deadline = self.loop.time() + REFUSED_LINGER

    def _release(self) -> None:
        guard = self._guard
        if guard is None:
            return
        self._guard = None
        guard.unstarted.pop(self, None)
        if self._lingering:
            guard.lingering -= 1
        if not self._admitted:
            return
        guard.admitted -= 1
        count = guard.peers.get(self._peer, 0) - 1
        if count > 0:
            guard.peers[self._peer] = count
        else:
            guard.peers.pop(self._peer, None)

    # -- the send timeout -------------------------------------------------------------------

    def _send_stalled(self, now: float) -> None:
        """The sweep's look at a connection whose send buffer is full."""
        size = self.transport.get_write_buffer_size()
        if size < self._stalled_size:  # the client took some: it is reading, slowly
            self._stalled_since, self._stalled_size = now, size
        elif self._stalled_since is not None and now - self._stalled_since >= self.send_timeout:
            log.warning(
                "aborting a connection from %s: its answer was not read for %g seconds",
                _peer(self.client),
                self.send_timeout,
            )
            self._stalled_since = None
            self.transport.abort()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stalled_since = self.loop.time()
        self._stalled_size = self.transport.get_write_buffer_size()

    def resume_writing(self) -> None:
        self._stalled_since = None
        super().resume_writing()

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
        self._headers_due = self._header_deadline or 0.0
        self._header_deadline = self.loop.time() + self.idle_timeout
        self._admit()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stalled_since = None
        self._release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._keep_alive_deadline = None
        if self._rejected:
            if self._guard is not None and not self.transport.is_closing():
                self.transport.close()  # refused: its request is read, and dropped
            return
        self._fed = len(data)
        if self._awaiting_headers:
            if self._silent:  # its first byte: from the idle deadline to the header deadline
                self._silent = False
                self._header_deadline = self._headers_due
            self._header_bytes += len(data)
        _base.data_received(self, data)
        if self._awaiting_headers:
            self._unfinished += self._fed
            if (
                self._header_bytes > self.max_header_bytes
                and not self._rejected
                and not self.transport.is_closing()
            ):
                self._reject(_headers_too_large(self.max_header_bytes))

    def on_message_begin(self) -> None:
        _base.on_message_begin(self)
        if not self._awaiting_headers:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._awaiting_headers = False
        if self._guard is not None:
            self._guard.unstarted.pop(self, None)  # a request began: never evicted now
        if self._rejected:
            return
        if self._unfinished + self._fed > self.max_header_bytes and (
            len(self.url) + sum(len(n) + len(v) for n, v in self.headers) > self.max_header_bytes
        ):
            # All of them came in one read, before data_received could count them. (They
            # are within the reads since the deadline was armed: counted only when they
            # could be too many, which an ordinary request never is.)
            self._reject(_headers_too_large(self.max_header_bytes))
            return
        _base.on_headers_complete(self)

    def on_body(self, body: bytes) -> None:
        if not self._rejected:
            _base.on_body(self, body)

    def on_message_complete(self) -> None:
        if not self._rejected:
            _base.on_message_complete(self)

    def on_response_complete(self) -> None:
        """uvicorn's, less its keep-alive timer (armed after every answer, cancelled by
        the next request's first byte): a kept-alive connection notes when it is due, and
        the sweep closes it then, as uvicorn's timer would (at most the sweep's interval,
        a quarter of the shortest deadline and at most a second, later)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()  # never armed here; kept for uvicorn's own paths
        self.flow.resume_reading()
        if self.pipeline:  # pipelined requests wait for the answer before theirs
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._keep_alive_deadline = self.loop.time() + self.timeout_keep_alive

    def _kept_alive_too_long(self) -> None:
        self._keep_alive_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def send_whole(send: Any, method: str, status: int, fields: bytes, body: bytes) -> bool:
    """Send a whole answer, ``status`` with the header lines ``fields`` (each ending in
    CRLF, Content-Length among them, names and values already safe) and ``body``, in one
    write on the connection, as uvicorn's ``send`` would for its two ASGI messages
    (``http.response.start`` and a last ``http.response.body``) without building them.

    Returns False, having done nothing, when ``send`` is not the ``send`` of uvicorn's
    httptools request cycle, or when the answer needs what only that path does (a HEAD,
    a paused writer to wait for, uvicorn's access log, an answer already begun): the
    caller then sends the messages.
    """
    cycle = getattr(send, "__self__", None)
    if (
        type(cycle) is not RequestResponseCycle
        or cycle.response_started
        or cycle.disconnected
        or cycle.access_log
        or cycle.flow.write_paused
        or method == "HEAD"
    ):
        return False
    defaults = _default_fields(cycle.default_headers)
    if defaults is None:
        return False
    keep_alive = cycle.keep_alive
    head = b"%s%s%s%s\r\n" % (
        STATUS_LINE[status],
        defaults,
        fields,
        b"" if keep_alive else b"connection: close\r\n",
    )
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    cycle.chunked_encoding = False
    transport: Any = cycle.transport  # OneSend under GuardedHttpToolsProtocol
    if type(transport) is OneSend:
        transport.write_whole(head, body)
    elif len(body) <= OneSend.COALESCE_MAX:
        transport.write(head + body)
    else:
        transport.write(head)
        transport.write(body)
    cycle.response_complete = True
    cycle.message_event.set()
    if not keep_alive:
        transport.close()
    cycle.on_response()
    return True


# uvicorn's default headers (Date, and any --header) as header lines: the server replaces
# the list once a second, so the lines are made again only when it is another list.
_defaults: list[Any] = [None, b""]


def _default_fields(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    if _defaults[0] is headers:
        fields: bytes = _defaults[1]
        return fields
    lines = []
    for name, value in headers:
        name = name.lower()
        if (
            HEADER_RE.search(name)
            or HEADER_VALUE_RE.search(value)
            or name in (b"content-length", b"transfer-encoding", b"connection")
        ):
            return None  # uvicorn's own path refuses it or acts on it
        lines.append(b"%s: %s\r\n" % (name, value))
    _defaults[0], _defaults[1] = headers, b"".join(lines)
    return _defaults[1]  # type: ignore[no-any-return]


_base = HttpToolsProtocol  # its hooks called directly on the hot path (no super object)


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

    def write_whole(self, head: bytes, body: bytes) -> None:
        """A whole answer, its head and body (see :func:`send_whole`)."""
        if self.head is not None:
            self.flush()
        if len(body) <= self.COALESCE_MAX:
            self.real.write(head + body)
        else:
            self.real.write(head)
            self.real.write(body)

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


# Each server's (uvicorn's per-server state) shared connection state; the first
# connection of a server starts its sweep timer.
_guards: weakref.WeakKeyDictionary[Any, ServerGuard] = weakref.WeakKeyDictionary()


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any], interval: float) -> None:
    """Time out the connections whose first byte or headers are overdue, close the
    kept-alive ones idle past uvicorn's keep-alive timeout, abort those whose answer is
    not read, then look again in ``interval``."""
    now = loop.time()
    for connection in list(connections):
        deadline = getattr(connection, "_header_deadline", None)
        if deadline is not None and deadline <= now:
            connection._headers_too_slow()
            continue
        kept = getattr(connection, "_keep_alive_deadline", None)
        if kept is not None and kept <= now:
            connection._kept_alive_too_long()  # its answer may still be leaving: see below
        if getattr(connection, "_stalled_since", None) is not None:
            connection._send_stalled(now)
    if not loop.is_closed():
        loop.call_later(interval, _sweep, loop, connections, interval)


def _answer(error: errors.ApiError) -> bytes:
    """``error`` as a whole HTTP answer that closes its connection."""
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
    return b"".join(head) + b"\r\n" + body


def _headers_too_large(limit: int) -> errors.HeadersTooLarge:
    return errors.HeadersTooLarge(
        f"Request headers too large: the limit is {limit} bytes.",
        code="request_headers_too_large",
    )


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "an unknown peer"
