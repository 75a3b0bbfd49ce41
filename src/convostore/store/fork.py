"""Forking a conversation (issue 18, docs/fork.md): the SQL both backends share, written
with ``?`` marks (:func:`convostore.store.sql.numbered` numbers them for PostgreSQL).

A fork is three set-based statements in one transaction, never a loop over items:

1. :data:`SOURCE` finds the source conversation of the owner, its ``next_seq`` and the
   position of the ``until`` item (NULL when absent or not in the conversation). On
   PostgreSQL it takes a share lock on the source row: appends and item deletes lock that
   row before they touch items, so they wait for the copy, and the copy is exact.
2. :data:`CREATE` inserts the new conversation under the owner of the source, with the
   given metadata or the source's, and the source's ``safety_identifier`` (D22: the same
   end user).
3. :data:`COPY` copies the items up to the bound with ``INSERT … SELECT`` over the
   ``(conv, seq)`` range of the source, keeping ids, bodies, masks and positions (a
   position is only an order inside one conversation, and deleted items already leave
   gaps). Search indexing follows as for any append: PostgreSQL's insert trigger, and on
   SQLite one queued range (``sqlite_append.queue_search``) over the copied positions.

The new conversation's ``next_seq`` is one past the last copied position, and its
``item_count`` is the number of rows the copy inserted (set by :data:`COUNT`).
"""

from __future__ import annotations

from typing import Any

from convostore.store.base import ConversationMissing, ForkRequest, ListedConversation, UntilMissing

SOURCE = (
    "SELECT c.pk, c.next_seq, a.seq FROM conversations c"
    " LEFT JOIN items a ON a.conv = c.pk AND a.id = ?"
    " WHERE c.id = ? AND c.project = ? AND c.user_key = ?"
)

CREATE = (
    "INSERT INTO conversations"
    " (id, project, user_key, created_at, updated_at, metadata, next_seq, item_count,"
    " safety_identifier)"
    " SELECT ?, project, user_key, ?, ?, coalesce({metadata}, metadata), ?, 0,"
    " safety_identifier FROM conversations WHERE pk = ? RETURNING pk, metadata,"
    " safety_identifier"
)

COPY = (
    "INSERT INTO items (conv, seq, id, type, body, mask)"
    " SELECT ?, seq, id, type, body, mask FROM items WHERE conv = ? AND seq <= ? ORDER BY seq"
)

COUNT = "UPDATE conversations SET item_count = ? WHERE pk = ?"


def bound(request: ForkRequest, found: Any) -> tuple[int, int]:
    """From :data:`SOURCE`'s row: the source's pk and the last position copied (the
    ``until`` item's, or every position reserved so far). Raises ConversationMissing,
    UntilMissing."""
    if found is None:
        raise ConversationMissing(request.source_id)
    source, next_seq, until_seq = found
    if request.until is None:
        return int(source), int(next_seq) - 1
    if until_seq is None:
        raise UntilMissing(request.until)
    return int(source), int(until_seq)


def create_args(request: ForkRequest, last: int, source: int) -> tuple[Any, ...]:
    """The arguments of :data:`CREATE`."""
    created = request.created_at
    return (request.new_id, created, created, request.metadata, last + 1, source)


def forked(request: ForkRequest, created: Any, copied: int) -> ListedConversation:
    """The new conversation, from :data:`CREATE`'s row (pk, metadata, safety_identifier)."""
    created_at = request.created_at
    return ListedConversation(
        request.new_id, created_at, created[1], created_at, copied, safety_identifier=created[2]
    )
