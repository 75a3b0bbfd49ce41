"""The run of a streamed background response (``background`` and ``stream`` true, issue
17): the model server's stream made into events (translated from Chat Completions
chunks by :class:`EventStream`, or passed through from the model server's own
``/responses`` by :class:`NativeEventStream`) that are recorded in the database
(:mod:`.events`) rather than sent, the turn stored by :meth:`Store.finish_response`
while the response still runs, then the terminal event appended. Clients read the
events with :class:`.events.Follower`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from convostore import errors
from convostore.service.responses import events, resource
from convostore.service.responses.chat_stream import EventStream
from convostore.service.responses.native_stream import NativeEventStream
from convostore.service.responses.request import ResponseRequest
from convostore.service.responses.stream import Translator
from convostore.service.responses.turn_context import TurnContext
from convostore.service.responses.writeback import record_of
from convostore.store.base import ConversationMissing, LeaseLost, Owner, StoredItem, Turn
from convostore.upstream import ChatStream

if TYPE_CHECKING:
    from convostore.service.responses import Responses

CANCELLED = "cancelled meanwhile"


def conversation_lost() -> errors.InvalidRequest:
    """The failure of a background response whose write-back found its conversation gone
    (``ConversationMissing``) or its lease taken (``LeaseLost``)."""
    return errors.InvalidRequest(
        "The conversation was deleted, or taken by another response, while this "
        "one ran; nothing was appended to it."
    )


# response.created and response.queued are stored before POST /v1/responses answers
# (see :func:`opening`), so a client resuming at once finds the stream.
OPENING = 2


def opening(queued: dict[str, Any]) -> list[bytes]:
    return [
        events.with_sequence({"type": "response.created", "response": queued}, 0),
        events.with_sequence({"type": "response.queued", "response": queued}, 1),
    ]


@dataclass
class Recording:
    """One streamed background run: where its events go (``recorder``) and how its turn
    is stored at the end (under the conversation lease of ``holder``, which the runner
    releases)."""

    service: Responses
    owner: Owner
    req: ResponseRequest
    inputs: list[StoredItem]
    recorder: events.Recorder
    holder: str | None

    async def finish(
        self, response: dict[str, Any], stored: list[StoredItem]
    ) -> errors.ApiError | None:
        """Store the turn (every event before the terminal one stored first); the
        failure that ends the stream instead, if any."""
        await self.recorder.flush()
        try:
            turn = Turn(self.inputs, stored, self.req.conversation_id, self.holder)
            kept = await self.service.store.finish_response(self.owner, record_of(response), turn)
        except (ConversationMissing, LeaseLost):
            return conversation_lost()
        if not kept:  # cancelled (or found dead) meanwhile: its end is the row's
            return errors.InvalidRequest(CANCELLED)
        return None

    async def store_turn(self, response: dict[str, Any], stored: list[StoredItem]) -> None:
        """:meth:`finish` for a :class:`NativeEventStream`, which fails on what it raises."""
        failure = await self.finish(response, stored)
        if failure is not None:
            raise failure

    async def run(self, produced: AsyncGenerator[dict[str, Any], None]) -> None:
        """Record the whole stream; the terminal event last (or the failure stored, as
        the runner's ``fail`` would). Raises what ends it otherwise."""
        recorder = self.recorder
        try:
            async for event in produced:
                kind = event["type"]
                if kind == "response.failed":
                    await recorder.flush()
                    failure = event["response"].get("error") or {}
                    if failure.get("message") == CANCELLED:
                        return
                    # Stored as any failure of a background response (nothing appended).
                    await self.service.store.finish_response(
                        self.owner, record_of(event["response"]), Turn(self.inputs, [])
                    )
                if kind in ("response.completed", "response.incomplete", "response.failed"):
                    await events.end(self.service.store, recorder.hub, recorder.response_id, event)
                    return
                recorder.add(event)  # raises TooManyEvents past the bound: the run fails
                if not recorder.alive:  # cancelled: the write found it no longer running
                    return
        finally:
            await produced.aclose()  # closes the model server's stream


class BackgroundEventStream(EventStream):
    """An :class:`EventStream` whose turn is stored as a background response's end."""

    def __init__(
        self,
        recording: Recording,
        identity: resource.Identity,
        upstream: ChatStream,
        lead: Sequence[StoredItem] = (),
    ):
        # No lease: the runner releases it.
        turn = TurnContext(recording.owner, recording.req, identity, recording.inputs, None)
        super().__init__(recording.service, turn, upstream, lead)
        self.recording = recording

    def _opening(self, translator: Translator) -> list[dict[str, Any]]:
        translator.sequence = OPENING
        return [
            translator.event("response.in_progress", response=self._snapshot("in_progress", []))
        ]

    async def _write_back(self, response: dict[str, Any]) -> errors.ApiError | None:
        return await self.recording.finish(response, self.stored)


class BackgroundNativeStream(NativeEventStream):
    """A :class:`NativeEventStream` numbered after the stored opening events: the model
    server's lifecycle events are one ``response.in_progress``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sequence = OPENING
        self.opened = False

    def _lifecycle(self, kind: str) -> dict[str, Any] | None:
        if self.opened:
            return None
        self.opened = True
        return super()._lifecycle("response.in_progress")
