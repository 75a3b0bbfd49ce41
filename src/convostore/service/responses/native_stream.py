"""A streamed turn through the model server's own ``/responses`` (``--upstream-api
responses``, issue 17): its events are passed through as they come, numbered again from
0, with convostore's Response object (its id, conversation, echoed parameters) in the
lifecycle events (a compaction made for the turn comes first, as output item 0, the
model server's items numbered after it; in the background, numbered after the stored opening events and
recorded: :class:`.background_stream.BackgroundNativeStream`). When the model server's ``response.completed`` (or
``response.incomplete``) arrives, its output items are stored (the write-back of any
turn) before convostore sends its own ``response.completed``; a failure anywhere is
``response.failed`` and nothing is stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from convostore import errors
from convostore.service.responses import obfuscation, resource
from convostore.service.responses.request import ResponseRequest
from convostore.store.base import StoredItem
from convostore.upstream import ChatStream, UpstreamError

log = logging.getLogger("convostore")

LIFECYCLE = ("response.created", "response.in_progress", "response.queued")
FINAL = ("response.completed", "response.incomplete")


@dataclass(eq=False)
class NativeEventStream:
    """The events of one streamed native turn; :meth:`aclose` closes the model server's
    stream and releases the lease (the HTTP layer calls it whatever happened)."""

    req: ResponseRequest
    identity: resource.Identity
    upstream: ChatStream
    # The service's parts it needs: the stored form of output items, an item as the
    # client sees it, the write-back of the finished turn, the answer to an upstream
    # failure, and the release of the lease.
    store_output: Callable[[list[dict[str, Any]]], list[StoredItem]] = field(kw_only=True)
    visible: Callable[[StoredItem], dict[str, Any]] = field(kw_only=True)
    write_back: Callable[[dict[str, Any], list[StoredItem]], Awaitable[None]] = field(kw_only=True)
    failure_of: Callable[[UpstreamError], errors.ApiError] = field(kw_only=True)
    release: Callable[[], Awaitable[None]] = field(kw_only=True)
    # output items made before the model answered (a compaction): the first output items
    lead: Sequence[StoredItem] = field(default=(), kw_only=True)
    led: bool = field(default=False, init=False)  # their events were sent
    sequence: int = field(default=0, init=False)  # the next event's sequence_number

    async def aclose(self) -> None:
        try:
            await self.upstream.aclose()
        finally:
            await self.release()

    def _event(self, event: dict[str, Any]) -> dict[str, Any]:
        event["sequence_number"] = self.sequence
        self.sequence += 1
        return event

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        return resource.build(self.req, self.identity, status=status, output=[], **extra)

    async def events(self) -> AsyncGenerator[dict[str, Any], None]:
        failure: errors.ApiError | None = None
        try:
            async for event in self._pass_through():
                yield event
            return
        except UpstreamError as exc:
            failure = self.failure_of(exc)
        except errors.ApiError as exc:
            failure = exc
        finally:
            if failure is not None:
                error = {"code": "server_error", "message": failure.message}
                yield self._event(
                    {"type": "response.failed", "response": self._response("failed", error=error)}
                )
            await self.aclose()

    async def _pass_through(self) -> AsyncGenerator[dict[str, Any], None]:
        async for event in self.upstream.chunks():
            kind = event.get("type")
            if kind in LIFECYCLE:
                opening = self._lifecycle(kind)
                if opening is not None:
                    yield opening
                continue
            for leading in self._lead():
                yield leading
            if kind in FINAL:
                yield await self._finish(event)
                return
            elif kind in ("response.failed", "error"):
                raise errors.BadGateway(f"The model server's response failed: {_why(event)}")
            elif isinstance(kind, str):
                yield self._event(self._padded(self._shifted(dict(event))))
        raise errors.BadGateway(
            "The model server's stream ended before the response was complete; nothing was stored."
        )

    def _lead(self) -> list[dict[str, Any]]:
        """The lead items' events, once, before the model server's first output event."""
        if self.led:
            return []
        self.led = True
        out: list[dict[str, Any]] = []
        for index, stored in enumerate(self.lead):
            shown = self.visible(stored)
            for kind in ("response.output_item.added", "response.output_item.done"):
                out.append(self._event({"type": kind, "output_index": index, "item": shown}))
        return out

    def _shifted(self, event: dict[str, Any]) -> dict[str, Any]:
        """The model server's event with its ``output_index`` after the lead items."""
        index = event.get("output_index")
        if self.lead and isinstance(index, int):
            event["output_index"] = index + len(self.lead)
        return event

    def _lifecycle(self, kind: str) -> dict[str, Any] | None:
        """The model server's lifecycle event, with convostore's Response object."""
        status = "queued" if kind == "response.queued" else "in_progress"
        return self._event({"type": kind, "response": self._response(status)})

    def _padded(self, event: dict[str, Any]) -> dict[str, Any]:
        """A delta event with this request's ``obfuscation`` (the model server's own, or
        its lack of one, does not decide it)."""
        delta = event.get("delta")
        if isinstance(delta, str):
            event.pop("obfuscation", None)
            if self.req.obfuscate:
                event["obfuscation"] = obfuscation.padding(delta)
        return event

    async def _finish(self, event: dict[str, Any]) -> dict[str, Any]:
        final = event.get("response") if isinstance(event.get("response"), dict) else {}
        assert isinstance(final, dict)
        raw = final.get("output")
        if not isinstance(raw, list):
            raise errors.BadGateway("The model server's final event had no output list.")
        stored = [
            *self.lead,
            *self.store_output([item for item in raw if isinstance(item, dict)]),
        ]
        incomplete = event["type"] == "response.incomplete"
        details = final.get("incomplete_details") or {}
        reason = details.get("reason") if incomplete and isinstance(details, dict) else None
        usage = final.get("usage")
        response = resource.build(
            self.req,
            self.identity,
            status="incomplete" if incomplete else "completed",
            output=[self.visible(item) for item in stored],
            usage=usage if isinstance(usage, dict) else None,
            incomplete_reason=reason if isinstance(reason, str) else None,
        )
        await self.write_back(response, stored)
        return self._event({"type": event["type"], "response": response})


def _why(event: dict[str, Any]) -> str:
    response = event.get("response")
    error = response.get("error") if isinstance(response, dict) else event
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return "no reason given"
