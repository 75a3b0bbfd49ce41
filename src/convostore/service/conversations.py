"""Create, retrieve, update and delete conversations (the store's facts become API errors
in :mod:`convostore.service.store_errors`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from convostore import ids
from convostore.service import bodies
from convostore.service.idempotency import Idempotency, Remember, RequestKey
from convostore.service.materialize import Materializer
from convostore.store.base import (
    ConversationRow,
    ForkRequest,
    ListedConversation,
    MetadataUpdate,
    NewConversation,
    Owner,
    Store,
)


class Conversations:
    def __init__(self, store: Store, materializer: Materializer, idempotency: Idempotency):
        self.store = store
        self.materializer = materializer
        self.idempotency = idempotency

    async def create(
        self,
        owner: Owner,
        body: Any,
        answer: Callable[[ConversationRow], bytes],
        key: RequestKey | None = None,
    ) -> bytes:
        """The answer to a create (``answer`` renders it), or the one kept under ``key``."""

        async def write(remember: Remember) -> bytes:
            checked = bodies.CREATE_CONVERSATION.check({} if body is None else body)
            raw_items = checked.get("items") or []
            metadata = bodies.stored_metadata(checked.get("metadata"))
            prepared = self.materializer.validate(raw_items)
            named = self.materializer.named_ids(prepared)
            items = await self.materializer.materialize(owner, prepared, named)
            row = ConversationRow(
                ids.new_conversation_id(),
                int(time.time()),
                metadata,
                safety_identifier=checked.get("safety_identifier"),
            )
            reply = answer(row)
            await self.store.create_conversation(
                owner, NewConversation(row, items, remember(reply))
            )
            return reply

        return await self.idempotency.once(owner, key, write)

    async def get(self, owner: Owner, conversation_id: str) -> ConversationRow:
        return await self.store.get_conversation(owner, conversation_id)

    async def update(
        self,
        owner: Owner,
        conversation_id: str,
        body: Any,
        answer: Callable[[ConversationRow], bytes],
        key: RequestKey | None = None,
    ) -> bytes:
        async def write(remember: Remember) -> bytes:
            checked = bodies.UPDATE_CONVERSATION.check(body)
            metadata = bodies.stored_metadata(checked["metadata"])
            if key is None:
                return answer(
                    await self.store.set_metadata(owner, MetadataUpdate(conversation_id, metadata))
                )
            # The answer is kept with the write, so it is rendered first: created_at never
            # changes, and a conversation deleted meanwhile fails the write (404).
            current = await self.get(owner, conversation_id)
            reply = answer(ConversationRow(conversation_id, current.created_at, metadata))
            await self.store.set_metadata(
                owner, MetadataUpdate(conversation_id, metadata, remember(reply))
            )
            return reply

        return await self.idempotency.once(owner, key, write)

    async def delete(self, owner: Owner, conversation_id: str) -> None:
        await self.store.delete_conversation(owner, conversation_id)

    async def fork(self, owner: Owner, conversation_id: str, body: Any) -> ListedConversation:
        """A new conversation with the items up to ``until`` (all without it), their ids
        kept (D21), and the given metadata or the source's (docs/fork.md)."""
        body = bodies.FORK_CONVERSATION.check({} if body is None else body)
        until = body.get("until")
        metadata = bodies.stored_metadata(body["metadata"]) if "metadata" in body else None
        request = ForkRequest(
            conversation_id, ids.new_conversation_id(), int(time.time()), metadata, until
        )
        return await self.store.fork_conversation(owner, request)
