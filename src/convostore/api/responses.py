"""Handler of ``POST /v1/responses``: parse, call the service, serialize (JSON, or the
event stream as Server-Sent Events)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

from convostore.api.owner import owner_of
from convostore.api.request import Request
from convostore.api.streaming import StreamingBody, unless_disconnected
from convostore.service import Services
from convostore.service.responses import Completed, EventStream


async def create(services: Services, request: Request) -> bytes | StreamingBody:
    """Create a model response: the model server's answer to the conversation's history
    and this input, written back to the conversation (docs/responses.md)."""
    body = await request.json()
    outcome = await unless_disconnected(
        request, services.responses.create(owner_of(request), body), orphan=_discard
    )
    if isinstance(outcome, Completed):
        return orjson.dumps(outcome.response)
    return StreamingBody(_sse(outcome.events()), outcome.aclose)


async def _discard(outcome: Completed | EventStream) -> None:
    if isinstance(outcome, EventStream):
        await outcome.aclose()


async def _sse(events: AsyncGenerator[dict[str, Any], None]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
    finally:
        await events.aclose()
