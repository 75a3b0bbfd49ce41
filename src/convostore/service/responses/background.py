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
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from convostore import errors
from convostore.store.base import Store

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
