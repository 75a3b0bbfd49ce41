"""The PostgreSQL side of the extensions (issue 7): list, search, export/import, retention.

A mixin of :class:`~convostore.store.postgres.PostgresStore`, kept apart so the core store
stays small. Search reads ``item_search`` (a tsvector per item with text, numbered in
append order and kept by a trigger, see migration 0003) through its GIN index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from convostore.store import listing, search_text
from convostore.store.base import (
    SEARCH_TIME_LIMIT,
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
    SearchTooCostly,
)
from convostore.store.postgres_tx import Database
from convostore.store.sql import imported_conversation, key_values, numbered

_ANCHOR = numbered(listing.anchor_sql())

NO_BUDGET = 1 << 62  # max_bytes None: no page budget


def fitting_size(row: Any) -> int:
    """A row's body size for fill_page; past the budget (the SQL's NULL) as good as infinite."""
    body = row["fitting"]
    return NO_BUDGET if body is None else len(body)


def within_bytes(page: str, order: str, budget: str, columns: str) -> str:
    """``page`` (a query with a ``body`` column, in ``order``) cut at ``budget`` bytes of
    bodies (store.base.fill_page): the rows that fit, the first always, then one row whose
    ``fitting`` body is NULL when more follow (select ``fitting``, never ``body``). The
    sizes come from the values' headers (``octet_length`` does not detoast), so bodies
    past the budget are never read. ``columns``: of ``page``, ``fitting`` for the body."""
    return (
        f"SELECT {columns} FROM (SELECT q.*,"
        f" CASE WHEN q.upto <= {budget} OR q.n = 1 THEN q.body END AS fitting FROM ("
        f"SELECT r.*, sum(octet_length(r.body)) OVER w AS upto, row_number() OVER w AS n"
        f" FROM ({page}) r WINDOW w AS (ORDER BY r.{order} ROWS UNBOUNDED PRECEDING)) q"
        f" WHERE q.upto - octet_length(q.body) <= {budget} OR q.n <= 2) t ORDER BY t.{order}"
    )


_SEARCH = (
    "SELECT s.pk, c.id AS conversation_id, i.id, i.type, i.body, i.mask FROM item_search s"
    " JOIN conversations c ON c.pk = s.conv"
    " JOIN items i ON i.conv = s.conv AND i.seq = s.seq"
    " WHERE s.tsv @@ to_tsquery('simple', $1) AND c.project = $2 AND c.user_key = $3{bound}"
    " ORDER BY s.pk DESC LIMIT $4"
)

_SEARCH_ANCHOR = (
    "SELECT s.pk FROM conversations c JOIN items i ON i.conv = c.pk AND i.id = $1"
    " JOIN item_search s ON s.conv = i.conv AND s.seq = i.seq"
    " WHERE c.id = $2 AND c.project = $3 AND c.user_key = $4"
)

_SCAN_ITEMS = (
    "SELECT conv, seq, id, type, body, mask FROM items"
    " WHERE conv BETWEEN $2 AND $3 AND (conv, seq) > ($2, $4) AND conv = ANY($1::bigint[])"
    " ORDER BY conv, seq LIMIT $5"
)

# A whole import batch in two statements: the conversations (in file order, so their pks
# keep it), then every item of those that were new.
_IMPORT_CONVERSATIONS = (
    "INSERT INTO conversations"
    " (id, project, user_key, created_at, updated_at, metadata, next_seq, item_count,"
    " safety_identifier)"
    " SELECT t.id, t.project, t.user_key, t.created_at, t.updated_at, t.metadata, t.next_seq,"
    " t.next_seq, t.safety_identifier"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bytea[],"
    " $7::bigint[], $8::text[]) WITH ORDINALITY"
    " AS t(id, project, user_key, created_at, updated_at, metadata, next_seq, safety_identifier,"
    " n)"
    " ORDER BY t.n ON CONFLICT (id) DO NOTHING RETURNING pk, id"
)

_IMPORT_ITEMS = (
    "INSERT INTO items (conv, seq, id, type, body, mask)"
    " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bytea[],"
    " $6::bigint[])"
)

# Below this many rows (by the statistics) the gauge counts exactly.
EXACT_COUNT_BELOW = 100_000


class PostgresExtensions:
    """List, search, scans for export and purge, import, counts."""

    max_size: int
    db: Database
    search_time_limit: float = SEARCH_TIME_LIMIT

    async def list_conversations(
        self, owner: Owner, where: ConversationFilter, paging: PageQuery
    ) -> ConversationPage:
        owned = (owner.project, owner.user)
        anchors = [
            listing.anchor(
                None if cursor is None else await self.db.fetchrow(_ANCHOR, cursor, *owned),
                cursor,
                missing,
            )
            for cursor, missing in listing.cursors(paging)
        ]
        sql, args = listing.list_sql(
            owner, where, anchors[0], paging.limit, paging.descending, anchors[1]
        )
        return listing.conversation_page(list(await self.db.fetch(numbered(sql), *args)), paging)

    async def search_items(self, owner: Owner, search: ItemSearch) -> SearchPage:
        tag = search_text.owner_tag(owner.project, owner.user)
        query = search_text.tsquery(tag, search.query)
        args: list[Any] = [query, owner.project, owner.user, search.limit + 1]
        bound = ""
        if search.after is not None:
            conversation_id, item_id = search.after
            found = await self.db.fetchval(
                _SEARCH_ANCHOR, item_id, conversation_id, owner.project, owner.user
            )
            if found is None:
                raise SearchAfterMissing(f"{conversation_id}/{item_id}")
            bound = " AND s.pk < $5"
            args.append(found)
        try:
            rows = await self.db.fetch(
                _SEARCH.format(bound=bound), *args, timeout=self.search_time_limit
            )
        except TimeoutError:  # asyncpg cancelled the query on the server
            raise SearchTooCostly(f"the search ran past {self.search_time_limit:g} s") from None
        return listing.search_page(rows, search)

    async def scan_conversations(self, scan: ConversationScan) -> list[ScannedConversation]:
        sql, args = listing.scan_sql(scan, id_list="= ANY(?::text[])")
        return listing.scanned(await self.db.fetch(numbered(sql), *args))

    async def scan_items(
        self, conversation_pks: Sequence[int], *, after: tuple[int, int], limit: int
    ) -> list[ScannedItem]:
        if not conversation_pks:
            return []
        low, high = max(after[0], min(conversation_pks)), max(conversation_pks)
        seq = after[1] if low == after[0] else -1
        rows = await self.db.fetch(_SCAN_ITEMS, list(conversation_pks), low, high, seq, limit)
        return listing.scanned_items(rows)

    async def count_conversations(self, *, project: str | None, ids: Sequence[str] | None) -> int:
        sql = "SELECT count(*) FROM conversations WHERE true"
        args: list[Any] = []
        if project is not None:
            args.append(project)
            sql += f" AND project = ${len(args)}"
        if ids is not None:
            args.append(list(ids))
            sql += f" AND id = ANY(${len(args)}::text[])"
        return int(await self.db.fetchval(sql, *args))

    async def import_conversations(self, dumps: Sequence[ConversationDump]) -> list[str]:
        if not dumps:
            return []
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [])
        for dump in dumps:
            for column, value in zip(columns, imported_conversation(dump), strict=True):
                column.append(value)
        async with self.db.transaction(bounded=False) as conn:  # a batch of any size
            created = {r[1]: r[0] for r in await conn.fetch(_IMPORT_CONVERSATIONS, *columns)}
            items: tuple[list[Any], ...] = ([], [], [], [], [], [])
            skipped: list[str] = []
            for dump in dumps:
                pk = created.pop(dump.conversation.id, None)  # a second line with an id: skipped
                if pk is None:
                    skipped.append(dump.conversation.id)
                    continue
                for seq, item in enumerate(dump.items):
                    for column, value in zip(
                        items, (pk, seq, item.id, item.type, item.body, item.mask), strict=True
                    ):
                        column.append(value)
            if items[0]:
                await conn.execute(_IMPORT_ITEMS, *items)
        return skipped

    async def import_keys(self, keys: Sequence[KeyRow]) -> list[str]:
        if not keys:
            return []
        async with self.db.transaction() as conn:
            added = await conn.fetch(
                "INSERT INTO api_keys (id, hash, prefix, project, name, created_at,"
                " last_used_at, revoked_at)"
                " SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[],"
                " $5::text[], $6::bigint[], $7::bigint[], $8::bigint[])"
                " ON CONFLICT DO NOTHING RETURNING id",
                *(list(column) for column in zip(*map(key_values, keys), strict=True)),
            )
        kept = {row[0] for row in added}
        return [key.id for key in keys if key.id not in kept]

    async def analyze(self) -> None:
        # Fresh statistics after a bulk load: without them the planner guessed a scan of
        # the whole items table for a page (docs/benchmarks.md).
        await self.db.execute("ANALYZE", writes=False)

    async def purge_conversations(self, pks: Sequence[int], updated_before: int) -> list[int]:
        if not pks:
            return []
        # Items, their search rows and metadata rows go with it (ON DELETE CASCADE).
        rows = await self.db.fetch(
            "DELETE FROM conversations WHERE pk = ANY($1::bigint[]) AND updated_at < $2"
            " RETURNING pk",
            list(pks),
            updated_before,
            writes=True,
        )
        return [int(r[0]) for r in rows]

    async def count_items(self) -> int:
        estimate = await self.db.fetchval(
            "SELECT coalesce(n_live_tup, 0) FROM pg_stat_user_tables"
            " WHERE relid = 'items'::regclass"
        )
        if estimate is None or estimate < EXACT_COUNT_BELOW:
            return int(await self.db.fetchval("SELECT count(*) FROM items"))
        return int(estimate)

    def health(self) -> str | None:
        return None  # PostgreSQL reports its own damage as errors (503 where it matters)

    def pool_use(self) -> PoolUse:
        pool = self._pool_or_none()
        if pool is None:
            return PoolUse(0, 0, self.max_size)
        size = pool.get_size()
        # The transaction helper keeps its idle connections out of the pool's idle count.
        idle = pool.get_idle_size() + self.db.idle
        return PoolUse(size, size - idle, self.max_size)

    def _pool_or_none(self) -> asyncpg.Pool[asyncpg.Record] | None:
        pool: asyncpg.Pool[asyncpg.Record] | None = getattr(self, "_pool", None)
        return pool
