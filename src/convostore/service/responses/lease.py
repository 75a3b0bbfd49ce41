"""One response in flight per conversation: the lease a response holds on it.

Taken before the model server is called (a second response on the conversation gets
OpenAI's ``400 conversation_locked``), renewed every third of its length while the
response runs, released at its end whatever happened, and checked by the append that
writes the response back (:meth:`Store.append_items_leased`). A server that crashes
holding one leaves it to expire: the conversation is free again after at most
``--response-lease-seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from convostore.clock import SYSTEM, Clock
from convostore.store.base import Owner, Store

log = logging.getLogger("convostore")


@dataclass(eq=False)
class Lease:
    store: Store
    owner: Owner
    conversation_id: str
    holder: str
    seconds: float
    clock: Clock = SYSTEM
    lost: bool = False  # the renewal found it taken over
    _renewer: asyncio.Task[None] | None = field(default=None, repr=False)
    _released: bool = False

    async def take(self) -> None:
        await self.store.take_lease(self.owner, self.conversation_id, self.holder, self.seconds)
        self._renewer = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await self.clock.sleep(self.seconds / 3)
            try:
                if not await self.store.renew_lease(
                    self.owner, self.conversation_id, self.holder, self.seconds
                ):
                    self.lost = True
                    log.warning(
                        "response %s lost its lease on %s", self.holder, self.conversation_id
                    )
                    return
            except Exception:  # the database hiccups: try again at the next tick
                log.warning("could not renew the lease of response %s", self.holder, exc_info=True)

    async def release(self) -> None:
        """Stop renewing and drop the lease; safe to call twice, and while cancelled."""
        if self._released:
            return
        self._released = True
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewer
        # Shielded: a request cancelled meanwhile (a client gone, a shutdown) still frees
        # the conversation now rather than when the lease expires.
        await asyncio.shield(self._drop())

    async def _drop(self) -> None:
        try:
            await self.store.release_lease(self.owner, self.conversation_id, self.holder)
        except Exception:
            log.warning(
                "could not release the lease of response %s on %s (it expires by itself)",
                self.holder,
                self.conversation_id,
                exc_info=True,
            )
