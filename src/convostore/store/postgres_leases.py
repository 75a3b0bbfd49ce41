"""Response leases on PostgreSQL (issue 10): one response in flight per conversation,
across every server process on every machine.

A mixin of :class:`~convostore.store.postgres.PostgresStore`.

* Taking a lease is one statement, ``INSERT … ON CONFLICT (conv) DO UPDATE … WHERE
  expires_at < now OR holder = me``: two processes racing for one conversation serialize
  on the lease row, and the second re-checks the ``WHERE`` against the first's committed
  row (READ COMMITTED), so exactly one of them gets it.
* Expiry is judged by the database's clock (``clock_timestamp()``), the one clock every
  process shares; a crashed process's lease frees the conversation when it expires.
* The write-back appends the items (which locks the conversation row first, like every
  write, see postgres.py) and then locks the lease row ``FOR UPDATE`` and checks that it
  is still the holder's, in one transaction: a lease taken over after expiry rolls the
  append back, and a takeover cannot slip in between the check and the commit because
  it waits on the lease row lock. Lock order is the conversation row, then the lease
  row, as for ``DELETE`` of a conversation (whose cascade deletes the lease row), so the
  two never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from convostore.store import postgres_append
from convostore.store.base import (
    ConversationMissing,
    LeaseHeld,
    Owner,
    StoredItem,
)
from convostore.store.postgres_tx import Database

_NOW = "extract(epoch FROM clock_timestamp())::float8"
_PK = "SELECT pk FROM conversations WHERE id = $1 AND project = $2 AND user_key = $3"

_TAKE = (
    f"WITH c AS ({_PK}),"
    " t AS ("
    " INSERT INTO conversation_leases (conv, holder, expires_at)"
    f" SELECT pk, $4, {_NOW} + $5::float8 FROM c"
    " ON CONFLICT (conv) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at"
    f" WHERE conversation_leases.expires_at < {_NOW} OR conversation_leases.holder = EXCLUDED.holder"
    " RETURNING conv)"
    " SELECT (SELECT pk FROM c) AS pk, (SELECT conv FROM t) AS taken"
)

_RENEW = (
    f"UPDATE conversation_leases SET expires_at = {_NOW} + $5::float8"
    f" WHERE conv = ({_PK}) AND holder = $4"
)

_RELEASE = f"DELETE FROM conversation_leases WHERE conv = ({_PK}) AND holder = $4"


class PostgresLeases:
    """take, renew and release a conversation's lease; append under it."""

    db: Database

    async def take_lease(
        self, owner: Owner, conversation_id: str, holder: str, seconds: float
    ) -> None:
        try:
            row = await self.db.fetchrow(
                _TAKE, conversation_id, owner.project, owner.user, holder, seconds, writes=True
            )
        except asyncpg.ForeignKeyViolationError:  # deleted while we asked
            raise ConversationMissing(conversation_id) from None
        if row is None or row["pk"] is None:
            raise ConversationMissing(conversation_id)
        if row["taken"] is None:
            raise LeaseHeld(conversation_id)

    async def renew_lease(
        self, owner: Owner, conversation_id: str, holder: str, seconds: float
    ) -> bool:
        status = await self.db.execute(
            _RENEW, conversation_id, owner.project, owner.user, holder, seconds
        )
        return status.rpartition(" ")[2] != "0"

    async def release_lease(self, owner: Owner, conversation_id: str, holder: str) -> None:
        await self.db.execute(_RELEASE, conversation_id, owner.project, owner.user, holder)

    async def append_items_leased(
        self, owner: Owner, conversation_id: str, items: Sequence[StoredItem], holder: str
    ) -> None:
        async with self.db.transaction() as conn:
            await postgres_append.append(conn, owner, conversation_id, items, holder)
