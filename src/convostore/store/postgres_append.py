"""An append under a lease on PostgreSQL, the one statement and check that an append
checked against a lease (:meth:`append_items_leased`) and a response written back to a
conversation (``save_response``, ``finish_response``) share.

The append is one statement that locks the conversation row first (its ``UPDATE``), like
every write (see postgres.py); then the lease row is locked ``FOR UPDATE`` and checked,
in the same transaction: a takeover after expiry waits on that lock, so it cannot slip
in between the check and the commit (postgres_leases.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from convostore.store import postgres_search
from convostore.store.base import ConversationMissing, ItemConflict, LeaseLost, Owner, StoredItem

_APPEND = (
    "WITH c AS ("
    " UPDATE conversations SET next_seq = next_seq + cardinality($5::text[]),"
    " item_count = item_count + cardinality($5::text[]), updated_at = $4"
    " WHERE id = $1 AND project = $2 AND user_key = $3"
    " RETURNING pk, next_seq - cardinality($5::text[]) AS first), "
    + postgres_search.cte("c.first", "$9", "$10", "$11")
    + ", i AS (INSERT INTO items (conv, seq, id, type, body, mask)"
    " SELECT c.pk, c.first + t.n - 1, t.id, t.type, t.body, t.mask FROM c,"
    " unnest($5::text[], $6::text[], $7::bytea[], $8::bigint[])"
    " WITH ORDINALITY AS t(id, type, body, mask, n))"
    " SELECT pk FROM c"
)

_HOLDER = "SELECT holder FROM conversation_leases WHERE conv = $1 FOR UPDATE"


async def append(
    conn: Any,  # a pooled connection in a transaction (asyncpg's PoolConnectionProxy)
    owner: Owner,
    conversation_id: str,
    items: Sequence[StoredItem],
    holder: str | None,
    now: int | None = None,
) -> int:
    """Append ``items`` after every stored item, while ``holder`` (when given) holds the
    conversation's lease; the conversation's pk. Raises ConversationMissing, ItemConflict,
    LeaseLost."""
    try:
        pk: int | None = await conn.fetchval(
            _APPEND,
            conversation_id,
            owner.project,
            owner.user,
            int(time.time()) if now is None else now,
            [item.id for item in items],
            [item.type for item in items],
            [item.body for item in items],
            [item.mask for item in items],
            *postgres_search.args(owner, items),
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "items_conv_id":
            raise ItemConflict(str(exc)) from None
        raise
    if pk is None:
        raise ConversationMissing(conversation_id)
    if holder is not None and await conn.fetchval(_HOLDER, pk) != holder:
        raise LeaseLost(conversation_id)
    return pk
