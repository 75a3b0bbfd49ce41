"""Forking a conversation on SQLite (issue 18): a mixin of
:class:`~convostore.store.sqlite.SQLiteStore`. The statements are in
:mod:`convostore.store.fork`; they run in one write transaction, under the database
write lock, so nothing changes the source while it is copied."""

from __future__ import annotations

from convostore.store import fork
from convostore.store.base import (
    ConversationMissing,
    ListedConversation,
    Owner,
    UntilMissing,
)
from convostore.store.sqlite_tx import Transactions

_CREATE = fork.CREATE.format(metadata="?")


class SQLiteFork:
    @property
    def transactions(self) -> Transactions:
        raise NotImplementedError

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
        async with self.transactions.write() as db:
            found = db.execute(
                fork.SOURCE, (until, source_id, owner.project, owner.user)
            ).fetchone()
            if found is None:
                raise ConversationMissing(source_id)
            source, next_seq, until_seq = found
            if until is not None and until_seq is None:
                raise UntilMissing(until)
            last = fork.bound(int(next_seq), until_seq)
            pk, stored_metadata, safety = db.execute(
                _CREATE, (new_id, created_at, created_at, metadata, last + 1, source)
            ).fetchone()
            copied = db.execute(fork.COPY, (pk, source, last)).rowcount
            db.execute(fork.COUNT, (copied, pk))
        return ListedConversation(
            new_id, created_at, stored_metadata, created_at, copied, safety_identifier=safety
        )
