"""Streamed background responses (``background`` and ``stream`` true, issue 17).

The process running the response records its events in the database
(:class:`Recorder`, in batches, only while the response runs; migration 0060); every
client reads them from there (:class:`Follower`): the one that made the response, and
any that resumes it with ``GET /v1/responses/{id}?stream=true&starting_after=N``, on
any server process. A client that goes away stops only its own reading.

A follower replays what is stored after ``N``, then waits for more: woken at once by a
:class:`Hub` when the recorder is in the same process, else by polling every
``--response-stream-poll-seconds`` (one indexed read). It ends after the terminal event
(``response.completed``, ``response.incomplete``, ``response.failed``), which exactly
one party appends after the response finished (:meth:`Store.end_response_events`): the
runner, a cancel, or a follower that finds the response finished without one (its
process died: the read marks it failed). A cancelled response ends with
``response.failed`` carrying the response with ``status: "cancelled"`` (OpenAI's stream
has no event for cancelling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from convostore import errors
from convostore.store.base import Owner, ResponseMissing, Store

log = logging.getLogger("convostore")

TERMINAL = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
    "cancelled": "response.failed",
}
PAGE = 200  # events read per query


class Hub:
    """Wakes this process's followers of a response when its events were stored."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Event] = {}
        self._waiters: dict[str, int] = {}

    def notify(self, response_id: str) -> None:
        event = self._waiting.pop(response_id, None)
        if event is not None:
            event.set()

    async def wait(self, response_id: str, seconds: float) -> None:
        """Until the next :meth:`notify` of the response, or ``seconds``."""
        event = self._waiting.setdefault(response_id, asyncio.Event())
        self._waiters[response_id] = self._waiters.get(response_id, 0) + 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), seconds)
        finally:
            left = self._waiters.pop(response_id) - 1
            if left:
                self._waiters[response_id] = left
            elif self._waiting.get(response_id) is event:
                del self._waiting[response_id]  # none waits on it any more


def with_sequence(event: dict[str, Any], seq: int) -> bytes:
    return orjson.dumps({**event, "sequence_number": seq})


def terminal_of(response: dict[str, Any]) -> dict[str, Any]:
    """The terminal event of a finished response (its ``sequence_number`` set later)."""
    return {"type": TERMINAL[response["status"]], "sequence_number": 0, "response": response}


class TooManyEvents(errors.InvalidRequest):
    pass


@dataclass(eq=False)
class Recorder:
    """Stores a running response's events in order, in batches: at most one write per
    ``interval`` while events come, the last ones written before the response ends."""

    store: Store
    hub: Hub
    response_id: str
    next_seq: int  # the sequence number of the next event (the first one's when made)
    limit: int
    interval: float
    pending: list[bytes] = field(default_factory=list, init=False)
    # False once a write found the response no longer running
    alive: bool = field(default=True, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _dirty: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _flusher: asyncio.Task[None] | None = field(default=None, init=False)

    def add(self, event: dict[str, Any]) -> None:
        if self.next_seq + len(self.pending) >= self.limit:
            raise TooManyEvents(
                f"The response streamed more than {self.limit} events "
                "(--response-stream-events-max); it was stopped."
            )
        self.pending.append(orjson.dumps(event))
        self._dirty.set()
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await self._dirty.wait()
            try:
                await self.flush()
            except Exception:  # the database hiccups: the batch is kept for the next try
                log.warning("could not store the events of %s", self.response_id, exc_info=True)
            await asyncio.sleep(self.interval)

    async def flush(self) -> None:
        async with self._lock:
            self._dirty.clear()
            if not self.pending or not self.alive:
                return
            batch = self.pending
            self.pending = []
            try:
                self.alive = await self.store.append_response_events(
                    self.response_id, self.next_seq, batch
                )
            except BaseException:
                self.pending[:0] = batch
                raise
            if self.alive:
                self.next_seq += len(batch)
            self.hub.notify(self.response_id)

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher


async def end(store: Store, hub: Hub, response_id: str, terminal: dict[str, Any]) -> None:
    """Append the terminal event (nothing if one is stored, or if the response was not
    streamed), numbered after the last one, and wake the followers."""
    await store.end_response_events(response_id, lambda seq: with_sequence(terminal, seq))
    hub.notify(response_id)


@dataclass(eq=False)
class Follower:
    """One client's reading of a streamed background response (see the module)."""

    store: Store
    hub: Hub
    owner: Owner
    response_id: str
    after: int
    poll_seconds: float
    check_seconds: float
    # The response if it has finished, else None.
    finished: Callable[[Owner, str], Awaitable[dict[str, Any] | None]]

    async def aclose(self) -> None:
        return None

    async def events(self) -> AsyncGenerator[bytes, None]:
        """The stored events after ``after`` as they come, SSE-framed, until the terminal
        one (or the response's deletion: an ``error`` event)."""
        last_check = -self.check_seconds  # the first idle read checks at once
        ended = False  # the response has finished: what is stored is all there will be
        while True:
            batch = await self.store.response_events(self.response_id, self.after, PAGE)
            for stored in batch:
                self.after = stored.seq
                yield _frame(stored.body)
                if stored.terminal:
                    return
            if batch:
                continue
            if ended:  # starting_after at or past its terminal event: nothing to send
                return
            if time.monotonic() - last_check >= self.check_seconds:
                last_check = time.monotonic()
                try:
                    response = await self.finished(self.owner, self.response_id)
                except ResponseMissing:
                    yield _frame(_deleted(self.after + 1))
                    return
                if response is not None:  # finished: its terminal event, if none yet
                    await end(self.store, self.hub, self.response_id, terminal_of(response))
                    ended = True
                    continue
            await self.hub.wait(self.response_id, self.poll_seconds)


def _deleted(seq: int) -> bytes:
    return orjson.dumps(
        {
            "type": "error",
            "sequence_number": seq,
            "code": "response_not_found",
            "message": "The response was deleted while it was streamed.",
            "param": None,
        }
    )


def _frame(body: bytes) -> bytes:
    kind: str = orjson.loads(body)["type"]
    return b"event: " + kind.encode() + b"\ndata: " + body + b"\n\n"
