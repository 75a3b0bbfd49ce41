"""Events of streamed background responses on PostgreSQL (issue 17): a mixin of
:class:`~convostore.store.postgres.PostgresStore`. Migration 0060 explains the table.

The terminal event is appended under the response row's lock (``FOR UPDATE``), so two
processes ending the same stream (its runner, a cancel, a reader finding it dead) append
one between them; batches are appended under a share lock of the row while it runs, so
a batch never lands after the terminal event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from convostore.store.base import StreamEvent
from convostore.store.postgres_tx import Database

# By the primary key (resp, seq): a range from ``after``, whatever the statistics.
_EVENTS = (
    "SELECT e.seq, e.body, e.terminal FROM response_events e"
    " WHERE e.resp = (SELECT pk FROM responses WHERE id = $1) AND e.seq > $2"
    " ORDER BY e.seq LIMIT $3"
)


class PostgresEvents:
    db: Database  # provided by PostgresStore

    async def append_response_events(
        self, response_id: str, first_seq: int, bodies: Sequence[bytes]
    ) -> bool:
        async with self.db.transaction() as conn:
            pk = await conn.fetchval(
                "SELECT pk FROM responses WHERE id = $1 AND status IN ('queued', 'in_progress')"
                " FOR SHARE",
                response_id,
            )
            if pk is None:
                return False
            await conn.execute(
                "INSERT INTO response_events (resp, seq, body)"
                " SELECT $1, $2 + t.n - 1, t.body FROM unnest($3::bytea[])"
                " WITH ORDINALITY AS t(body, n)",
                pk,
                first_seq,
                list(bodies),
            )
        return True

    async def end_response_events(self, response_id: str, make: Callable[[int], bytes]) -> bool:
        async with self.db.transaction() as conn:
            pk = await conn.fetchval(
                "SELECT pk FROM responses WHERE id = $1 AND NOT deleted FOR UPDATE", response_id
            )
            if pk is None:
                return False
            row = await conn.fetchrow(
                "SELECT max(seq) AS last, bool_or(terminal) AS ended FROM response_events"
                " WHERE resp = $1",
                pk,
            )
            if row is None or row["last"] is None or row["ended"]:  # not streamed, or ended
                return False
            last = int(row["last"])
            await conn.execute(
                "INSERT INTO response_events (resp, seq, terminal, body) VALUES ($1, $2, true, $3)",
                pk,
                last + 1,
                make(last + 1),
            )
        return True

    async def response_events(self, response_id: str, after: int, limit: int) -> list[StreamEvent]:
        rows = await self.db.fetch(
            _EVENTS,
            response_id,
            after,
            limit,
        )
        return [StreamEvent(r["seq"], bytes(r["body"]), r["terminal"]) for r in rows]
