"""Stored responses (issue 17): retrieve, delete and list the input items of a response
that was made with ``store`` true (docs/responses.md, "Stored responses")."""

from __future__ import annotations

from typing import Any

import orjson

from convostore import errors
from convostore.items import include as includes
from convostore.store.base import ItemPage, Owner, PageQuery, Store


class StoredResponses:
    def __init__(self, store: Store):
        self.store = store

    async def retrieve(self, owner: Owner, response_id: str, include: int) -> dict[str, Any]:
        stored = await self.store.get_response(owner, response_id)  # 404: store_errors
        response: dict[str, Any] = orjson.loads(stored.record.body)
        _status(response, stored.record.status)
        response["output"] = [
            orjson.loads(includes.render(item.body, item.mask, include)) for item in stored.output
        ]
        return response

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
