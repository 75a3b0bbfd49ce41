"""Handlers of the item routes: parse, call one service function, serialize."""

from __future__ import annotations

from convostore.api import render
from convostore.api.idempotency import key_of
from convostore.api.owner import owner_of
from convostore.api.params import include_mask, list_query
from convostore.api.request import Request
from convostore.service import Services


async def create(services: Services, request: Request) -> bytes:
    include = include_mask(request)
    key = await key_of(request)
    return await services.items.create(
        owner_of(request),
        request.params[0],
        await request.json(),
        lambda items: render.item_list(items, include, has_more=False),
        key,
    )


async def list_(services: Services, request: Request) -> bytes:
    query = list_query(request)
    page = await services.items.list(owner_of(request), request.params[0], query)
    return render.item_list(page.items, query.include, page.has_more)


async def retrieve(services: Services, request: Request) -> bytes:
    include = include_mask(request)
    stored = await services.items.get(owner_of(request), *request.params)
    return render.item(stored, include)


async def delete(services: Services, request: Request) -> bytes:
    row = await services.items.delete(owner_of(request), *request.params)
    return render.conversation(row)
