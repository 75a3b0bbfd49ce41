"""Stored responses on SQLite (issue 17): a mixin of
:class:`~convostore.store.sqlite.SQLiteStore`.

The tables are those of migration 0030 (``responses``, ``response_items``); the
PostgreSQL migration explains them. A response's items that a conversation holds are
rows with a NULL body and the conversation's pk: reads take the body from ``items``
(``COALESCE``), and the trigger of migration 0030 copies it in before such an item is
deleted. Chains are read in one recursive statement that follows ``previous_id`` by the
unique id index: O(chain length).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

import orjson

from convostore.store import sql, sqlite_append
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
from convostore.store.sqlite_tx import Transactions

_ITEMS = (
    "SELECT r.id, r.type, coalesce(r.body, i.body), r.mask FROM response_items r"
    " LEFT JOIN items i ON i.conv = r.conv AND i.id = r.id"
)

_HISTORY = (
    "WITH RECURSIVE chain (pk, previous_id, depth) AS ("
    " SELECT pk, previous_id, 0 FROM responses WHERE id = ? AND project = ? AND user_key = ?"
    " UNION ALL"
    " SELECT p.pk, p.previous_id, ch.depth + 1 FROM chain ch"
    " JOIN responses p ON p.id = ch.previous_id)"
    " SELECT ch.depth, r.seq, r.id, r.type, coalesce(r.body, i.body), r.mask"
    " FROM chain ch CROSS JOIN response_items r ON r.resp = ch.pk"
    " LEFT JOIN items i ON i.conv = r.conv AND i.id = r.id"
)  # ordered in Python: SQLite's sorter carrying the bodies took 4x the read (measured)

_OWNED = (
    "SELECT pk, status, created_at, body, previous_id, expires_at FROM responses"
    " WHERE id = ? AND project = ? AND user_key = ? AND NOT deleted"
)

_OUTPUT = _ITEMS + " WHERE r.resp = ? AND r.output ORDER BY r.seq"
_INPUTS = sql.inputs_sql(_ITEMS)
_ALL_ITEMS = (
    "SELECT r.id, r.type, coalesce(r.body, i.body), r.mask, r.output"
    " FROM response_items r LEFT JOIN items i ON i.conv = r.conv AND i.id = r.id"
    " WHERE r.resp = ? ORDER BY r.seq"
)


class SQLiteResponses:
    """save, read, delete and list stored responses; scans for export and retention."""

    async def _owned(
        self, owner: Owner, response_id: str
    ) -> tuple[int, str, int, bytes, str | None]:
        """The response's row; a background one whose process died (expired) is marked
        failed here, by whoever reads it first."""
        async with self.transactions.read() as db:
            row = db.execute(_OWNED, (response_id, owner.project, owner.user)).fetchone()
        if row is None:
            raise ResponseMissing(response_id)
        pk, status, created_at, body, previous_id, expires_at = row
        # No expires_at while running: imported from a dump taken mid-run, so dead too.
        if status in RUNNING and (expires_at is None or expires_at < time.time()):
            async with self.transactions.write() as writing:
                writing.execute(
                    "UPDATE responses SET status = 'failed', expires_at = NULL"
                    " WHERE pk = ? AND status IN ('queued', 'in_progress')"
                    " AND coalesce(expires_at, 0) < ?",
                    (pk, time.time()),
                )
                row = writing.execute(_OWNED, (response_id, owner.project, owner.user)).fetchone()
            pk, status, created_at, body, previous_id, expires_at = row
        return pk, status, created_at, body, previous_id

    @property
    def transactions(self) -> Transactions:
        raise NotImplementedError

    async def save_response(self, owner: Owner, record: ResponseRecord | None, turn: Turn) -> None:
        async with self.transactions.write() as db:
            _save(db, owner, record, turn)

    async def get_response(self, owner: Owner, response_id: str) -> StoredResponse:
        owned = await self._owned(owner, response_id)
        async with self.transactions.read() as db:
            output = db.execute(_OUTPUT, (owned[0],)).fetchall()
        return sql.stored_response(response_id, owned, output)

    async def delete_response(self, owner: Owner, response_id: str) -> None:
        async with self.transactions.write() as db:
            row = db.execute(
                sql.DELETE_RESPONSE, (sql.TOMBSTONE, response_id, owner.project, owner.user)
            ).fetchone()
            if row is None:
                raise ResponseMissing(response_id)
            db.execute(sql.DELETE_RESPONSE_ITEMS, (row[0],))

    async def list_response_inputs(
        self, owner: Owner, response_id: str, page: PageQuery
    ) -> ItemPage:
        pk = (await self._owned(owner, response_id))[0]
        args: list[object] = [pk]
        async with self.transactions.read() as db:
            if page.after is not None:
                anchor = db.execute(sql.INPUT_ANCHOR, (pk, page.after)).fetchone()
                if anchor is None:
                    raise AfterMissing(page.after)
                args.append(anchor[0])
            statement = _INPUTS[page.after is not None, page.descending]
            rows = db.execute(statement, (*args, page.limit + 1)).fetchall()
        return sql.input_page(rows, page)

    async def response_history(self, owner: Owner, response_id: str) -> list[StoredItem]:
        if (await self._owned(owner, response_id))[1] in RUNNING:
            raise ResponseRunning(response_id)
        async with self.transactions.read() as db:
            rows = db.execute(_HISTORY, (response_id, owner.project, owner.user)).fetchall()
        rows.sort(key=lambda r: (-r[0], r[1]))
        return [StoredItem(r[2], r[3], r[4], r[5]) for r in rows]

    async def start_response(self, owner: Owner, record: ResponseRecord, seconds: float) -> None:
        async with self.transactions.write() as db:
            _save(db, owner, record, Turn((), ()))
            db.execute(
                "UPDATE responses SET expires_at = ? WHERE id = ?",
                (time.time() + seconds, record.id),
            )

    async def renew_response(self, response_id: str, status: str, seconds: float) -> bool:
        async with self.transactions.write() as db:
            cursor = db.execute(
                "UPDATE responses SET status = ?, expires_at = ?"
                " WHERE id = ? AND status IN ('queued', 'in_progress') AND expires_at >= ?",
                (status, time.time() + seconds, response_id, time.time()),
            )
        return cursor.rowcount > 0

    async def finish_response(self, owner: Owner, record: ResponseRecord, turn: Turn) -> bool:
        async with self.transactions.write() as db:
            row = db.execute(sql.FINISH_RESPONSE, sql.finish_args(owner, record)).fetchone()
            if row is None:
                return False
            _insert_items(db, row[0], turn, _append_turn(db, owner, turn))
        return True

    async def cancel_response(self, owner: Owner, response_id: str) -> StoredResponse:
        pk = (await self._owned(owner, response_id))[0]
        async with self.transactions.write() as db:
            db.execute(sql.CANCEL_RESPONSE, (pk,))
        return await self.get_response(owner, response_id)

    async def scan_responses(
        self, *, project: str | None, after_pk: int, limit: int
    ) -> list[tuple[int, ResponseDump]]:
        statement, args = sql.scan_responses_sql(project, after_pk, limit)
        async with self.transactions.read() as db:
            return [
                sql.dumped(row, db.execute(_ALL_ITEMS, (row[0],)).fetchall())
                for row in db.execute(statement, args).fetchall()
            ]

    async def import_responses(self, dumps: Sequence[ResponseDump]) -> list[str]:
        skipped: list[str] = []
        async with self.transactions.write() as db:
            for dump in dumps:
                record = dump.record
                cursor = db.execute(
                    sql.INSERT_RESPONSE + " ON CONFLICT (id) DO NOTHING",
                    sql.response_args(dump.owner, record, dump.updated_at, dump.root_id),
                )
                if cursor.rowcount == 0:
                    skipped.append(record.id)
                    continue
                _insert_items(db, cursor.lastrowid or 0, Turn(dump.inputs, dump.outputs), None)
        return skipped

    async def purge_responses(self, purge: ResponsePurge) -> int:
        statement, args = sql.purge_responses_sql(
            purge, not_in="NOT IN (SELECT value FROM json_each(?))"
        )
        args = [orjson.dumps(a).decode() if isinstance(a, list) else a for a in args]
        async with self.transactions.write() as db:
            return int(db.execute(statement, args).rowcount)


def _append_turn(db: sqlite3.Connection, owner: Owner, turn: Turn) -> int | None:
    """The turn appended to its conversation, if it names one: the conversation's pk."""
    if turn.conversation_id is None:
        return None
    return sqlite_append.append(db, owner, turn.conversation_id, turn.items, turn.holder)


def _insert_items(db: sqlite3.Connection, pk: int, turn: Turn, conv: int | None) -> None:
    """The response's rows of response_items: by reference (no body) when the
    conversation ``conv`` holds them."""
    db.executemany(
        "INSERT INTO response_items (resp, seq, output, id, type, mask, body, conv)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                pk,
                seq,
                output,
                item.id,
                item.type,
                item.mask,
                None if conv is not None else item.body,
                conv,
            )
            for seq, (output, item) in enumerate(
                [(0, item) for item in turn.inputs] + [(1, item) for item in turn.outputs]
            )
        ],
    )


def _save(db: sqlite3.Connection, owner: Owner, record: ResponseRecord | None, turn: Turn) -> None:
    """The turn appended to its conversation, if it names one, then the response and its
    items (the conversation's by reference), if it is stored."""
    conv = _append_turn(db, owner, turn)
    if record is None:
        return
    now = int(time.time())
    root_id = record.id
    if record.previous_id is not None:
        found = db.execute(
            "SELECT root_id FROM responses WHERE id = ? AND project = ? AND user_key = ?"
            " AND NOT deleted",
            (record.previous_id, owner.project, owner.user),
        ).fetchone()
        if found is None:
            raise ResponseMissing(record.previous_id)
        root_id = found[0]
        db.execute("UPDATE responses SET updated_at = ? WHERE id = ?", (now, root_id))
    cursor = db.execute(sql.INSERT_RESPONSE, sql.response_args(owner, record, now, root_id))
    _insert_items(db, cursor.lastrowid or 0, turn, conv)
