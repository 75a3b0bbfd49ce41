"""The write-back: a finished response's input items, then its output items, appended
to the conversation in one transaction, under the response's lease.

The output items are stored exactly as the client saw them (same ids, same fields): the
service builds them through the item registry before they are sent, and stores those
bytes. Nothing is written for a response that failed, was cut, or whose client went away.
"""

from __future__ import annotations

from collections.abc import Sequence

from convostore.service import store_errors
from convostore.service.responses.lease import Lease
from convostore.store.base import StoredItem, StoreError


async def write_back(
    lease: Lease, inputs: Sequence[StoredItem], outputs: Sequence[StoredItem]
) -> None:
    try:
        await lease.store.append_items_leased(
            lease.owner, lease.conversation_id, [*inputs, *outputs], lease.holder
        )
    except StoreError as exc:
        # Answered here, not by the app: a streamed response reports it in its stream.
        failure = store_errors.api_error(exc, store_errors.WRITE_BACK_ERRORS)
        if failure is None:  # StoreUnavailable: the caller answers 503
            raise
        raise failure from None
