"""``POST /v1/responses`` in front of a Chat Completions model server (issue 10).

A turn, in order: check the request (:mod:`.request`); find the conversation and the
input items (404s); take the conversation's lease (:mod:`.lease`, 400
``conversation_locked``); read its whole history (:mod:`.history`) and refuse what cannot
be sent (duplicates, calls without outputs, unreadable items: :mod:`.messages`); call the
model server (:mod:`.chat`, :mod:`convostore.upstream`); translate the answer
(:mod:`.output`, or :mod:`.stream` event by event); append input then output items in one
transaction under the lease (:mod:`.writeback`); release the lease. Any failure before
the append stores nothing.

This module is the service's facade and the Chat Completions turn; the steps shared by
every path take one :class:`.turn_context.TurnContext`. A streamed turn is
:mod:`.chat_stream`; a turn through the model server's own ``/responses`` is
:mod:`.native`; a background one is started by :mod:`.background`; the model server's
failures become API errors in :mod:`.upstream_errors`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from convostore import errors, ids
from convostore.clock import SYSTEM, Clock
from convostore.items.registry import Reference
from convostore.service.materialize import Materializer
from convostore.service.responses import (
    background,
    chat,
    context,
    events,
    history,
    native,
    output,
    request,
    resource,
)
from convostore.service.responses.background import Runner
from convostore.service.responses.background_stream import BackgroundEventStream, Recording
from convostore.service.responses.chat_stream import EventStream as EventStream
from convostore.service.responses.lease import Lease
from convostore.service.responses.native_stream import NativeEventStream
from convostore.service.responses.request import ResponseRequest
from convostore.service.responses.resource import Completed as Completed
from convostore.service.responses.stored import StoredResponses
from convostore.service.responses.turn_context import TurnContext
from convostore.service.responses.upstream_errors import calling
from convostore.service.responses.visibility import visible
from convostore.service.responses.writeback import store_turn
from convostore.store.base import Owner, Store, StoredItem
from convostore.upstream import ChatUpstream, UpstreamConfig

NOT_CONFIGURED = (
    "This server has no model server to answer with: start it with --upstream URL (or "
    "CONVOSTORE_UPSTREAM), e.g. --upstream http://127.0.0.1:8001/v1, to serve /v1/responses."
)


class Responses:
    def __init__(
        self,
        store: Store,
        materializer: Materializer,
        config: UpstreamConfig | None = None,
        upstream: ChatUpstream | None = None,
        clock: Clock = SYSTEM,
    ):
        self.store = store
        self.clock = clock
        self.materializer = materializer
        self.registry = materializer.registry
        self.config = config or UpstreamConfig()
        if upstream is None and self.config.configured:
            upstream = ChatUpstream(self.config)
        self.upstream = upstream
        self.background = Runner(store, self.config.lease_seconds)
        self.context = context.Context(
            store,
            self.config,
            upstream,
            self.stored_form,
            lambda call: calling(call, self.config),
        )
        self.hub = events.Hub()  # wakes this process's followers of streamed ones
        self.stored = StoredResponses(store, self.hub, self.config)

    async def aclose(self) -> None:
        await self.background.aclose()
        if self.upstream is not None:
            await self.upstream.aclose()

    async def create(
        self, owner: Owner, body: Any
    ) -> Completed | EventStream | NativeEventStream | events.Follower:
        req = request.parse(body, self.registry)
        upstream = self.upstream
        if upstream is None:
            raise errors.InvalidRequest(NOT_CONFIGURED, code="upstream_not_configured")
        identity = resource.Identity(ids.new_id("resp"), int(time.time()), req.model)
        inputs = await self._inputs(owner, req)
        lease: Lease | None = None
        if req.conversation_id is not None:  # also store: false, which appends too
            lease = Lease(
                self.store,
                owner,
                req.conversation_id,
                identity.id,
                self.config.lease_seconds,
                self.clock,
            )
            await lease.take()
        turn = TurnContext(owner, req, identity, inputs, lease)
        handed_over = False
        try:
            if self.config.api == "responses":
                outcome = await native.respond(self, turn)
                handed_over = isinstance(outcome, NativeEventStream) or req.background
                return outcome
            chat_messages, lead = await self._messages(owner, req, inputs)
            body_out = chat.body(
                req, chat_messages, self.config.model_for(req.model), stream=req.stream
            )
            if req.background:

                async def answer() -> tuple[list[StoredItem], dict[str, Any]]:
                    completion = await calling(upstream.complete(body_out), self.config)
                    return self._outcome(req, identity, completion, lead)

                async def streamed(recording: Recording) -> AsyncGenerator[dict[str, Any], None]:
                    opened = await calling(upstream.open_stream(body_out), self.config)
                    return BackgroundEventStream(recording, identity, opened, lead).events()

                queued = await background.start(self, turn, answer, streamed)
                handed_over = True
                if req.stream:  # the client follows the events the run records
                    return self.stored.follower(owner, identity.id, -1)
                return Completed(queued)
            if req.stream:
                opened = await calling(upstream.open_stream(body_out), self.config)
                handed_over = True
                return EventStream(self, turn, opened, lead)
            completion = await calling(upstream.complete(body_out), self.config)
            return await self._complete(turn, completion, lead)
        finally:
            if lease is not None and not handed_over:
                await lease.release()

    async def compact(self, owner: Owner, body: Any) -> dict[str, Any]:
        """``POST /v1/responses/compact`` (:mod:`.compact`)."""
        from convostore.service.responses.compact import compact

        return await compact(self, owner, body)

    # -- the steps --------------------------------------------------------------------------

    async def _inputs(self, owner: Owner, req: ResponseRequest) -> list[StoredItem]:
        """The input items as they will be stored; 404 for an unknown conversation first."""
        named = [
            entry.id if isinstance(entry, Reference) else entry["id"]
            for entry in req.input
            if isinstance(entry, Reference) or entry.get("id") is not None
        ]
        if len(set(named)) != len(named):
            repeated = next(n for n in named if named.count(n) > 1)
            raise errors.InvalidRequest(
                f"Duplicate item found with id {repeated}. Remove duplicate items from your "
                "input and try again.",
                param="input",
            )
        if req.conversation_id is not None:
            await self.store.get_conversation(owner, req.conversation_id)
        return await self.materializer.materialize(owner, req.input, named)

    async def _messages(
        self, owner: Owner, req: ResponseRequest, inputs: list[StoredItem]
    ) -> tuple[list[dict[str, Any]], list[StoredItem]]:
        """The messages the model is sent, and the output items made before the model
        answers (with truncation or compaction on, :mod:`.context` decides both: a
        compaction it made is the response's first output item)."""
        managed = await self.context.turn(owner, req, inputs)
        out = history.turn_messages(managed.entries, req, self.config.image_url_prefixes)
        lead = [] if managed.compacted is None else [managed.compacted]
        if all(m["role"] == "system" for m in out):
            raise errors.missing_parameter("input")
        return out, lead

    def _outcome(
        self,
        req: ResponseRequest,
        identity: resource.Identity,
        completion: dict[str, Any],
        lead: Sequence[StoredItem],
    ) -> tuple[list[StoredItem], dict[str, Any]]:
        """The output items (``lead`` first, then the model server's answer), and the
        Response object."""
        if not completion.get("choices"):
            raise errors.BadGateway("The model server answered without any choices.")
        items, finish = output.from_completion(completion, output.shape_of(req), ids.new_id)
        stored = [*lead, *(self.stored_form(item) for item in items)]
        reason = output.INCOMPLETE_REASONS.get(finish or "")
        response = resource.build(
            req,
            identity,
            status="incomplete" if reason else "completed",
            output=[visible(item, req.include) for item in stored],
            usage=output.usage(completion.get("usage")),
            incomplete_reason=reason,
            billed=True,
        )
        return stored, response

    async def _complete(
        self, turn: TurnContext, completion: dict[str, Any], lead: Sequence[StoredItem]
    ) -> Completed:
        stored, response = self._outcome(turn.req, turn.identity, completion, lead)
        await store_turn(self.store, turn, response, stored)
        return Completed(response)

    def stored_form(self, item: dict[str, Any]) -> StoredItem:
        """An output item as the Conversations API stores it (and so as clients see it)."""
        try:
            prepared = self.registry.prepare(item, "output")
        except errors.ApiError as exc:
            raise errors.BadGateway(
                f"The model server's answer cannot be stored as a {item['type']} item: "
                f"{exc.message}"
            ) from None
        assert isinstance(prepared, dict)
        return self.materializer.fresh(prepared)
