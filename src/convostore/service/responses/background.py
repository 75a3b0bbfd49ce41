"""Background responses (``background: true``, issue 17).

``POST /v1/responses`` stores the response at once (status ``queued``) and answers it;
a task of this server process then runs the turn. While it runs it renews the
response's ``expires_at`` every third of ``--response-lease-seconds`` (setting
``in_progress``): a renewal that finds the response no longer running (cancelled by
``POST /v1/responses/{id}/cancel`` from any process) stops the model server call, and
the final write (:meth:`Store.finish_response`) lands only while the response is still
running, so a cancelled response stays cancelled. A process that dies stops renewing:
the first read after ``expires_at`` marks the response ``failed`` (the store does it in
the read), so none stays ``in_progress`` forever. A server that shuts down marks its
running responses failed itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from convostore import errors
from convostore.service.responses import background_stream, events, resource
from convostore.service.responses.background_stream import Recording
from convostore.service.responses.turn_context import TurnContext
from convostore.service.responses.writeback import record_of, turn_of
from convostore.store.base import (
    ConversationMissing,
    LeaseLost,
    Owner,
    ResponseMissing,
    Store,
    StoredItem,
    Turn,
)

if TYPE_CHECKING:
    from convostore.service.responses import Responses

log = logging.getLogger("convostore")

SHUT_DOWN = "The server running this response shut down before it finished."


class Runner:
    """The background responses running in this process."""

    def __init__(self, store: Store, seconds: float):
        self.store = store
        self.seconds = seconds
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def aclose(self) -> None:
        """Stop every running response (each marks itself failed)."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def run(
        self,
        response_id: str,
        work: Awaitable[None],
        fail: Callable[[errors.ApiError], Awaitable[None]],
    ) -> None:
        """Run ``work`` while the response is running; ``fail`` stores a failure."""
        job = asyncio.ensure_future(work)
        stopped = False

        async def keep_alive() -> None:
            nonlocal stopped
            while not job.done():
                try:
                    alive = await self.store.renew_response(
                        response_id, "in_progress", self.seconds
                    )
                except Exception:  # the database hiccups: try again at the next tick
                    log.warning("could not renew background response %s", response_id)
                    alive = True
                if not alive:  # cancelled, or found dead by another process
                    stopped = True
                    job.cancel()
                    return
                await asyncio.sleep(self.seconds / 3)

        watcher = asyncio.ensure_future(keep_alive())
        try:
            await job
        except asyncio.CancelledError:
            if stopped:
                return
            job.cancel()
            await asyncio.shield(fail(errors.ServiceUnavailable(SHUT_DOWN)))
            raise
        except errors.ApiError as exc:
            await fail(exc)
        except Exception:
            log.exception("background response %s failed", response_id)
            await fail(errors.InternalError("The server had an error while processing."))
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def start(
    service: Responses,
    turn: TurnContext,
    answer: Callable[[], Awaitable[tuple[list[StoredItem], dict[str, Any]]]],
    streamed: Callable[[Recording], Awaitable[AsyncGenerator[dict[str, Any], None]]],
) -> dict[str, Any]:
    """Store the response as queued and run it in a task (:class:`Runner`):
    ``answer`` makes its output items and Response object, or with ``stream`` the
    events ``streamed`` opens are recorded (:mod:`.events`, :mod:`.background_stream`)."""
    owner, req, identity = turn.owner, turn.req, turn.identity
    inputs, lease = turn.inputs, turn.lease
    queued = resource.build(req, identity, status="queued", output=[])
    try:
        await service.store.start_response(owner, record_of(queued), service.config.lease_seconds)
    except ResponseMissing:  # the previous response was deleted meanwhile
        raise errors.previous_response_not_found(req.previous_response_id or "") from None
    recorder: events.Recorder | None = None
    recording: Recording | None = None
    if req.stream:
        await service.store.append_response_events(
            identity.id, 0, background_stream.opening(queued)
        )
        recorder = events.Recorder(
            service.store,
            service.hub,
            identity.id,
            background_stream.OPENING,
            service.config.stream_events_max,
            service.config.stream_poll_seconds / 4,
        )
        holder = None if lease is None else lease.holder
        recording = Recording(service, owner, req, inputs, recorder, holder)

    async def work() -> None:
        if recording is not None:
            await recording.run(await streamed(recording))
            return
        stored, response = await answer()
        try:
            await service.store.finish_response(
                owner, record_of(response), turn_of(req.conversation_id, inputs, stored, lease)
            )
        except (ConversationMissing, LeaseLost):
            raise background_stream.conversation_lost() from None

    async def fail(exc: errors.ApiError) -> None:
        failed = resource.build(
            req,
            identity,
            status="failed",
            output=[],
            error=resource.error_of(exc),
        )
        try:
            await service.store.finish_response(owner, record_of(failed), Turn(inputs, []))
        except Exception:  # it expires and is marked failed by the next read anyway
            log.warning("could not store the failure of %s", identity.id, exc_info=True)

    async def run() -> None:
        try:
            await service.background.run(identity.id, work(), fail)
        finally:
            if lease is not None:
                await lease.release()
            if recorder is not None:
                await recorder.aclose()
                await _end_stream(service, owner, identity.id)

    service.background.spawn(run())
    return queued


async def _end_stream(service: Responses, owner: Owner, response_id: str) -> None:
    """After a streamed background run: its terminal event, from the stored response
    when the run did not append one (cancelled, failed, shut down)."""
    try:
        response = await asyncio.shield(service.stored.finished(owner, response_id))
        if response is not None:
            terminal = events.terminal_of(response)
            await asyncio.shield(events.end(service.store, service.hub, response_id, terminal))
    except Exception:  # a follower appends it when it finds the response finished
        log.warning("could not end the event stream of %s", response_id, exc_info=True)
