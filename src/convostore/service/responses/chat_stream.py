"""A streamed turn through a Chat Completions model server: the model server's chunks
translated into Responses events as they arrive (:mod:`.stream`), the turn written back
(:mod:`.writeback`) before the terminal event; a failure anywhere is ``response.failed``
and nothing is stored. In the background the same stream is recorded instead of sent
(:class:`.background_stream.BackgroundEventStream`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from convostore import errors, ids
from convostore.items import include as includes
from convostore.service.responses import output, resource
from convostore.service.responses.stream import StreamMisordered, Translator
from convostore.service.responses.turn_context import TurnContext
from convostore.service.responses.upstream_errors import upstream_error
from convostore.service.responses.visibility import visible_dict
from convostore.service.responses.writeback import store_turn
from convostore.store.base import StoredItem, StoreUnavailable
from convostore.upstream import ChatStream, UpstreamError

if TYPE_CHECKING:
    from convostore.service.responses import Responses

log = logging.getLogger("convostore")


class EventStream:
    """A streamed response: its events, as the model server's chunks arrive.

    It owns the opened upstream stream and the lease from :meth:`Responses.create` on:
    :meth:`aclose` (called by the HTTP layer whatever happened, also when the events were
    never read) closes the one and releases the other.
    """

    def __init__(
        self,
        service: Responses,
        turn: TurnContext,
        upstream: ChatStream,
        lead: Sequence[StoredItem] = (),
    ):
        self.service = service
        self.turn = turn
        self.req = turn.req
        self.identity = turn.identity
        self.upstream = upstream
        self.lease = turn.lease
        self.lead = lead  # output items made before the model answered (a compaction)
        self.stored: list[StoredItem] = []

    async def aclose(self) -> None:
        try:
            await self.upstream.aclose()
        finally:
            if self.lease is not None:
                await self.lease.release()

    def _finalize(self, item: dict[str, Any]) -> dict[str, Any]:
        stored = self.service.stored_form(item)
        self.stored.append(stored)
        decoded: dict[str, Any] = orjson.loads(stored.body)
        return decoded

    async def events(self) -> AsyncGenerator[dict[str, Any], None]:
        req = self.req
        include = req.include
        translator = Translator(
            output.shape_of(req),
            ids.new_id,
            self._finalize,
            lambda item: visible_dict(item, include),
            show_logprobs=bool(include & includes.BIT[includes.OUTPUT_TEXT_LOGPROBS]),
            obfuscate=req.obfuscate,
        )
        snapshot = self._snapshot
        try:
            for event in self._opening(translator):
                yield event
            for stored in self.lead:
                self.stored.append(stored)
                for event in translator.lead(orjson.loads(stored.body)):
                    yield event
            failure: errors.ApiError | None = None
            try:
                async for chunk in self.upstream.chunks():
                    for event in translator.feed(chunk):
                        yield event
                if translator.finish_reason is None:
                    failure = errors.BadGateway(
                        "The model server's stream ended before the response was complete; "
                        "nothing was stored."
                    )
                else:
                    for event in translator.finish():
                        yield event
            except UpstreamError as exc:
                failure = upstream_error(exc, self.service.config)
            except StreamMisordered as exc:
                failure = errors.BadGateway(f"The model server's stream was out of order: {exc}.")
            except errors.ApiError as exc:  # an answer that cannot be made an item
                failure = exc
            reason = output.INCOMPLETE_REASONS.get(translator.finish_reason or "")
            final: dict[str, Any] | None = None
            if failure is None:
                final = resource.build(
                    req,
                    self.identity,
                    status="incomplete" if reason else "completed",
                    output=[visible_dict(item, include) for item in translator.items],
                    usage=output.usage(translator.usage),
                    incomplete_reason=reason,
                )
                failure = await self._write_back(final)
            if failure is not None or final is None:
                partial = [visible_dict(item, include) for item in translator.partial()]
                yield translator.event(
                    "response.failed", response=snapshot("failed", partial, failure)
                )
                return
            yield translator.event(
                "response.incomplete" if reason else "response.completed", response=final
            )
        finally:
            await self.aclose()

    def _opening(self, translator: Translator) -> list[dict[str, Any]]:
        snapshot = self._snapshot("in_progress", [])
        return [
            translator.event("response.created", response=snapshot),
            translator.event("response.in_progress", response=snapshot),
        ]

    def _snapshot(
        self, status: str, items: list[dict[str, Any]], failure: errors.ApiError | None = None
    ) -> dict[str, Any]:
        error = None if failure is None else resource.error_of(failure)
        return resource.build(self.req, self.identity, status=status, output=items, error=error)

    async def _write_back(self, response: dict[str, Any]) -> errors.ApiError | None:
        try:
            await store_turn(self.service.store, self.turn, response, self.stored)
        except errors.ApiError as exc:
            return exc
        except StoreUnavailable as exc:
            log.error("database unavailable writing back %s: %s", self.identity.id, exc)
            return errors.ServiceUnavailable(
                "The database is unavailable right now; the response was not stored."
            )
        except Exception:
            log.exception("writing back response %s failed", self.identity.id)
            return errors.InternalError("The response could not be stored.")
        return None
