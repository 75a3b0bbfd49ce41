"""Response bodies, assembled from stored JSON bytes without decoding them."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from convostore.errors import ApiError
from convostore.items.include import render as render_item
from convostore.store.base import ConversationRow, ListedConversation, SearchHit, StoredItem


def conversation(row: ConversationRow) -> bytes:
    return b"".join(
        (
            b'{"id":',
            orjson.dumps(row.id),
            b',"object":"conversation","created_at":',
            str(row.created_at).encode(),
            b',"metadata":',
            row.metadata,
            b"}",
        )
    )


def deleted_conversation(conversation_id: str) -> bytes:
    return (
        b'{"id":'
        + orjson.dumps(conversation_id)
        + b',"object":"conversation.deleted","deleted":true}'
    )


def item(stored: StoredItem, include: int) -> bytes:
    return render_item(stored.body, stored.mask, include)


EMPTY_LIST = b'{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false}'


def item_list(items: Sequence[StoredItem], include: int, has_more: bool) -> bytes:
    if not items:
        return EMPTY_LIST
    gated = 0
    for stored in items:
        gated |= stored.mask
    if gated & ~include:  # some item carries a field the request did not ask for
        data = b",".join([render_item(i.body, i.mask, include) for i in items])
    else:  # the stored bytes as they are (a text-only page always)
        data = b",".join([i.body for i in items])
    return page(data, items[0].id, items[-1].id, has_more)


def page(data: bytes, first_id: str, last_id: str, has_more: bool) -> bytes:
    """The list envelope every list route answers, around ``data`` (its joined entries)."""
    return b"".join(
        (
            b'{"object":"list","data":[',
            data,
            b'],"first_id":',
            orjson.dumps(first_id),
            b',"last_id":',
            orjson.dumps(last_id),
            b',"has_more":',
            b"true" if has_more else b"false",
            b"}",
        )
    )


def error(exc: ApiError) -> bytes:
    """The OpenAI error envelope: the one place an error body is made (D17)."""
    return orjson.dumps(
        {"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}}
    )


# -- the extensions (issue 7) ---------------------------------------------------------------


def listed_conversation(row: ListedConversation) -> bytes:
    """A ConversationResource with what only the list extension adds (docs/list.md)."""
    return b"".join(
        (
            conversation(row)[:-1],
            b',"item_count":',
            str(row.item_count).encode(),
            b',"last_active_at":',
            str(row.last_active_at).encode(),
            b',"safety_identifier":',
            orjson.dumps(row.safety_identifier),
            b"}",
        )
    )


def conversation_list(rows: Sequence[ListedConversation], has_more: bool) -> bytes:
    """A page of conversations, in ConversationItemList's envelope (D2 when empty)."""
    if not rows:
        return EMPTY_LIST
    data = b",".join([listed_conversation(row) for row in rows])
    return page(data, rows[0].id, rows[-1].id, has_more)


def search_results(hits: Sequence[SearchHit], include: int, has_more: bool) -> bytes:
    """A page of search hits: each names its conversation and carries the item; its ``id``
    (``conversation id/item id``) is the cursor for ``after``."""
    if not hits:
        return EMPTY_LIST
    ids = [f"{hit.conversation_id}/{hit.item.id}" for hit in hits]
    data = b",".join(
        [
            b"".join(
                (
                    b'{"object":"conversation.item.search_result","id":',
                    orjson.dumps(cursor),
                    b',"conversation_id":',
                    orjson.dumps(hit.conversation_id),
                    b',"item":',
                    render_item(hit.item.body, hit.item.mask, include),
                    b"}",
                )
            )
            for cursor, hit in zip(ids, hits, strict=True)
        ]
    )
    return page(data, ids[0], ids[-1], has_more)
