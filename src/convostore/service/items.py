"""Create, list, retrieve and delete the items of a conversation.

What the store reports (an unknown conversation, item or cursor, an id already there)
propagates as the store's fact and becomes the API's error in one place
(:mod:`convostore.service.store_errors`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from convostore.service import bodies
from convostore.service.idempotency import Idempotency, Remember, RequestKey
from convostore.service.materialize import Materializer
from convostore.store.base import (
    ConversationRow,
    ItemAppend,
    ItemPage,
    Owner,
    PageQuery,
    Store,
    StoredItem,
)


class Items:
    def __init__(
        self,
        store: Store,
        materializer: Materializer,
        idempotency: Idempotency,
        page_max_bytes: int | None = None,
    ):
        self.store = store
        self.materializer = materializer
        self.idempotency = idempotency
        self.page_max_bytes = page_max_bytes  # a page stops there and says has_more

    async def create(
        self,
        owner: Owner,
        conversation_id: str,
        body: Any,
        answer: Callable[[list[StoredItem]], bytes],
        key: RequestKey | None = None,
    ) -> bytes:
        """The answer to an append (``answer`` renders it), or the one kept under ``key``."""

        async def write(remember: Remember) -> bytes:
            checked = bodies.CREATE_ITEMS.check({} if body is None else body)
            raw_items = checked["items"]
            prepared = self.materializer.validate(raw_items)
            named = self.materializer.named_ids(prepared)
            if named:
                # Lookups name other conversations: answer for this one first (404 before 404).
                await self.store.get_conversation(owner, conversation_id)
            items = await self.materializer.materialize(owner, prepared, named)
            reply = answer(items)
            await self.store.append_items(
                owner, ItemAppend(conversation_id, items, remember(reply))
            )
            return reply

        return await self.idempotency.once(owner, key, write)

    async def list(self, owner: Owner, conversation_id: str, page: PageQuery) -> ItemPage:
        if self.page_max_bytes is not None:
            page = replace(page, max_bytes=self.page_max_bytes)
        return await self.store.list_items(owner, conversation_id, page)

    async def get(self, owner: Owner, conversation_id: str, item_id: str) -> StoredItem:
        return await self.store.get_item(owner, conversation_id, item_id)

    async def delete(self, owner: Owner, conversation_id: str, item_id: str) -> ConversationRow:
        return await self.store.delete_item(owner, conversation_id, item_id)
