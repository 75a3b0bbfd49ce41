"""Forking a conversation on SQLite (issue 18): a mixin of
:class:`~convostore.store.sqlite.SQLiteStore`. The statements are in
:mod:`convostore.store.fork`; they run in one write transaction, under the database
write lock, so nothing changes the source while it is copied."""

from __future__ import annotations

from convostore.store import fork, sqlite_append
from convostore.store.base import ForkRequest, ListedConversation, Owner
from convostore.store.sqlite_tx import Transactions

_CREATE = fork.CREATE.format(metadata="?")


class SQLiteFork:
    @property
    def transactions(self) -> Transactions:
        raise NotImplementedError

    async def fork_conversation(self, owner: Owner, request: ForkRequest) -> ListedConversation:
        async with self.transactions.write() as db:
            found = db.execute(
                fork.SOURCE, (request.until, request.source_id, owner.project, owner.user)
            ).fetchone()
            source, last = fork.bound(request, found)
            created = db.execute(_CREATE, fork.create_args(request, last, source)).fetchone()
            copied = db.execute(fork.COPY, (created[0], source, last)).rowcount
            if copied:
                sqlite_append.queue_search(db, created[0], 0, last)
            db.execute(fork.COUNT, (copied, created[0]))
        return fork.forked(request, created, copied)
