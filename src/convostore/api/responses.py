"""Handler of ``POST /v1/responses``: parse, call the service, serialize (JSON, or the
event stream as Server-Sent Events)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

from convostore import errors
from convostore.api import render
from convostore.api.owner import owner_of
from convostore.api.params import include_mask, integer, list_query
from convostore.api.request import Request
from convostore.api.streaming import StreamingBody, unless_disconnected
from convostore.service import Services
from convostore.service.responses import Completed, EventStream
from convostore.service.responses.events import Follower
from convostore.service.responses.native_stream import NativeEventStream


async def create(services: Services, request: Request) -> bytes | StreamingBody:
    """Create a model response: the model server's answer to the conversation's history
    and this input, written back to the conversation (docs/responses.md)."""
    body = await request.json()
    outcome = await unless_disconnected(
        request, services.responses.create(owner_of(request), body), orphan=_discard
    )
    if isinstance(outcome, Completed):
        return orjson.dumps(outcome.response)
    if isinstance(outcome, Follower):  # background: the events its run records
        return StreamingBody(outcome.events(), outcome.aclose)
    return StreamingBody(_sse(outcome.events()), outcome.aclose)


async def compact(services: Services, request: Request) -> bytes:
    """Compact a history into one compaction item written by the model server (issue 18,
    docs/responses.md "Truncation and compaction")."""
    body = await request.json()
    return orjson.dumps(await services.responses.compact(owner_of(request), body))


async def _discard(outcome: Completed | EventStream | NativeEventStream | Follower) -> None:
    if not isinstance(outcome, Completed):
        await outcome.aclose()


async def _sse(events: AsyncGenerator[dict[str, Any], None]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
    finally:
        await events.aclose()


async def retrieve(services: Services, request: Request) -> bytes | StreamingBody:
    """A stored response, its output items as ``include`` asks (issue 17); with
    ``stream=true``, its events after ``starting_after`` (a streamed background one)."""
    if _flag(request, "stream"):
        after = _sequence(request.query_value("starting_after"))
        follower = await services.stored_responses.stream(
            owner_of(request), request.params[0], after
        )
        return StreamingBody(follower.events(), follower.aclose)
    response = await services.stored_responses.retrieve(
        owner_of(request), request.params[0], include_mask(request)
    )
    return orjson.dumps(response)


def _flag(request: Request, name: str) -> bool:
    value = request.query_value(name)
    if value is None or value in ("false", "False", "0", ""):
        return False
    if value in ("true", "True", "1"):
        return True
    raise errors.InvalidRequest(
        f"Invalid value for '{name}': expected a boolean, but got {value!r} instead.",
        param=name,
        code="invalid_type",
    )


def _sequence(value: str | None) -> int:
    """``starting_after``: a sequence number (absent: from the first event)."""
    if value is None or value == "":
        return -1
    return integer("starting_after", value, minimum=0, maximum=None)


async def delete(services: Services, request: Request) -> bytes:
    response_id = request.params[0]
    await services.stored_responses.delete(owner_of(request), response_id)
    return b'{"id":' + orjson.dumps(response_id) + b',"object":"response","deleted":true}'


async def input_items(services: Services, request: Request) -> bytes:
    """The input items of a stored response, a page (like a conversation's items)."""
    query = list_query(request)
    page = await services.stored_responses.input_items(owner_of(request), request.params[0], query)
    return render.item_list(page.items, query.include, page.has_more)


async def cancel(services: Services, request: Request) -> bytes:
    """Cancel a background response (issue 17)."""
    response = await services.stored_responses.cancel(owner_of(request), request.params[0])
    return orjson.dumps(response)
