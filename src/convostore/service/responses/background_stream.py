"""The run of a streamed background response (``background`` and ``stream`` true, issue
17): the model server's stream translated into events (:class:`EventStream`'s
translator) that are recorded in the database (:mod:`.events`) rather than sent, the
turn stored by :meth:`Store.finish_response` while the response still runs, then the
terminal event appended. Clients read the events with :class:`.events.Follower`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convostore import errors
from convostore.service.responses import EventStream, Responses, events, resource
from convostore.service.responses.request import ResponseRequest
from convostore.service.responses.stream import Translator
from convostore.service.responses.writeback import record_of
from convostore.store.base import ConversationMissing, LeaseLost, Owner, StoredItem
from convostore.upstream import ChatStream

CANCELLED = "cancelled meanwhile"

# response.created and response.queued are stored before POST /v1/responses answers
# (see :func:`opening`), so a client resuming at once finds the stream.
OPENING = 2


def opening(queued: dict[str, Any]) -> list[bytes]:
    return [
        events.with_sequence({"type": "response.created", "response": queued}, 0),
        events.with_sequence({"type": "response.queued", "response": queued}, 1),
    ]


class BackgroundEventStream(EventStream):
    """An :class:`EventStream` whose turn is stored as a background response's end
    (under the conversation lease of ``holder``, which the runner releases)."""

    def __init__(
        self,
        service: Responses,
        owner: Owner,
        req: ResponseRequest,
        identity: resource.Identity,
        inputs: list[StoredItem],
        upstream: ChatStream,
        recorder: events.Recorder,
        holder: str | None,
        lead: Sequence[StoredItem] = (),
    ):
        super().__init__(service, owner, req, identity, inputs, upstream, None, lead)
        self.recorder = recorder
        self.holder = holder

    def _opening(self, translator: Translator) -> list[dict[str, Any]]:
        translator.sequence = OPENING
        return [
            translator.event("response.in_progress", response=self._snapshot("in_progress", []))
        ]

    async def _write_back(self, response: dict[str, Any]) -> errors.ApiError | None:
        await self.recorder.flush()  # every event before the terminal one, while running
        try:
            stored = await self.service.store.finish_response(
                self.owner,
                record_of(response),
                self.inputs,
                self.stored,
                conversation_id=self.req.conversation_id,
                holder=self.holder,
            )
        except (ConversationMissing, LeaseLost):
            return errors.InvalidRequest(
                "The conversation was deleted, or taken by another response, while this "
                "one ran; nothing was appended to it."
            )
        if not stored:  # cancelled (or found dead) meanwhile: its end is the row's
            return errors.InvalidRequest(CANCELLED)
        return None


async def run(stream: BackgroundEventStream) -> None:
    """Translate and record the whole stream; the terminal event last (or the failure
    stored, as the runner's ``fail`` would). Raises what ends it otherwise."""
    recorder = stream.recorder
    produced = stream.events()
    try:
        async for event in produced:
            kind = event["type"]
            if kind == "response.failed":
                await recorder.flush()
                failure = event["response"].get("error") or {}
                if failure.get("message") == CANCELLED:
                    return
                # Stored as any failure of a background response (nothing appended).
                await stream.service.store.finish_response(
                    stream.owner, record_of(event["response"]), stream.inputs, []
                )
            if kind in ("response.completed", "response.incomplete", "response.failed"):
                await events.end(stream.service.store, recorder.hub, recorder.response_id, event)
                return
            recorder.add(event)  # raises TooManyEvents past the bound: the run fails
            if not recorder.alive:  # cancelled: the write found it no longer running
                return
    finally:
        await produced.aclose()  # closes the model server's stream
