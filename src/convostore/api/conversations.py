"""Handlers of the conversation routes: parse, call one service function, serialize."""

from __future__ import annotations

from convostore.api import render
from convostore.api.idempotency import key_of
from convostore.api.owner import owner_of
from convostore.api.request import Request
from convostore.service import Services


async def create(services: Services, request: Request) -> bytes:
    key = await key_of(request)
    return await services.conversations.create(
        owner_of(request), await request.json(), render.conversation, key
    )


async def retrieve(services: Services, request: Request) -> bytes:
    row = await services.conversations.get(owner_of(request), request.params[0])
    return render.conversation(row)


async def update(services: Services, request: Request) -> bytes:
    key = await key_of(request)
    return await services.conversations.update(
        owner_of(request), request.params[0], await request.json(), render.conversation, key
    )


async def delete(services: Services, request: Request) -> bytes:
    conversation_id = request.params[0]
    await services.conversations.delete(owner_of(request), conversation_id)
    return render.deleted_conversation(conversation_id)


async def fork(services: Services, request: Request) -> bytes:
    """Fork a conversation at an item (an extension, docs/fork.md)."""
    row = await services.conversations.fork(
        owner_of(request), request.params[0], await request.json()
    )
    return render.listed_conversation(row)
