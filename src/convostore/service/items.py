"""Create, list, retrieve and delete the items of a conversation."""

from __future__ import annotations

from typing import Any

from convostore import errors
from convostore.service import bodies
from convostore.service.materialize import Materializer
from convostore.store.base import (
    AfterMissing,
    ConversationMissing,
    ConversationRow,
    ItemConflict,
    ItemMissing,
    ItemPage,
    Owner,
    Store,
    StoredItem,
)

CREATE_KEYS = ("items",)


class Items:
    def __init__(self, store: Store, materializer: Materializer):
        self.store = store
        self.materializer = materializer

    async def create(self, owner: Owner, conversation_id: str, body: Any) -> list[StoredItem]:
        body = bodies.object_body({} if body is None else body, CREATE_KEYS, required=CREATE_KEYS)
        raw_items = bodies.items_list(body["items"], required=True)
        prepared = self.materializer.validate(raw_items)
        named = self.materializer.named_ids(prepared)
        try:
            if named:
                # Lookups name other conversations: answer for this one first (404 before 404).
                await self.store.get_conversation(owner, conversation_id)
            items = await self.materializer.materialize(owner, prepared, named)
            await self.store.append_items(owner, conversation_id, items)
        except ConversationMissing:
            raise errors.conversation_not_found(conversation_id) from None
        except ItemConflict:
            raise errors.item_already_in_conversation() from None
        return items

    async def list(
        self,
        owner: Owner,
        conversation_id: str,
        *,
        after: str | None,
        limit: int,
        descending: bool,
    ) -> ItemPage:
        try:
            return await self.store.list_items(
                owner, conversation_id, after=after, limit=limit, descending=descending
            )
        except ConversationMissing:
            raise errors.conversation_not_found(conversation_id) from None
        except AfterMissing:
            raise errors.after_not_found(after or "") from None

    async def get(self, owner: Owner, conversation_id: str, item_id: str) -> StoredItem:
        try:
            return await self.store.get_item(owner, conversation_id, item_id)
        except ConversationMissing:
            raise errors.conversation_not_found(conversation_id) from None
        except ItemMissing:
            raise errors.item_not_in_conversation(item_id) from None

    async def delete(self, owner: Owner, conversation_id: str, item_id: str) -> ConversationRow:
        try:
            return await self.store.delete_item(owner, conversation_id, item_id)
        except ConversationMissing:
            raise errors.conversation_not_found(conversation_id) from None
        except ItemMissing:
            raise errors.item_not_in_conversation(item_id) from None
