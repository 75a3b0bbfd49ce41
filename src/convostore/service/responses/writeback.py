"""The write-back: what a finished response leaves behind, in one transaction.

* With ``conversation``: its input items, then its output items, appended to the
  conversation under the response's lease, whatever ``store`` says (OpenAI appends a
  ``store: false`` turn to its conversation too, per recorded traffic).
* With ``store`` true (the default): the response itself (:mod:`.stored`), its items
  referencing the conversation's when it has one.

The output items are stored exactly as the client saw them (same ids, same fields): the
service builds them through the item registry before they are sent, and stores those
bytes. Nothing is written for a response that failed, was cut, or whose client went away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from convostore.service import store_errors
from convostore.service.responses.lease import Lease
from convostore.service.responses.turn_context import TurnContext
from convostore.store.base import (
    Owner,
    ResponseRecord,
    Store,
    StoredItem,
    StoreError,
    Turn,
)


def record_of(response: dict[str, Any]) -> ResponseRecord:
    """The stored form of a Response object: everything but its output items (kept as
    ``[]`` in place, so a read puts them back where they were)."""
    body = {**response, "output": []}
    return ResponseRecord(
        response["id"],
        response["created_at"],
        response["status"],
        orjson.dumps(body),
        response.get("previous_response_id"),
    )


def turn_of(
    conversation_id: str | None,
    inputs: Sequence[StoredItem],
    outputs: Sequence[StoredItem],
    lease: Lease | None,
) -> Turn:
    """A response's items, and the conversation (and lease) they are appended under."""
    return Turn(inputs, outputs, conversation_id, None if lease is None else lease.holder)


async def write_back(
    store: Store, owner: Owner, response: dict[str, Any] | None, turn: Turn
) -> None:
    """Store what the response leaves: ``response`` (None: not stored) and, with a
    conversation, the turn appended to it."""
    if response is None and turn.conversation_id is None:
        return
    try:
        await store.save_response(owner, None if response is None else record_of(response), turn)
    except StoreError as exc:
        # Answered here, not by the app: a streamed response reports it in its stream.
        failure = store_errors.api_error(exc, store_errors.WRITE_BACK_ERRORS)
        if failure is None:  # StoreUnavailable: the caller answers 503
            raise
        raise failure from None


async def store_turn(
    store: Store, turn: TurnContext, response: dict[str, Any], stored: list[StoredItem]
) -> None:
    """The write-back of a finished response, whatever the path: the Response object if
    the request stores it, the turn appended if it has a conversation."""
    req = turn.req
    appended = turn_of(req.conversation_id, turn.inputs, stored, turn.lease)
    await write_back(store, turn.owner, response if req.store else None, appended)
