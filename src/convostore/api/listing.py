"""Handlers of the extension routes: list conversations, search items (issue 7).

``GET /v1/conversations`` and ``GET /v1/conversations/search`` (and under
``/openai/v1``); docs/list.md and docs/search.md describe them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from convostore import errors
from convostore.api import render
from convostore.api.owner import owner_of
from convostore.api.params import include_mask, list_query, refuse_unknown
from convostore.api.request import Request
from convostore.service import Services
from convostore.store.base import PageQuery

_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # unix seconds, ASCII digits only
_METADATA = re.compile(r"metadata\[(.*)\]", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ConversationListQuery:
    metadata: list[tuple[str, str]]
    created_after: int | None
    created_before: int | None


def _timestamp(request: Request, name: str) -> int | None:
    raw = request.query_value(name)
    if raw is None or raw == "":
        return None
    if not _TIMESTAMP.fullmatch(raw):
        raise errors.InvalidRequest(
            f"Invalid type for '{name}': expected an integer (unix seconds), but got "
            f"'{raw[:40]}' instead.",
            param=name,
            code="invalid_type",
        )
    return int(raw)


def conversation_list_query(request: Request) -> ConversationListQuery:
    metadata = []
    for key, value in request.query:
        found = _METADATA.fullmatch(key)
        if found:
            metadata.append((found.group(1), value))
    return ConversationListQuery(
        metadata, _timestamp(request, "created_after"), _timestamp(request, "created_before")
    )


LIST_PARAMETERS = frozenset(
    {"limit", "order", "after", "before", "include", "include[]", "created_after", "created_before"}
)
SEARCH_PARAMETERS = frozenset({"q", "limit", "order", "after", "include", "include[]"})


async def list_conversations(services: Services, request: Request) -> bytes:
    """List the caller's conversations, newest first (an extension, docs/list.md)."""
    refuse_unknown(request, LIST_PARAMETERS, _METADATA)
    page_query = list_query(request)
    query = conversation_list_query(request)
    paging = PageQuery(
        page_query.after,
        page_query.limit,
        page_query.descending,
        before=request.query_value("before") or None,
    )
    page = await services.listing.conversations(
        owner_of(request), query.metadata, query.created_after, query.created_before, paging
    )
    return render.conversation_list(page.conversations, page.has_more)


async def search(services: Services, request: Request) -> bytes:
    """Search the text of the caller's items (an extension, docs/search.md)."""
    refuse_unknown(request, SEARCH_PARAMETERS)
    page_query = list_query(request)
    q = request.query_value("q")
    if q is None:
        raise errors.missing_parameter("q")
    page = await services.listing.search(
        owner_of(request), q, after=page_query.after, limit=page_query.limit
    )
    return render.search_results(page.hits, include_mask(request), page.has_more)
