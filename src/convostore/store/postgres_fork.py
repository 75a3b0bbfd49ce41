"""Forking a conversation on PostgreSQL (issue 18): a mixin of
:class:`~convostore.store.postgres.PostgresStore`. The statements are in
:mod:`convostore.store.fork`; they run in one transaction that holds a share lock on the
source conversation's row (``FOR SHARE``): appends and item deletes lock that row first,
so they wait until the copy commits, and other forks of the same source run alongside."""

from __future__ import annotations

from convostore.store import fork
from convostore.store.base import (
    ConversationMissing,
    ListedConversation,
    Owner,
    UntilMissing,
)
from convostore.store.postgres_tx import Database
from convostore.store.sql import numbered

_SOURCE = numbered(fork.SOURCE + " FOR SHARE OF c")
_CREATE = numbered(fork.CREATE.format(metadata="?::bytea"))
_COPY = numbered(fork.COPY)
_COUNT = numbered(fork.COUNT)


class PostgresFork:
    db: Database

    async def fork_conversation(
        self,
        owner: Owner,
        source_id: str,
        *,
        new_id: str,
        created_at: int,
        metadata: bytes | None,
        until: str | None,
    ) -> ListedConversation:
        async with self.db.transaction() as conn:
            found = await conn.fetchrow(_SOURCE, until, source_id, owner.project, owner.user)
            if found is None:
                raise ConversationMissing(source_id)
            source, next_seq, until_seq = found
            if until is not None and until_seq is None:
                raise UntilMissing(until)
            last = fork.bound(int(next_seq), until_seq)
            created = await conn.fetchrow(
                _CREATE, new_id, created_at, created_at, metadata, last + 1, source
            )
            assert created is not None  # the source row is locked: it is there
            pk = created[0]
            status = await conn.execute(_COPY, pk, source, last)
            copied = int(status.rpartition(" ")[2])
            await conn.execute(_COUNT, copied, pk)
        return ListedConversation(
            new_id, created_at, created[1], created_at, copied, safety_identifier=created[2]
        )
