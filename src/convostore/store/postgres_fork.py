"""Forking a conversation on PostgreSQL (issue 18): a mixin of
:class:`~convostore.store.postgres.PostgresStore`. The statements are in
:mod:`convostore.store.fork`; they run in one transaction that holds a share lock on the
source conversation's row (``FOR SHARE``): appends and item deletes lock that row first,
so they wait until the copy commits, and other forks of the same source run alongside."""

from __future__ import annotations

from convostore.store import fork
from convostore.store.base import ForkRequest, ListedConversation, Owner
from convostore.store.postgres_tx import Database
from convostore.store.sql import numbered

_SOURCE = numbered(fork.SOURCE + " FOR SHARE OF c")
_CREATE = numbered(fork.CREATE.format(metadata="?::bytea"))
_COPY = numbered(fork.COPY)
_COUNT = numbered(fork.COUNT)


class PostgresFork:
    db: Database

    async def fork_conversation(self, owner: Owner, request: ForkRequest) -> ListedConversation:
        async with self.db.transaction() as conn:
            found = await conn.fetchrow(
                _SOURCE, request.until, request.source_id, owner.project, owner.user
            )
            source, last = fork.bound(request, found)
            created = await conn.fetchrow(_CREATE, *fork.create_args(request, last, source))
            assert created is not None  # the source row is locked: it is there
            copied = int((await conn.execute(_COPY, created[0], source, last)).rpartition(" ")[2])
            await conn.execute(_COUNT, copied, created[0])
        return fork.forked(request, created, copied)
