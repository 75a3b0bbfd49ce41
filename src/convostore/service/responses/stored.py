"""Stored responses (issue 17): retrieve, delete and list the input items of a response
that was made with ``store`` true (docs/responses.md, "Stored responses")."""

from __future__ import annotations

from typing import Any

import orjson

from convostore import errors
from convostore.items import include as includes
from convostore.service.responses import events
from convostore.store.base import RUNNING, ItemPage, Owner, PageQuery, Store
from convostore.upstream import UpstreamConfig

NOT_STREAMED = (
    "This response cannot be streamed: only a response created with background=true and "
    "stream=true keeps its events. Retrieve it without stream."
)  # convostore's wording


class StoredResponses:
    def __init__(self, store: Store, hub: events.Hub, config: UpstreamConfig):
        self.store = store
        self.hub = hub
        self.config = config

    async def retrieve(self, owner: Owner, response_id: str, include: int) -> dict[str, Any]:
        stored = await self.store.get_response(owner, response_id)  # 404: store_errors
        response: dict[str, Any] = orjson.loads(stored.record.body)
        _status(response, stored.record.status)
        response["output"] = [
            orjson.loads(includes.render(item.body, item.mask, include)) for item in stored.output
        ]
        return response

    async def stream(self, owner: Owner, response_id: str, after: int) -> events.Follower:
        """``GET /v1/responses/{id}?stream=true&starting_after=N``: the response's events
        after ``N``, stored then live, from any process (:mod:`.events`)."""
        await self.store.get_response(owner, response_id)  # 404; a dead one marked failed
        first = await self.store.response_events(response_id, -1, 1)
        if not first:
            raise errors.InvalidRequest(NOT_STREAMED, param="stream")
        return self.follower(owner, response_id, after)

    def follower(self, owner: Owner, response_id: str, after: int) -> events.Follower:
        return events.Follower(
            self.store,
            self.hub,
            owner,
            response_id,
            after,
            self.config.stream_poll_seconds,
            max(self.config.stream_poll_seconds, self.config.lease_seconds / 3),
            self.finished,
        )

    async def finished(self, owner: Owner, response_id: str) -> dict[str, Any] | None:
        """The response if it has finished (dead ones are marked failed by the read)."""
        response = await self.retrieve(owner, response_id, 0)
        return None if response["status"] in RUNNING else response

    async def cancel(self, owner: Owner, response_id: str) -> dict[str, Any]:
        """Cancel a background response, from any server process (its runner stops at its
        next renewal); a finished one is answered as it is."""
        stored = await self.store.get_response(owner, response_id)
        if not orjson.loads(stored.record.body).get("background"):
            # Wording not seen in OpenAI traffic: convostore's own.
            raise errors.InvalidRequest(
                "Only responses created with background=true can be cancelled."
            )
        stored = await self.store.cancel_response(owner, response_id)
        response: dict[str, Any] = orjson.loads(stored.record.body)
        _status(response, stored.record.status)
        response["output"] = [orjson.loads(item.body) for item in stored.output]
        if response["status"] not in RUNNING:  # a streamed one's stream ends now
            await events.end(self.store, self.hub, response_id, events.terminal_of(response))
        return response

    async def delete(self, owner: Owner, response_id: str) -> None:
        await self.store.delete_response(owner, response_id)

    async def input_items(self, owner: Owner, response_id: str, page: PageQuery) -> ItemPage:
        return await self.store.list_response_inputs(owner, response_id, page)


DIED = "The server process running this response stopped before it finished."


def _status(response: dict[str, Any], status: str) -> None:
    """A background response's status is the row's (the body is its last snapshot)."""
    if response.get("status") == status:
        return
    response["status"] = status
    if status == "failed" and response.get("error") is None:
        response["error"] = {"code": "server_error", "message": DIED}
