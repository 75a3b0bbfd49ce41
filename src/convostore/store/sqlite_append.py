"""How SQLite appends items, the one way every write of items takes (a plain append, a
create, an append under a lease, a response written back): reserve the positions with
the UPDATE that locks the conversation, check the lease when there is one, insert, and
queue the new positions for the search indexer (:func:`queue_search`, one row per
append).

Functions of the connection of a write transaction (:mod:`convostore.store.sqlite_tx`),
so the mixins of :class:`~convostore.store.sqlite.SQLiteStore` share them without
restating them."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from convostore.store import sql
from convostore.store.base import ItemConflict, LeaseLost, Owner, StoredItem

# The owner's conversation: pk, created_at, metadata.
_CONVERSATION = (
    "SELECT pk, created_at, metadata FROM conversations"
    " WHERE id = ? AND project = ? AND user_key = ?"
)

_QUEUE = (
    "INSERT INTO item_text_pending (conv, first_seq, last_seq, project, user_key)"
    " SELECT pk, ?2, ?3, project, user_key FROM conversations WHERE pk = ?1"
)


def conversation(db: sqlite3.Connection, owner: Owner, conversation_id: str) -> Any:
    """The owner's conversation's row: pk, created_at, metadata. Raises ConversationMissing."""
    row = db.execute(_CONVERSATION, (conversation_id, owner.project, owner.user)).fetchone()
    return sql.found_conversation(row, conversation_id)


def conversation_pk(db: sqlite3.Connection, owner: Owner, conversation_id: str) -> int:
    """The pk of the owner's conversation. Raises ConversationMissing."""
    return int(conversation(db, owner, conversation_id)[0])


def insert_items(
    db: sqlite3.Connection, pk: int, first_seq: int, items: Sequence[StoredItem]
) -> None:
    """The items at positions from ``first_seq`` on. Raises ItemConflict."""
    try:
        db.executemany(
            "INSERT INTO items (conv, seq, id, type, body, mask) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (pk, first_seq + n, item.id, item.type, item.body, item.mask)
                for n, item in enumerate(items)
            ],
        )
    except sqlite3.IntegrityError as exc:
        raise ItemConflict(str(exc)) from None
    if items:
        queue_search(db, pk, first_seq, first_seq + len(items) - 1)


def queue_search(db: sqlite3.Connection, pk: int, first_seq: int, last_seq: int) -> None:
    """Queue the items of conversation ``pk`` at positions ``first_seq`` to ``last_seq``
    for the search indexer: one row per write, whatever its size (migration 0100). Every
    statement that inserts items calls it in the same transaction (there is no insert
    trigger); positions without an item (deleted since, or never written) are skipped."""
    db.execute(_QUEUE, (pk, first_seq, last_seq))


def reserve(
    db: sqlite3.Connection, owner: Owner, conversation_id: str, count: int
) -> tuple[int, int]:
    """Lock the conversation and reserve ``count`` positions: (pk, the first one).
    The same UPDATE counts the items (``item_count``, migration 0011)."""
    row = db.execute(
        "UPDATE conversations SET next_seq = next_seq + ?1, item_count = item_count + ?1,"
        " updated_at = ?2 WHERE id = ?3 AND project = ?4 AND user_key = ?5"
        " RETURNING pk, next_seq",
        (count, int(time.time()), conversation_id, owner.project, owner.user),
    ).fetchone()
    sql.found_conversation(row, conversation_id)
    return int(row[0]), int(row[1]) - count


def append(
    db: sqlite3.Connection,
    owner: Owner,
    conversation_id: str,
    items: Sequence[StoredItem],
    holder: str | None = None,
) -> int:
    """Append ``items`` after every stored item, while ``holder`` (when given) holds the
    conversation's lease; the conversation's pk. Raises ConversationMissing, LeaseLost,
    ItemConflict."""
    pk, first = reserve(db, owner, conversation_id, len(items))
    if holder is not None and (
        db.execute(
            "SELECT 1 FROM conversation_leases WHERE conv = ? AND holder = ?", (pk, holder)
        ).fetchone()
        is None
    ):
        raise LeaseLost(conversation_id)
    if items:
        insert_items(db, pk, first, items)
    return pk
