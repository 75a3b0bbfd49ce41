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

from convostore.store import postgres_append, sql
from convostore.store.base import (
    RUNNING,
    AfterMissing,
    ItemPage,
    Owner,
    PageQuery,
    ResponseDump,
    ResponseMissing,
    ResponsePurge,
    ResponseRecord,
    ResponseRunning,
    StoredItem,
    StoredResponse,
    Turn,
)
from convostore.store.postgres_tx import Database
from convostore.store.sql import numbered

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

_INSERT_RESPONSE = numbered(sql.INSERT_RESPONSE + " RETURNING pk")
_IMPORT_RESPONSE = numbered(sql.INSERT_RESPONSE + " ON CONFLICT (id) DO NOTHING RETURNING pk")
_DELETE_RESPONSE = numbered(sql.DELETE_RESPONSE)
_DELETE_RESPONSE_ITEMS = numbered(sql.DELETE_RESPONSE_ITEMS)
_FINISH_RESPONSE = numbered(sql.FINISH_RESPONSE)
_CANCEL_RESPONSE = numbered(sql.CANCEL_RESPONSE)
_INPUT_ANCHOR = numbered(sql.INPUT_ANCHOR)
_OUTPUT = _ITEMS + " WHERE r.resp = $1 AND r.output ORDER BY r.seq"
_INPUTS = {key: numbered(statement) for key, statement in sql.inputs_sql(_ITEMS).items()}
_SCAN_ITEMS = (
    f"SELECT r.resp, r.id, r.type, {_BODY}, r.mask, r.output FROM response_items r"
    " WHERE r.resp = ANY($1::bigint[]) ORDER BY r.resp, r.seq"
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
        async with self.db.transaction() as conn:
            await _save(conn, owner, record, turn)

    async def get_response(self, owner: Owner, response_id: str) -> StoredResponse:
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(_OWNED, response_id, owner.project, owner.user)
            if row is None:
                raise ResponseMissing(response_id)
            output = await conn.fetch(_OUTPUT, row[0])
        return sql.stored_response(response_id, row, output)

    async def delete_response(self, owner: Owner, response_id: str) -> None:
        async with self.db.transaction() as conn:
            pk = await conn.fetchval(
                _DELETE_RESPONSE, sql.TOMBSTONE, response_id, owner.project, owner.user
            )
            if pk is None:
                raise ResponseMissing(response_id)
            await conn.execute(_DELETE_RESPONSE_ITEMS, pk)

    async def list_response_inputs(
        self, owner: Owner, response_id: str, page: PageQuery
    ) -> ItemPage:
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(_OWNED, response_id, owner.project, owner.user)
            if row is None:
                raise ResponseMissing(response_id)
            args: list[Any] = [row[0]]
            if page.after is not None:
                anchor = await conn.fetchval(_INPUT_ANCHOR, row[0], page.after)
                if anchor is None:
                    raise AfterMissing(page.after)
                args.append(anchor)
            statement = _INPUTS[page.after is not None, page.descending]
            rows = await conn.fetch(statement, *args, page.limit + 1)
        return sql.input_page(rows, page)

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
            await _save(conn, owner, record, Turn((), ()))
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
            pk = await conn.fetchval(_FINISH_RESPONSE, *sql.finish_args(owner, record))
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
            await conn.execute(_CANCEL_RESPONSE, row[0])
        return await self.get_response(owner, response_id)

    async def scan_responses(
        self, *, project: str | None, after_pk: int, limit: int
    ) -> list[tuple[int, ResponseDump]]:
        statement, args = sql.scan_responses_sql(project, after_pk, limit)
        async with self.db.transaction() as conn:
            rows = await conn.fetch(numbered(statement), *args)
            items = await conn.fetch(_SCAN_ITEMS, [row[0] for row in rows])
        by_pk: dict[int, list[Any]] = {row[0]: [] for row in rows}
        for r in items:
            by_pk[r[0]].append(r[1:])
        return [sql.dumped(row, by_pk[row[0]]) for row in rows]

    async def import_responses(self, dumps: Sequence[ResponseDump]) -> list[str]:
        skipped: list[str] = []
        async with self.db.transaction() as conn:
            for dump in dumps:
                record = dump.record
                pk = await conn.fetchval(
                    _IMPORT_RESPONSE,
                    *sql.response_args(dump.owner, record, dump.updated_at, dump.root_id),
                )
                if pk is None:
                    skipped.append(record.id)
                    continue
                await conn.execute(
                    _INSERT_ITEMS, pk, *_item_columns(Turn(dump.inputs, dump.outputs), False), None
                )
        return skipped

    async def purge_responses(self, purge: ResponsePurge) -> int:
        statement, args = sql.purge_responses_sql(purge, not_in="<> ALL(?::text[])")
        return int((await self.db.execute(numbered(statement), *args)).rpartition(" ")[2])


async def _append_turn(conn: Any, owner: Owner, turn: Turn, now: int) -> int | None:
    """The turn appended to its conversation, if it names one: the conversation's pk."""
    if turn.conversation_id is None:
        return None
    return await postgres_append.append(
        conn, owner, turn.conversation_id, turn.items, turn.holder, now
    )


async def _save(conn: Any, owner: Owner, record: ResponseRecord | None, turn: Turn) -> None:
    """The turn appended to its conversation, if it names one, then the response and its
    items (the conversation's by reference), if it is stored; ``conn`` is a pooled
    connection in a transaction (asyncpg's PoolConnectionProxy)."""
    now = int(time.time())
    conv = await _append_turn(conn, owner, turn, now)
    if record is None:
        return
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
    pk = await conn.fetchval(_INSERT_RESPONSE, *sql.response_args(owner, record, now, root_id))
    await conn.execute(_INSERT_ITEMS, pk, *_item_columns(turn, conv is not None), conv)
