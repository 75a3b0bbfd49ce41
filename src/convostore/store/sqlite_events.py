"""Events of streamed background responses on SQLite (issue 17): a mixin of
:class:`~convostore.store.sqlite.SQLiteStore`. Migration 0060 explains the table."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from convostore.store.base import StreamEvent
from convostore.store.sqlite_tx import Transactions

_RUNNING = "SELECT pk FROM responses WHERE id = ? AND status IN ('queued', 'in_progress')"


class SQLiteEvents:
    @property
    def transactions(self) -> Transactions:
        raise NotImplementedError

    async def append_response_events(
        self, response_id: str, first_seq: int, bodies: Sequence[bytes]
    ) -> bool:
        async with self.transactions.write() as db:
            row = db.execute(_RUNNING, (response_id,)).fetchone()
            if row is None:
                return False
            db.executemany(
                "INSERT INTO response_events (resp, seq, body) VALUES (?, ?, ?)",
                [(row[0], first_seq + n, body) for n, body in enumerate(bodies)],
            )
        return True

    async def end_response_events(self, response_id: str, make: Callable[[int], bytes]) -> bool:
        async with self.transactions.write() as db:
            row = db.execute(
                "SELECT p.pk, (SELECT max(seq) FROM response_events WHERE resp = p.pk),"
                " EXISTS (SELECT 1 FROM response_events WHERE resp = p.pk AND terminal)"
                " FROM responses p WHERE p.id = ? AND NOT p.deleted",
                (response_id,),
            ).fetchone()
            if row is None or row[1] is None or row[2]:  # not streamed, or ended
                return False
            seq = row[1]
            db.execute(
                "INSERT INTO response_events (resp, seq, terminal, body) VALUES (?, ?, 1, ?)",
                (row[0], seq + 1, make(seq + 1)),
            )
        return True

    async def response_events(self, response_id: str, after: int, limit: int) -> list[StreamEvent]:
        async with self.transactions.read() as db:
            rows = db.execute(
                "SELECT e.seq, e.body, e.terminal FROM response_events e"
                " JOIN responses p ON p.pk = e.resp WHERE p.id = ? AND e.seq > ?"
                " ORDER BY e.seq LIMIT ?",
                (response_id, after, limit),
            ).fetchall()
        return [StreamEvent(seq, bytes(body), bool(terminal)) for seq, body, terminal in rows]
