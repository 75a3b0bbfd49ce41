"""Create, retrieve, update and delete conversations (the store's facts become API errors
in :mod:`convostore.service.store_errors`)."""

from __future__ import annotations

import time
from typing import Any

from convostore import ids
from convostore.service import bodies
from convostore.service.materialize import Materializer
from convostore.store.base import ConversationRow, Owner, Store

CREATE_KEYS = ("items", "metadata")
UPDATE_KEYS = ("metadata",)


class Conversations:
    def __init__(self, store: Store, materializer: Materializer):
        self.store = store
        self.materializer = materializer

    async def create(self, owner: Owner, body: Any) -> ConversationRow:
        body = bodies.object_body({} if body is None else body, CREATE_KEYS)
        raw_items = bodies.items_list(body.get("items"), required=False)
        metadata = bodies.metadata_json(body.get("metadata"))
        prepared = self.materializer.validate(raw_items)
        named = self.materializer.named_ids(prepared)
        items = await self.materializer.materialize(owner, prepared, named)
        row = ConversationRow(ids.new_conversation_id(), int(time.time()), metadata)
        await self.store.create_conversation(owner, row, items)
        return row

    async def get(self, owner: Owner, conversation_id: str) -> ConversationRow:
        return await self.store.get_conversation(owner, conversation_id)

    async def update(self, owner: Owner, conversation_id: str, body: Any) -> ConversationRow:
        body = bodies.object_body(body, UPDATE_KEYS, required=UPDATE_KEYS)
        metadata = bodies.metadata_json(body["metadata"])
        return await self.store.set_metadata(owner, conversation_id, metadata)

    async def delete(self, owner: Owner, conversation_id: str) -> None:
        await self.store.delete_conversation(owner, conversation_id)
