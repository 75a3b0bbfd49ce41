"""The one place where the store's facts become the API's errors: a table by exception
type (the way starlette maps exceptions to handlers).

A store reports what it found with a :class:`~convostore.store.base.StoreError` carrying
the id it concerns (``ConversationMissing("conv_1")``); services let those propagate,
and ``ConvoStore.answer`` turns them into the error envelope through :func:`api_error`.
The most specific type in the table wins, so a new store fact is a subclass plus a row
here (``SearchAfterMissing`` below). A use case that gives a fact another meaning
passes its own table, built from this one (:data:`WRITE_BACK_ERRORS`).

``StoreUnavailable`` is not in the table: it is not a fact about the data but the
database being down, answered 503 with ``Retry-After`` where it is caught.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from convostore import errors
from convostore.store.base import (
    AfterMissing,
    AnswerTaken,
    ConversationAfterMissing,
    ConversationBeforeMissing,
    ConversationMissing,
    ItemConflict,
    ItemMissing,
    LeaseHeld,
    LeaseLost,
    ResponseMissing,
    ResponseRunning,
    SearchAfterMissing,
    SearchTooCostly,
    StoreError,
    UntilMissing,
)

Meanings = Mapping[type[StoreError], Callable[[str], errors.ApiError]]

STORE_ERRORS: Meanings = {
    ConversationMissing: errors.conversation_not_found,
    ItemMissing: errors.item_not_in_conversation,
    UntilMissing: errors.until_not_found,
    AfterMissing: errors.after_not_found,
    ConversationAfterMissing: errors.conversation_after_not_found,
    ConversationBeforeMissing: errors.conversation_before_not_found,
    SearchAfterMissing: errors.search_after_not_found,
    ItemConflict: lambda _: errors.item_already_in_conversation(),
    # Caught by service/idempotency.py, which answers the stored answer; the row says what
    # the fact means should it ever reach a client: the key's answer is another request's.
    AnswerTaken: errors.idempotency_key_reused,
    LeaseHeld: lambda _: errors.conversation_locked(),
    SearchTooCostly: lambda detail: errors.InvalidRequest(
        f"Invalid 'q': the search did not finish in time ({detail}); search for longer"
        " or more words.",
        param="q",
        code="invalid_value",
    ),
    ResponseMissing: errors.response_not_found,
    ResponseRunning: errors.previous_response_running,  # only chains read a running one
    LeaseLost: lambda _: errors.InvalidRequest(
        "This response lost its hold on the conversation (its lease expired and another "
        "response took it); nothing was stored. Please retry.",
        code="conversation_locked",
    ),
}

# The write-back of a response (service/responses/writeback.py): its items met items that
# were added to the conversation while it ran.
WRITE_BACK_ERRORS: Meanings = {
    **STORE_ERRORS,
    ItemConflict: lambda _: errors.InvalidRequest(
        "Duplicate item found: an item of this response was added to the conversation "
        "while it ran; nothing was stored. Remove duplicate items from your input and try "
        "again.",
        param="input",
    ),
    # The previous response was deleted while this one ran (issue 17).
    ResponseMissing: errors.previous_response_not_found,
}

# previous_response_id names a response that is not there (issue 17): OpenAI's 404 with
# param previous_response_id.
PREVIOUS_RESPONSE_ERRORS: Meanings = {
    **STORE_ERRORS,
    ResponseMissing: errors.previous_response_not_found,
    ResponseRunning: errors.previous_response_running,
}


def api_error(exc: StoreError, meanings: Meanings = STORE_ERRORS) -> errors.ApiError | None:
    """The API's error for a store fact, or None for a type the table does not have."""
    for kind in type(exc).__mro__:
        meaning = meanings.get(kind)
        if meaning is not None:
            return meaning(str(exc.args[0]) if exc.args else "")
    return None
