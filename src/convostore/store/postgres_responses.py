"""Stored responses on PostgreSQL (issue 17): a mixin of
:class:`~convostore.store.postgres.PostgresStore`.

Migration 0030 explains the tables. A response written back to a conversation is saved
in the transaction of the append (conversation row locked first, then the lease row,
then the response rows), so a client never sees one without the other. Chains are read
in one recursive statement following ``previous_id`` by the unique id index.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from convostore.store import postgres_append
from convostore.store.base import (
    AfterMissing,
    ItemPage,
    Owner,
    PageQuery,
    ResponseDump,
    ResponseMissing,
    ResponseRecord,
    ResponseRunning,
    StoredItem,
    StoredResponse,
    Turn,
)
from convostore.store.postgres_tx import Database

_NOW = "extract(epoch FROM clock_timestamp())::float8"

# The response's row; a background one whose process died (its expires_at passed, or
# none: imported from a dump taken while it ran) is marked failed by this same
# statement, by whoever reads it first.
_OWNED = (
    "WITH r AS (SELECT pk FROM responses"
    " WHERE id = $1 AND project = $2 AND user_key = $3 AND NOT deleted),"
    " dead AS (UPDATE responses SET status = 'failed', expires_at = NULL"
    " WHERE pk = (SELECT pk FROM r) AND status IN ('queued', 'in_progress')"
    f" AND coalesce(expires_at, 0) < {_NOW} RETURNING pk, status)"
    " SELECT s.pk, coalesce((SELECT status FROM dead), s.status) AS status, s.created_at,"
    " s.body, s.previous_id FROM responses s WHERE s.pk = (SELECT pk FROM r)"
)

RUNNING = ("queued", "in_progress")

# The body of an item a conversation holds is read by a subplan per row, through
# items_conv_id: as a join, a planner without fresh statistics hashed the whole items
# table (tests/store/test_postgres_plan.py checks these plans).
_BODY = "coalesce(r.body, (SELECT i.body FROM items i WHERE i.conv = r.conv AND i.id = r.id))"

_ITEMS = f"SELECT r.id, r.type, {_BODY} AS body, r.mask FROM response_items r"

# Each step of the chain, and each response's items, is a lateral subquery fenced with
# OFFSET 0, so every one is an index probe (responses_id, response_items_pkey) whatever
# the statistics: as joins, a planner without them hashed the whole responses table once
# per link (measured: 175 ms for a chain of 1,000, O(chain x table)).
_HISTORY = (
    "WITH RECURSIVE chain (pk, previous_id, depth) AS ("
    " SELECT pk, previous_id, 0 FROM responses WHERE id = $1 AND project = $2 AND user_key = $3"
    " UNION ALL"
    " SELECT p.pk, p.previous_id, c.depth + 1 FROM chain c CROSS JOIN LATERAL ("
    " SELECT pk, previous_id FROM responses WHERE id = c.previous_id OFFSET 0) p)"
    " SELECT x.id, x.type, x.body, x.mask FROM chain c CROSS JOIN LATERAL ("
    f" SELECT r.seq, r.id, r.type, {_BODY} AS body, r.mask FROM response_items r"
    " WHERE r.resp = c.pk OFFSET 0) x"
    " ORDER BY c.depth DESC, x.seq"
)

_INSERT_RESPONSE = (
    "INSERT INTO responses (id, project, user_key, created_at, updated_at, previous_id,"
    " root_id, status, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)

_INSERT_ITEMS = (
    "INSERT INTO response_items (resp, seq, output, id, type, mask, body, conv)"
    " SELECT $1, t.n - 1, t.output, t.id, t.type, t.mask, t.body, $7::bigint"
    " FROM unnest($2::boolean[], $3::text[], $4::text[], $5::bigint[], $6::bytea[])"
    " WITH ORDINALITY AS t(output, id, type, mask, body, n)"
)


def _item_columns(
    turn: Turn, by_reference: bool
) -> tuple[list[bool], list[str], list[str], list[int], list[bytes | None]]:
    pairs = [(False, item) for item in turn.inputs] + [(True, item) for item in turn.outputs]
    return (
        [output for output, _ in pairs],
        [item.id for _, item in pairs],
        [item.type for _, item in pairs],
        [item.mask for _, item in pairs],
        [None if by_reference else item.body for _, item in pairs],
    )


class PostgresResponses:
    """save, read, delete and list stored responses; scans for export and retention."""

    db: Database  # provided by PostgresStore

    async def save_response(self, owner: Owner, record: ResponseRecord | None, turn: Turn) -> None:
        now = int(time.time())
        async with self.db.transaction() as conn:
            conv = await _append_turn(conn, owner, turn, now)
            if record is not None:
                await _insert_response(conn, owner, record, turn, conv, now)

    async def get_response(self, owner: Owner, response_id: str) -> StoredResponse:
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(_OWNED, response_id, owner.project, owner.user)
            if row is None:
                raise ResponseMissing(response_id)
            output = await conn.fetch(
                _ITEMS + " WHERE r.resp = $1 AND r.output ORDER BY r.seq", row[0]
            )
        return StoredResponse(
            ResponseRecord(
                response_id, row["created_at"], row["status"], row["body"], row["previous_id"]
            ),
            [StoredItem(r[0], r[1], r[2], r[3]) for r in output],
        )

    async def delete_response(self, owner: Owner, response_id: str) -> None:
        async with self.db.transaction() as conn:
            pk = await conn.fetchval(
                "UPDATE responses SET deleted = true, body = '\\x7b7d'::bytea"
                " WHERE id = $1 AND project = $2 AND user_key = $3 AND NOT deleted RETURNING pk",
                response_id,
                owner.project,
                owner.user,
            )
            if pk is None:
                raise ResponseMissing(response_id)
            await conn.execute("DELETE FROM response_items WHERE resp = $1", pk)

    async def list_response_inputs(
        self, owner: Owner, response_id: str, page: PageQuery
    ) -> ItemPage:
        after, limit, descending = page.after, page.limit, page.descending
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(_OWNED, response_id, owner.project, owner.user)
            if row is None:
                raise ResponseMissing(response_id)
            order, compare = ("DESC", "<") if descending else ("ASC", ">")
            sql = _ITEMS + " WHERE r.resp = $1 AND NOT r.output"
            args: list[Any] = [row[0], limit + 1]
            if after is not None:
                anchor = await conn.fetchval(
                    "SELECT seq FROM response_items WHERE resp = $1 AND NOT output AND id = $2",
                    row[0],
                    after,
                )
                if anchor is None:
                    raise AfterMissing(after)
                sql += f" AND r.seq {compare} $3"
                args.append(anchor)
            rows = await conn.fetch(f"{sql} ORDER BY r.seq {order} LIMIT $2", *args)
        return ItemPage(
            [StoredItem(r[0], r[1], r[2], r[3]) for r in rows[:limit]], len(rows) > limit
        )

    async def response_history(self, owner: Owner, response_id: str) -> list[StoredItem]:
        async with self.db.transaction() as conn:
            head = await conn.fetchrow(_OWNED, response_id, owner.project, owner.user)
            if head is None:
                raise ResponseMissing(response_id)
            if head["status"] in RUNNING:
                raise ResponseRunning(response_id)
            rows = await conn.fetch(_HISTORY, response_id, owner.project, owner.user)
        return [StoredItem(r[0], r[1], r[2], r[3]) for r in rows]

    async def start_response(self, owner: Owner, record: ResponseRecord, seconds: float) -> None:
        async with self.db.transaction() as conn:
            await _insert_response(conn, owner, record, Turn((), ()), None, int(time.time()))
            await conn.execute(
                f"UPDATE responses SET expires_at = {_NOW} + $2::float8 WHERE id = $1",
                record.id,
                seconds,
            )

    async def renew_response(self, response_id: str, status: str, seconds: float) -> bool:
        result = await self.db.execute(
            f"UPDATE responses SET status = $2, expires_at = {_NOW} + $3::float8"
            " WHERE id = $1 AND status IN ('queued', 'in_progress')"
            f" AND expires_at >= {_NOW}",
            response_id,
            status,
            seconds,
        )
        return str(result).rpartition(" ")[2] != "0"

    async def finish_response(self, owner: Owner, record: ResponseRecord, turn: Turn) -> bool:
        now = int(time.time())
        async with self.db.transaction() as conn:
            # The response row first: a cancel from another process waits on it, or wins.
            pk = await conn.fetchval(
                "UPDATE responses SET status = $4, body = $5, expires_at = NULL"
                " WHERE id = $1 AND project = $2 AND user_key = $3"
                " AND status IN ('queued', 'in_progress') RETURNING pk",
                record.id,
                owner.project,
                owner.user,
                record.status,
                record.body,
            )
            if pk is None:
                return False
            conv = await _append_turn(conn, owner, turn, now)
            await conn.execute(_INSERT_ITEMS, pk, *_item_columns(turn, conv is not None), conv)
        return True

    async def cancel_response(self, owner: Owner, response_id: str) -> StoredResponse:
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(_OWNED, response_id, owner.project, owner.user)
            if row is None:
                raise ResponseMissing(response_id)
            await conn.execute(
                "UPDATE responses SET status = 'cancelled', expires_at = NULL"
                " WHERE pk = $1 AND status IN ('queued', 'in_progress')",
                row[0],
            )
        return await self.get_response(owner, response_id)

    async def scan_responses(
        self, *, project: str | None, after_pk: int, limit: int
    ) -> list[tuple[int, ResponseDump]]:
        sql = (
            "SELECT pk, id, project, user_key, created_at, updated_at, previous_id, root_id,"
            " status, body FROM responses WHERE pk > $1 AND NOT deleted"
        )
        args: list[Any] = [after_pk, limit]
        if project is not None:
            sql += " AND project = $3"
            args.append(project)
        out: list[tuple[int, ResponseDump]] = []
        async with self.db.transaction() as conn:
            rows = await conn.fetch(sql + " ORDER BY pk LIMIT $2", *args)
            items = await conn.fetch(
                f"SELECT r.resp, r.id, r.type, {_BODY}, r.mask, r.output FROM response_items r"
                " WHERE r.resp = ANY($1::bigint[]) ORDER BY r.resp, r.seq",
                [row[0] for row in rows],
            )
        by_pk: dict[int, tuple[list[StoredItem], list[StoredItem]]] = {
            row[0]: ([], []) for row in rows
        }
        for r in items:
            by_pk[r[0]][1 if r[5] else 0].append(StoredItem(r[1], r[2], r[3], r[4]))
        for row in rows:
            inputs, outputs = by_pk[row[0]]
            record = ResponseRecord(row[1], row[4], row[8], row[9], row[6])
            out.append(
                (
                    row[0],
                    ResponseDump(Owner(row[2], row[3]), record, row[5], row[7], inputs, outputs),
                )
            )
        return out

    async def import_responses(self, dumps: Sequence[ResponseDump]) -> list[str]:
        skipped: list[str] = []
        async with self.db.transaction() as conn:
            for dump in dumps:
                record = dump.record
                pk = await conn.fetchval(
                    _INSERT_RESPONSE + " ON CONFLICT (id) DO NOTHING RETURNING pk",
                    record.id,
                    dump.owner.project,
                    dump.owner.user,
                    record.created_at,
                    dump.updated_at,
                    record.previous_id,
                    dump.root_id,
                    record.status,
                    record.body,
                )
                if pk is None:
                    skipped.append(record.id)
                    continue
                await conn.execute(
                    _INSERT_ITEMS, pk, *_item_columns(Turn(dump.inputs, dump.outputs), False), None
                )
        return skipped

    async def purge_responses(
        self,
        *,
        project: str | None,
        exclude_projects: Sequence[str],
        updated_before: int,
        limit: int,
    ) -> int:
        sql = "SELECT id FROM responses WHERE id = root_id AND updated_at < $1"
        args: list[Any] = [updated_before, limit]
        if project is not None:
            sql += " AND project = $3"
            args.append(project)
        elif exclude_projects:
            sql += " AND project <> ALL($3::text[])"
            args.append(list(exclude_projects))
        status = await self.db.execute(
            f"DELETE FROM responses WHERE root_id IN ({sql} LIMIT $2)", *args
        )
        return int(status.rpartition(" ")[2])


async def _append_turn(conn: Any, owner: Owner, turn: Turn, now: int) -> int | None:
    """The turn appended to its conversation, if it names one: the conversation's pk."""
    if turn.conversation_id is None:
        return None
    return await postgres_append.append(
        conn, owner, turn.conversation_id, turn.items, turn.holder, now
    )


async def _insert_response(
    conn: Any,  # a pooled connection (asyncpg's PoolConnectionProxy)
    owner: Owner,
    record: ResponseRecord,
    turn: Turn,
    conv: int | None,
    now: int,
) -> None:
    root_id = record.id
    if record.previous_id is not None:
        root_id = await conn.fetchval(
            "UPDATE responses SET updated_at = $4 WHERE id = ("
            " SELECT root_id FROM responses WHERE id = $1 AND project = $2 AND user_key = $3"
            " AND NOT deleted) RETURNING id",
            record.previous_id,
            owner.project,
            owner.user,
            now,
        )
        if root_id is None:
            raise ResponseMissing(record.previous_id)
    pk = await conn.fetchval(
        _INSERT_RESPONSE + " RETURNING pk",
        record.id,
        owner.project,
        owner.user,
        record.created_at,
        now,
        record.previous_id,
        root_id,
        record.status,
        record.body,
    )
    await conn.execute(_INSERT_ITEMS, pk, *_item_columns(turn, conv is not None), conv)
