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

from convostore.store import sqlite_append
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

RUNNING = ("queued", "in_progress")


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
            conv = _append_turn(db, owner, turn)
            if record is not None:
                _insert_response(db, owner, record, turn, conv, int(time.time()))

    async def get_response(self, owner: Owner, response_id: str) -> StoredResponse:
        pk, status, created_at, body, previous_id = await self._owned(owner, response_id)
        async with self.transactions.read() as db:
            output = db.execute(
                _ITEMS + " WHERE r.resp = ? AND r.output ORDER BY r.seq", (pk,)
            ).fetchall()
        return StoredResponse(
            ResponseRecord(response_id, created_at, status, body, previous_id),
            [StoredItem(*r) for r in output],
        )

    async def delete_response(self, owner: Owner, response_id: str) -> None:
        async with self.transactions.write() as db:
            row = db.execute(
                "UPDATE responses SET deleted = 1, body = x'7b7d'"
                " WHERE id = ? AND project = ? AND user_key = ? AND NOT deleted RETURNING pk",
                (response_id, owner.project, owner.user),
            ).fetchone()
            if row is None:
                raise ResponseMissing(response_id)
            db.execute("DELETE FROM response_items WHERE resp = ?", (row[0],))

    async def list_response_inputs(
        self, owner: Owner, response_id: str, page: PageQuery
    ) -> ItemPage:
        after, limit, descending = page.after, page.limit, page.descending
        pk = (await self._owned(owner, response_id))[0]
        order, compare = ("DESC", "<") if descending else ("ASC", ">")
        sql = _ITEMS + " WHERE r.resp = ? AND NOT r.output"
        args: list[object] = [pk]
        async with self.transactions.read() as db:
            if after is not None:
                anchor = db.execute(
                    "SELECT seq FROM response_items WHERE resp = ? AND output = 0 AND id = ?",
                    (pk, after),
                ).fetchone()
                if anchor is None:
                    raise AfterMissing(after)
                sql += f" AND r.seq {compare} ?"
                args.append(anchor[0])
            rows = db.execute(
                f"{sql} ORDER BY r.seq {order} LIMIT ?", (*args, limit + 1)
            ).fetchall()
        return ItemPage([StoredItem(*r) for r in rows[:limit]], len(rows) > limit)

    async def response_history(self, owner: Owner, response_id: str) -> list[StoredItem]:
        if (await self._owned(owner, response_id))[1] in RUNNING:
            raise ResponseRunning(response_id)
        async with self.transactions.read() as db:
            rows = db.execute(_HISTORY, (response_id, owner.project, owner.user)).fetchall()
        rows.sort(key=lambda r: (-r[0], r[1]))
        return [StoredItem(r[2], r[3], r[4], r[5]) for r in rows]

    async def start_response(self, owner: Owner, record: ResponseRecord, seconds: float) -> None:
        async with self.transactions.write() as db:
            _insert_response(db, owner, record, Turn((), ()), None, int(time.time()))
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
            row = db.execute(
                "UPDATE responses SET status = ?, body = ?, expires_at = NULL"
                " WHERE id = ? AND project = ? AND user_key = ?"
                " AND status IN ('queued', 'in_progress') RETURNING pk",
                (record.status, record.body, record.id, owner.project, owner.user),
            ).fetchone()
            if row is None:
                return False
            _insert_items(db, row[0], turn, _append_turn(db, owner, turn))
        return True

    async def cancel_response(self, owner: Owner, response_id: str) -> StoredResponse:
        pk = (await self._owned(owner, response_id))[0]
        async with self.transactions.write() as db:
            db.execute(
                "UPDATE responses SET status = 'cancelled', expires_at = NULL"
                " WHERE pk = ? AND status IN ('queued', 'in_progress')",
                (pk,),
            )
        return await self.get_response(owner, response_id)

    async def scan_responses(
        self, *, project: str | None, after_pk: int, limit: int
    ) -> list[tuple[int, ResponseDump]]:
        async with self.transactions.read() as db:
            sql = (
                "SELECT pk, id, project, user_key, created_at, updated_at, previous_id, root_id,"
                " status, body FROM responses WHERE pk > ? AND NOT deleted"
            )
            args: list[object] = [after_pk]
            if project is not None:
                sql += " AND project = ?"
                args.append(project)
            out: list[tuple[int, ResponseDump]] = []
            for pk, rid, proj, user, created, updated, previous, root, status, body in db.execute(
                sql + " ORDER BY pk LIMIT ?", (*args, limit)
            ).fetchall():
                inputs: list[StoredItem] = []
                outputs: list[StoredItem] = []
                for r in db.execute(
                    "SELECT r.id, r.type, coalesce(r.body, i.body), r.mask, r.output"
                    " FROM response_items r LEFT JOIN items i ON i.conv = r.conv AND i.id = r.id"
                    " WHERE r.resp = ? ORDER BY r.seq",
                    (pk,),
                ):
                    (outputs if r[4] else inputs).append(StoredItem(r[0], r[1], r[2], r[3]))
                record = ResponseRecord(rid, created, status, body, previous)
                out.append(
                    (pk, ResponseDump(Owner(proj, user), record, updated, root, inputs, outputs))
                )
        return out

    async def import_responses(self, dumps: Sequence[ResponseDump]) -> list[str]:
        skipped: list[str] = []
        async with self.transactions.write() as db:
            for dump in dumps:
                record = dump.record
                cursor = db.execute(
                    "INSERT INTO responses (id, project, user_key, created_at, updated_at,"
                    " previous_id, root_id, status, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (id) DO NOTHING",
                    (
                        record.id,
                        dump.owner.project,
                        dump.owner.user,
                        record.created_at,
                        dump.updated_at,
                        record.previous_id,
                        dump.root_id,
                        record.status,
                        record.body,
                    ),
                )
                if cursor.rowcount == 0:
                    skipped.append(record.id)
                    continue
                _insert_items(db, cursor.lastrowid or 0, Turn(dump.inputs, dump.outputs), None)
        return skipped

    async def purge_responses(
        self,
        *,
        project: str | None,
        exclude_projects: Sequence[str],
        updated_before: int,
        limit: int,
    ) -> int:
        sql = "SELECT id FROM responses WHERE id = root_id AND updated_at < ?"
        args: list[object] = [updated_before]
        if project is not None:
            sql += " AND project = ?"
            args.append(project)
        elif exclude_projects:
            sql += f" AND project NOT IN ({','.join('?' * len(exclude_projects))})"
            args.extend(exclude_projects)
        async with self.transactions.write() as db:
            roots = [r[0] for r in db.execute(sql + " LIMIT ?", (*args, limit))]
            if not roots:
                return 0
            marks = ",".join("?" * len(roots))
            cursor = db.execute(f"DELETE FROM responses WHERE root_id IN ({marks})", roots)
            return int(cursor.rowcount)


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


def _insert_response(
    db: sqlite3.Connection,
    owner: Owner,
    record: ResponseRecord,
    turn: Turn,
    conv: int | None,
    now: int,
) -> None:
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
    cursor = db.execute(
        "INSERT INTO responses (id, project, user_key, created_at, updated_at, previous_id,"
        " root_id, status, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.id,
            owner.project,
            owner.user,
            record.created_at,
            now,
            record.previous_id,
            root_id,
            record.status,
            record.body,
        ),
    )
    _insert_items(db, cursor.lastrowid or 0, turn, conv)
