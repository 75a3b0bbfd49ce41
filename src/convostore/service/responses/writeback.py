"""The write-back: a finished response's input items, then its output items, appended
to the conversation in one transaction, under the response's lease.

The output items are stored exactly as the client saw them (same ids, same fields): the
service builds them through the item registry before they are sent, and stores those
bytes. Nothing is written for a response that failed, was cut, or whose client went away.
"""

from __future__ import annotations

from collections.abc import Sequence

from convostore import errors
from convostore.service.responses.lease import Lease
from convostore.store.base import ConversationMissing, ItemConflict, LeaseLost, StoredItem


async def write_back(
    lease: Lease, inputs: Sequence[StoredItem], outputs: Sequence[StoredItem]
) -> None:
    try:
        await lease.store.append_items_leased(
            lease.owner, lease.conversation_id, [*inputs, *outputs], lease.holder
        )
    except LeaseLost:
        raise errors.InvalidRequest(
            "This response lost its hold on the conversation (its lease expired and another "
            "response took it); nothing was stored. Please retry.",
            code="conversation_locked",
        ) from None
    except ItemConflict:
        raise errors.InvalidRequest(
            "Duplicate item found: an item of this response was added to the conversation "
            "while it ran; nothing was stored. Remove duplicate items from your input and try "
            "again.",
            param="input",
        ) from None
    except ConversationMissing:
        raise errors.conversation_not_found(lease.conversation_id) from None
