"""A model server's own ``/v1/responses`` as the upstream (``--upstream-api responses``,
issue 17): for servers that speak the Responses API (vLLM, SGLang/SMG, ogx,
agentic-api), the turn's history and input, as :mod:`.context` chooses them for every
upstream (truncation and compaction included), are sent as ``input`` items, unchanged
(their reasoning items and tool calls included), with ``store: false``: convostore keeps the
state, the model server keeps nothing. The output items come back as the model server
made them and are stored through the item registry like any output. :func:`respond`
runs such a turn: answered at once, streamed (:mod:`.native_stream`) or in the
background (:mod:`.background`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from convostore import errors
from convostore.items import include as includes
from convostore.service.responses import background, compaction, events, history, resource
from convostore.service.responses.background_stream import BackgroundNativeStream, Recording
from convostore.service.responses.messages import Entry
from convostore.service.responses.native_stream import NativeEventStream
from convostore.service.responses.request import ResponseRequest
from convostore.service.responses.resource import Completed
from convostore.service.responses.turn_context import TurnContext
from convostore.service.responses.upstream_errors import calling, upstream_error
from convostore.service.responses.visibility import visible
from convostore.service.responses.writeback import store_turn
from convostore.store.base import StoredItem

if TYPE_CHECKING:
    from convostore.service.responses import Responses


def body(request: ResponseRequest, turn: Sequence[Entry], model: str) -> dict[str, Any]:
    """The request to the model server's ``POST /responses``: the items :mod:`.context`
    chose, as they are stored, but a compaction convostore made given as the user
    message that holds its summary (no model server can read it as a compaction)."""
    out: dict[str, Any] = {
        "model": model,
        "input": [
            compaction.as_input_item(entry.item) if compaction.is_ours(entry.item) else entry.item
            for entry in turn
        ],
        "store": False,
    }
    if request.instructions is not None:
        out["instructions"] = request.instructions
    if request.tools:
        out["tools"] = request.tools
        out["tool_choice"] = request.tool_choice
        out["parallel_tool_calls"] = request.parallel_tool_calls
    for key in ("temperature", "top_p", "max_output_tokens", "max_tool_calls", "top_logprobs"):
        value = getattr(request, key)
        if value is not None:
            out[key] = value
    out["text"] = request.text
    reasoning = {
        key: value
        for key, value in (("effort", request.effort), ("summary", request.summary))
        if value is not None
    }
    if reasoning:
        out["reasoning"] = reasoning
    if request.include:
        out["include"] = [name for name, bit in includes.BIT.items() if request.include & bit]
    out.update(request.forwarded)
    return out


async def respond(
    service: Responses, turn: TurnContext
) -> Completed | NativeEventStream | events.Follower:
    """A turn through the model server's own ``/responses`` (:func:`body`,
    :mod:`.native_stream`)."""
    owner, req, identity = turn.owner, turn.req, turn.identity
    inputs, lease = turn.inputs, turn.lease
    chosen = await service.context.turn(owner, req, inputs)
    history.check_tool_outputs(chosen.entries)
    # a compaction made for this turn is the response's first output item
    lead = [] if chosen.compacted is None else [chosen.compacted]
    body_out = body(req, chosen.entries, service.config.model_for(req.model))
    assert service.upstream is not None
    if req.stream:
        body_out["stream"] = True
    if req.background:

        async def streamed(recording: Recording) -> AsyncGenerator[dict[str, Any], None]:
            # The runner releases the lease: the stream has none to release.
            opened = await _open_stream(
                service, BackgroundNativeStream, turn, body_out, lead, recording.store_turn, _none
            )
            return opened.events()

        queued = await background.start(
            service, turn, lambda: _answer(service, turn, body_out, lead), streamed
        )
        if req.stream:  # the client follows the events the run records
            return service.stored.follower(owner, identity.id, -1)
        return Completed(queued)
    if req.stream:

        async def write_turn(response: dict[str, Any], stored: list[StoredItem]) -> None:
            await store_turn(service.store, turn, response, stored)

        async def release() -> None:
            if lease is not None:
                await lease.release()

        return await _open_stream(
            service, NativeEventStream, turn, body_out, lead, write_turn, release
        )
    stored, response = await _answer(service, turn, body_out, lead)
    await store_turn(service.store, turn, response, stored)
    return Completed(response)


async def _open_stream(
    service: Responses,
    kind: type[NativeEventStream],
    turn: TurnContext,
    body_out: dict[str, Any],
    lead: Sequence[StoredItem],
    write_back: Callable[[dict[str, Any], list[StoredItem]], Awaitable[None]],
    release: Callable[[], Awaitable[None]],
) -> NativeEventStream:
    """The model server's own ``/responses`` stream of ``body_out``, opened."""
    req = turn.req
    assert service.upstream is not None
    opened = await calling(
        service.upstream.open_stream(body_out, service.config.responses_url), service.config
    )
    return kind(
        req,
        turn.identity,
        opened,
        store_output=lambda raw: [service.stored_form(item) for item in raw],
        visible=lambda item: visible(item, req.include),
        write_back=write_back,
        failure_of=lambda exc: upstream_error(exc, service.config),
        release=release,
        lead=lead,
    )


async def _answer(
    service: Responses, turn: TurnContext, body_out: dict[str, Any], lead: Sequence[StoredItem]
) -> tuple[list[StoredItem], dict[str, Any]]:
    """The model server's own ``/responses`` answer: output items (``lead`` first) and
    Response."""
    req = turn.req
    assert service.upstream is not None
    answer = await calling(
        service.upstream.complete(body_out, service.config.responses_url), service.config
    )
    raw = answer.get("output")
    if not isinstance(raw, list):
        raise errors.BadGateway(
            f"The model server at {service.config.shown} answered without an output list."
        )
    stored = [*lead, *(service.stored_form(item) for item in raw if isinstance(item, dict))]
    status = answer.get("status")
    details = answer.get("incomplete_details") or {}
    reason = details.get("reason") if status == "incomplete" else None
    response = resource.build(
        req,
        turn.identity,
        status="incomplete" if status == "incomplete" else "completed",
        output=[visible(item, req.include) for item in stored],
        usage=answer.get("usage") if isinstance(answer.get("usage"), dict) else None,
        incomplete_reason=reason if isinstance(reason, str) else None,
        billed=True,
    )
    return stored, response


async def _none() -> None:
    return None
