"""A turn's items: the conversation's history, read whole, and this request's input.

History is the conversation's items themselves, every page in order, read when the
response starts (after its lease is taken): an item added or deleted through the
Conversations API changes what the model sees on the next turn, and nothing is cached.

Before anything goes to the model server, the turn is checked the way OpenAI checks it:
an input item whose id the conversation already holds (or that repeats in the input) is
a duplicate, every ``function_call`` needs a ``function_call_output`` with its
``call_id`` after it, and every output needs its call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from convostore import errors
from convostore.service import store_errors
from convostore.service.responses.messages import Entry, Message, to_messages
from convostore.service.responses.request import ResponseRequest
from convostore.store.base import (
    AfterMissing,
    Owner,
    PageQuery,
    ResponseMissing,
    ResponseRunning,
    Store,
    StoredItem,
)

PAGE = 100
READ_ATTEMPTS = 3


async def read_history(store: Store, owner: Owner, conversation_id: str) -> list[StoredItem]:
    """Every item of the conversation, oldest first, following ``after`` cursors."""
    return (await read_items(store, owner, conversation_id, descending=False)).items


@dataclass(frozen=True, slots=True)
class Read:
    items: list[StoredItem]  # in list order
    cut: bool  # stopped because ``weigh`` passed ``limit``: older items were not read


async def read_items(
    store: Store,
    owner: Owner,
    conversation_id: str,
    *,
    descending: bool,
    last: Callable[[StoredItem], bool] | None = None,
    weigh: Callable[[StoredItem], int] | None = None,
    limit: int = 0,
) -> Read:
    """The conversation's items in list order, page by page, until the last page, an item
    ``last`` accepts (kept), or the items' ``weigh`` passing ``limit`` (the item that
    passes it kept). A cursor whose item is deleted meanwhile starts the read again (at
    most :data:`READ_ATTEMPTS`)."""
    for _ in range(READ_ATTEMPTS):
        items: list[StoredItem] = []
        total = 0
        after: str | None = None
        try:
            while True:
                query = PageQuery(after, PAGE, descending)
                page = await store.list_items(owner, conversation_id, query)
                for item in page.items:
                    items.append(item)
                    if last is not None and last(item):
                        return Read(items, False)
                    if weigh is not None:
                        total += weigh(item)
                        if total > limit:
                            return Read(items, True)
                if not page.has_more or not page.items:
                    return Read(items, False)
                after = page.items[-1].id
        except AfterMissing:
            continue  # the cursor's item was deleted while we read: read again
    raise errors.ServiceUnavailable(
        "The conversation changed too often while it was read; please retry."
    )


async def read_chain(store: Store, owner: Owner, previous_response_id: str) -> list[StoredItem]:
    """The inputs and outputs of a ``previous_response_id`` chain, oldest first, read in
    one statement (O(chain length)); 404 as OpenAI answers for an unknown id or another
    owner's."""
    try:
        return await store.response_history(owner, previous_response_id)
    except (ResponseMissing, ResponseRunning) as exc:
        failure = store_errors.api_error(exc, store_errors.PREVIOUS_RESPONSE_ERRORS)
        assert failure is not None  # the table has the rows
        raise failure from None


def entries(history: Sequence[StoredItem], inputs: Sequence[StoredItem]) -> list[Entry]:
    """History then input, decoded, each named for errors; duplicates refused."""
    held = {item.id for item in history}
    seen: set[str] = set()
    out = [
        Entry(orjson.loads(item.body), "conversation", f"conversation item '{item.id}'")
        for item in history
    ]
    for index, item in enumerate(inputs):
        if item.id in held or item.id in seen:
            raise errors.InvalidRequest(
                f"Duplicate item found with id {item.id}. Remove duplicate items from your "
                "input and try again.",
                param="input",
            )
        seen.add(item.id)
        out.append(Entry(orjson.loads(item.body), f"input[{index}]", f"'input[{index}]'"))
    return out


def check_tool_outputs(turn: Sequence[Entry]) -> None:
    """Every function call has its output after it, and every output its call."""
    calls: dict[str, int] = {}
    answered: set[str] = set()
    for entry in turn:
        item: dict[str, Any] = entry.item
        kind = item.get("type")
        if kind == "function_call":
            calls.setdefault(item["call_id"], 1)
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if call_id not in calls:
                raise errors.InvalidRequest(
                    f"No tool call found for function call output with call_id {call_id}.",
                    param="input",
                )
            answered.add(call_id)
    for call_id in calls:
        if call_id not in answered:
            raise errors.InvalidRequest(
                f"No tool output found for function call {call_id}.", param="input"
            )


def turn_messages(
    turn: Sequence[Entry], req: ResponseRequest, image_prefixes: Sequence[str]
) -> list[Message]:
    """The messages the model is sent for ``turn``, its tool calls and outputs checked
    first: with or without truncation and compaction, a turn becomes messages this way."""
    check_tool_outputs(turn)
    return to_messages(
        turn,
        instructions=req.instructions,
        all_reasoning=req.reasoning_context == "all_turns",
        image_prefixes=image_prefixes,
    )
