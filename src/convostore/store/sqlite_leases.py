"""Response leases on SQLite (issue 10): one response in flight per conversation.

A mixin of :class:`~convostore.store.sqlite.SQLiteStore`. Each statement runs in a
``BEGIN IMMEDIATE`` transaction, so under the database's write lock: reading a lease and
replacing it cannot interleave with another process doing the same, and the append that
writes a response back checks its lease in the transaction that inserts the items.
Expiry is judged by the servers' clock (``time.time()``): every process sharing the file
runs on one machine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from convostore.store import sqlite_append
from convostore.store.base import (
    LeaseHeld,
    Owner,
    StoredItem,
)
from convostore.store.sqlite_tx import Transactions

_PK = "SELECT pk FROM conversations WHERE id = ? AND project = ? AND user_key = ?"


class SQLiteLeases:
    """take, renew and release a conversation's lease; append under it."""

    @property
    def transactions(self) -> Transactions:
        raise NotImplementedError

    async def take_lease(
        self, owner: Owner, conversation_id: str, holder: str, seconds: float
    ) -> None:
        now = time.time()
        async with self.transactions.write() as db:
            pk = sqlite_append.conversation_pk(db, owner, conversation_id)
            taken = db.execute(
                "INSERT INTO conversation_leases (conv, holder, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (conv) DO UPDATE SET holder = excluded.holder,"
                " expires_at = excluded.expires_at"
                " WHERE conversation_leases.expires_at < ? OR conversation_leases.holder = ?"
                " RETURNING conv",
                (pk, holder, now + seconds, now, holder),
            ).fetchone()
            if taken is None:
                raise LeaseHeld(conversation_id)

    async def renew_lease(
        self, owner: Owner, conversation_id: str, holder: str, seconds: float
    ) -> bool:
        async with self.transactions.write() as db:
            cursor = db.execute(
                f"UPDATE conversation_leases SET expires_at = ? WHERE conv = ({_PK}) AND holder = ?",
                (time.time() + seconds, conversation_id, owner.project, owner.user, holder),
            )
        return cursor.rowcount > 0

    async def release_lease(self, owner: Owner, conversation_id: str, holder: str) -> None:
        async with self.transactions.write() as db:
            db.execute(
                f"DELETE FROM conversation_leases WHERE conv = ({_PK}) AND holder = ?",
                (conversation_id, owner.project, owner.user, holder),
            )

    async def append_items_leased(
        self, owner: Owner, conversation_id: str, items: Sequence[StoredItem], holder: str
    ) -> None:
        """``append_items``, committed only while ``holder`` still holds the lease."""
        async with self.transactions.write() as db:
            sqlite_append.append(db, owner, conversation_id, items, holder)
