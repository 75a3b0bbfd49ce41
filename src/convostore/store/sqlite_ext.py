"""The SQLite side of the extensions (issue 7): list, search, export/import, retention.

A mixin of :class:`~convostore.store.sqlite.SQLiteStore`, kept apart so the core store
stays small. Search reads the FTS5 table ``item_text`` (rowid = items.rowid; filled by
the search indexer from the queue ``item_text_pending``, migrations 0014 and 0100),
newest stored first.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator, Sequence

import orjson

from convostore.store import listing, search_text, sql, sqlite_append
from convostore.store import sqlite_maintenance as search_index
from convostore.store.base import (
    ConversationDump,
    ConversationFilter,
    ConversationPage,
    ConversationScan,
    ItemSearch,
    KeyRow,
    Owner,
    PageQuery,
    PoolUse,
    ScannedConversation,
    ScannedItem,
    SearchAfterMissing,
    SearchPage,
    StoredItem,
    StoreUnavailable,
)
from convostore.store.sqlite_health import Corruption
from convostore.store.sqlite_maintenance import Maintenance
from convostore.store.sqlite_search import Searcher
from convostore.store.sqlite_tx import Transactions, unavailable

_IDS = "IN (SELECT value FROM json_each(?))"

_SEARCH = (
    "SELECT f.rowid, c.id, i.id, i.type, i.body, i.mask FROM item_text f"
    " JOIN items i ON i.rowid = f.rowid JOIN conversations c ON c.pk = i.conv"
    " WHERE item_text MATCH ? AND c.project = ? AND c.user_key = ?{bound}"
    " ORDER BY f.rowid DESC LIMIT ?"
)

_PENDING_LAST = "SELECT max(ticket) FROM item_text_pending WHERE project = ? AND user_key = ?"
_PENDING_UPTO = (
    "SELECT 1 FROM item_text_pending WHERE project = ? AND user_key = ? AND ticket <= ? LIMIT 1"
)

_ANCHOR = listing.anchor_sql()

_IMPORT_CONVERSATION = (
    "INSERT INTO conversations (id, project, user_key, created_at, updated_at, metadata,"
    " next_seq, item_count, safety_identifier) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)"
    " ON CONFLICT (id) DO NOTHING"
)

_SEARCH_ANCHOR = (
    "SELECT i.rowid FROM conversations c JOIN items i ON i.conv = c.pk AND i.id = ?"
    " WHERE c.id = ? AND c.project = ? AND c.user_key = ?"
)


class SQLiteExtensions:
    """List, search, scans for export and purge, import, counts."""

    path: str
    _maintenance: Maintenance | None
    corruption: Corruption

    @property
    def searcher(self) -> Searcher:
        raise NotImplementedError

    @property
    def db(self) -> sqlite3.Connection:
        raise NotImplementedError

    @property
    def transactions(self) -> Transactions:
        raise NotImplementedError

    async def list_conversations(
        self, owner: Owner, where: ConversationFilter, paging: PageQuery
    ) -> ConversationPage:
        owned = (owner.project, owner.user)
        async with self.transactions.read() as db:
            anchors = [
                listing.anchor(
                    None if cursor is None else db.execute(_ANCHOR, (cursor, *owned)).fetchone(),
                    cursor,
                    missing,
                )
                for cursor, missing in listing.cursors(paging)
            ]
            statement, args = listing.list_sql(
                owner, where, anchors[0], paging.limit, paging.descending, anchors[1]
            )
            fetched = list(db.execute(statement, args).fetchall())
        return listing.conversation_page(fetched, paging)

    async def search_items(self, owner: Owner, search: ItemSearch) -> SearchPage:
        await self._indexed(owner)
        tag = search_text.owner_tag(owner.project, owner.user)
        args: list[object] = [search_text.fts5_query(tag, search.query), owner.project, owner.user]
        bound = ""
        if search.after is not None:
            conversation_id, item_id = search.after
            async with self.transactions.read() as db:
                found = db.execute(
                    _SEARCH_ANCHOR, (item_id, conversation_id, owner.project, owner.user)
                ).fetchone()
                if found is None:
                    raise SearchAfterMissing(f"{conversation_id}/{item_id}")
                bound = " AND f.rowid < ?"
                args.append(found[0])
        args.append(search.limit + 1)
        return listing.search_page(
            await self.searcher.fetch(_SEARCH.format(bound=bound), args), search
        )

    async def _indexed(self, owner: Owner) -> None:
        """Once every item of ``owner`` committed before now is in the search index (a
        search sees every committed item). Waits asynchronously for the background
        indexer, which takes this owner's items first; never for another owner's."""
        who = (owner.project, owner.user)
        async with self.transactions.read() as db:
            last = db.execute(_PENDING_LAST, who).fetchone()[0]
        if last is None:
            return
        maintenance = self._maintenance
        if maintenance is None or not maintenance.running:  # :memory:, or stopped
            while batch := _extract(self.db, who, self.corruption):
                async with self.transactions.alone() as db:
                    search_index.store(db, batch)
            return
        maintenance.hurry(who)
        delay = 0.0005
        deadline = time.monotonic() + self.transactions.lock_timeout
        while True:
            await asyncio.sleep(delay)
            async with self.transactions.read() as db:
                if db.execute(_PENDING_UPTO, (*who, last)).fetchone() is None:
                    return
            if time.monotonic() > deadline:
                raise StoreUnavailable("the search index is still catching up with new items")
            delay = min(delay * 2, 0.02)

    async def scan_conversations(self, scan: ConversationScan) -> list[ScannedConversation]:
        statement, args = listing.scan_sql(scan, id_list=_IDS)
        if scan.ids is not None:
            args = [orjson.dumps(a).decode() if isinstance(a, list) else a for a in args]
        async with self.transactions.read() as db:
            return listing.scanned(db.execute(statement, args))

    async def scan_items(
        self, conversation_pks: Sequence[int], *, after: tuple[int, int], limit: int
    ) -> list[ScannedItem]:
        if not conversation_pks:
            return []
        marks = ",".join("?" * len(conversation_pks))
        async with self.transactions.read() as db:
            rows = db.execute(
                "SELECT conv, seq, id, type, body, mask FROM items"
                f" WHERE conv IN ({marks}) AND (conv, seq) > (?, ?) ORDER BY conv, seq LIMIT ?",
                (*conversation_pks, *after, limit),
            ).fetchall()
        return listing.scanned_items(rows)

    async def count_conversations(self, *, project: str | None, ids: Sequence[str] | None) -> int:
        statement = "SELECT count(*) FROM conversations WHERE 1 = 1"
        args: list[object] = []
        if project is not None:
            statement += " AND project = ?"
            args.append(project)
        if ids is not None:
            statement += f" AND id {_IDS}"
            args.append(orjson.dumps(list(ids)).decode())
        async with self.transactions.read() as db:
            return int(db.execute(statement, args).fetchone()[0])

    async def import_conversations(self, dumps: Sequence[ConversationDump]) -> list[str]:
        skipped: list[str] = []
        async with self.transactions.write() as db:
            for dump in dumps:
                cursor = db.execute(_IMPORT_CONVERSATION, sql.imported_conversation(dump))
                if cursor.rowcount == 0:
                    skipped.append(dump.conversation.id)
                    continue
                pk = cursor.lastrowid or 0
                db.executemany(
                    "INSERT INTO items (conv, seq, id, type, body, mask) VALUES (?, ?, ?, ?, ?, ?)",
                    _item_rows(pk, dump.items),
                )
                if dump.items:
                    sqlite_append.queue_search(db, pk, 0, len(dump.items) - 1)
        return skipped

    async def import_keys(self, keys: Sequence[KeyRow]) -> list[str]:
        skipped: list[str] = []
        async with self.transactions.write() as db:
            for key in keys:
                cursor = db.execute(sql.INSERT_KEY + " ON CONFLICT DO NOTHING", sql.key_values(key))
                if cursor.rowcount == 0:
                    skipped.append(key.id)
        return skipped

    async def analyze(self) -> None:
        """``PRAGMA optimize`` may run ANALYZE, a write: it takes the write lock through
        the transaction helper, waiting (without blocking the loop) while the indexer or
        another process holds it, instead of failing with "database is locked"."""
        async with self.transactions.alone() as db:
            db.execute("PRAGMA optimize")

    async def purge_conversations(self, pks: Sequence[int], updated_before: int) -> list[int]:
        if not pks:
            return []
        marks = ",".join("?" * len(pks))
        async with self.transactions.write() as db:
            doomed = [
                row[0]
                for row in db.execute(
                    f"SELECT pk FROM conversations WHERE pk IN ({marks}) AND updated_at < ?",
                    (*pks, updated_before),
                )
            ]
            if doomed:
                marks = ",".join("?" * len(doomed))
                db.execute(f"DELETE FROM items WHERE conv IN ({marks})", doomed)
                db.execute(f"DELETE FROM conversations WHERE pk IN ({marks})", doomed)
        return doomed

    async def count_items(self) -> int:
        # A connection of its own in a worker thread: counting millions of rows must not
        # stall the event loop, and sqlite3 releases the GIL while it runs.
        async with self.transactions.read() as db:
            if self.path == ":memory:":
                return int(db.execute("SELECT count(*) FROM items").fetchone()[0])
        with unavailable(self.corruption):
            return await asyncio.to_thread(_count_items, self.path)

    def pool_use(self) -> PoolUse:
        return PoolUse(1, 0, 1)


def _extract(
    db: sqlite3.Connection, who: tuple[str, str], corruption: Corruption | None
) -> list[search_index.Taken]:
    with unavailable(corruption):
        return search_index.extract(db, who)


def _item_rows(pk: int, items: Sequence[StoredItem]) -> Iterator[tuple[object, ...]]:
    for seq, item in enumerate(items):
        yield (pk, seq, item.id, item.type, item.body, item.mask)


def _count_items(path: str) -> int:
    db = sqlite3.connect(path, timeout=10)
    try:
        return int(db.execute("SELECT count(*) FROM items").fetchone()[0])
    finally:
        db.close()
