"""Answers sent in pieces (Server-Sent Events), and requests whose client may leave.

A handler may return a :class:`StreamingBody` instead of bytes; ``ConvoStore.answer`` then
sends its chunks as they come (chunked transfer encoding, no content-length) through
:func:`send_streaming`, which also listens for the client going away and then stops the
producer. Whatever happens, the body's ``close`` runs once at the end: the producer's
resources (an upstream connection, a conversation's lease) are freed even when not one
chunk was read. Whole answers (JSON bytes, or a :class:`~convostore.api.answers.Response`)
never take this path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from convostore.api.request import ClientDisconnected, Request

log = logging.getLogger("convostore")

T = TypeVar("T")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass events on as they come
]


@dataclass(slots=True)
class StreamingBody:
    chunks: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]
    headers: list[tuple[bytes, bytes]] = field(default_factory=lambda: list(SSE_HEADERS))
    status: int = 200


async def _disconnected(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _pump(body: StreamingBody, send: Any) -> None:
    try:
        async for chunk in body.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except Exception:
        # The producer reports its own failures in the stream; this is a bug. End the
        # body cleanly rather than leave the client waiting.
        log.exception("a streamed answer failed")
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def send_streaming(body: StreamingBody, receive: Any, send: Any) -> None:
    try:
        await send({"type": "http.response.start", "status": body.status, "headers": body.headers})
        pump = asyncio.ensure_future(_pump(body, send))
        watch = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                task.cancel()
            await asyncio.gather(pump, watch, return_exceptions=True)
    finally:
        closing = getattr(body.chunks, "aclose", None)
        if closing is not None:
            with contextlib.suppress(Exception):
                await closing()
        await body.close()


async def unless_disconnected(
    request: Request,
    work: Awaitable[T],
    orphan: Callable[[T], Awaitable[None]] | None = None,
) -> T:
    """``await work``, unless the client goes away first: then ``work`` is cancelled
    (a result it still produced is handed to ``orphan``) and ClientDisconnected raised."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        watch.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)
        raise
    watch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watch
    if task.done():
        return task.result()
    task.cancel()
    try:
        result = await task
    except (asyncio.CancelledError, Exception):
        pass
    else:
        if orphan is not None:
            await orphan(result)
    raise ClientDisconnected()
