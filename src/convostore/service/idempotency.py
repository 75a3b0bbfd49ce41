"""``Idempotency-Key`` (issue 20): a POST retried with the same key and the same request
gets the first answer and changes nothing.

The first request's answer is rendered before its write and stored in the write's own
transaction (:class:`~convostore.store.base.Remembered`), so an answer is kept exactly
when its write is. A retry looks the key up first; two requests with one key racing
each other both write, and the store refuses the second's write on the key
(:class:`~convostore.store.base.AnswerTaken`, its write undone), which then answers
what the first stored. Keys belong to an owner (project and isolation key), so one
tenant's key never answers another's request. Answers are kept for ``keep_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from convostore import errors
from convostore.store.base import AnswerTaken, Owner, Remembered, Store

#: What a write gets to keep its answer: the answer's bytes to the record to store with
#: it (None when the request had no key).
Remember = Callable[[bytes], Remembered | None]


@dataclass(frozen=True, slots=True)
class RequestKey:
    """A request's ``Idempotency-Key`` and a digest of what it asked (method, path, query
    and body)."""

    key: str
    fingerprint: bytes


def _nothing(answer: bytes) -> None:
    return None


class Idempotency:
    def __init__(self, store: Store, keep_seconds: float, clock: Callable[[], float] = time.time):
        self.store = store
        self.keep_seconds = keep_seconds
        self.clock = clock

    def _since(self) -> int:
        return int(self.clock() - self.keep_seconds)

    async def _stored(self, owner: Owner, key: RequestKey) -> bytes | None:
        found = await self.store.find_answer(owner, key.key, self._since())
        if found is None:
            return None
        fingerprint, answer = found
        if fingerprint != key.fingerprint:
            raise errors.idempotency_key_reused(key.key)
        return answer

    async def once(
        self,
        owner: Owner,
        key: RequestKey | None,
        write: Callable[[Remember], Awaitable[bytes]],
    ) -> bytes:
        """The answer of ``write``, or the one stored under ``key``."""
        if key is None:
            return await write(_nothing)
        for _ in range(2):  # a second time only if the first answer expired meanwhile
            stored = await self._stored(owner, key)
            if stored is not None:
                return stored

            def remember(answer: bytes, key: RequestKey = key) -> Remembered:
                now = int(self.clock())
                return Remembered(
                    key.key, key.fingerprint, answer, now, int(now - self.keep_seconds)
                )

            try:
                return await write(remember)
            except AnswerTaken:
                continue
        raise errors.idempotency_key_reused(key.key)

    async def purge(self, batch: int = 1000) -> int:
        """Delete the expired answers, ``batch`` at a time; how many went."""
        gone = 0
        while True:
            count = await self.store.purge_answers(self._since(), batch)
            gone += count
            if count < batch:
                return gone
