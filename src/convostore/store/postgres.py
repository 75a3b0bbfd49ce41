"""The PostgreSQL store: many server processes, on many machines, over one database.

No state lives in a server process: each holds a bounded asyncpg pool
(``min_size``..``max_size`` connections, so a deployment opens at most processes x
``max_size``) and asyncpg keeps the prepared statement of every query below per
connection. Every connection runs at READ COMMITTED, pinned at connect time so a
database-wide ``default_transaction_isolation`` cannot change the reasoning below.

How positions are allocated (CONTRACT.md D15). An append is one statement::

    WITH c AS (UPDATE conversations SET next_seq = next_seq + n … RETURNING pk, next_seq - n),
    s AS (INSERT INTO item_search …)  -- the items' search rows (postgres_search.py)
    INSERT INTO items SELECT c.pk, first + ordinality - 1, … FROM c, unnest(…) WITH ORDINALITY

The ``UPDATE`` takes the conversation's row lock and holds it until the statement
commits. A second append to the same conversation, from any process, blocks on that
lock; when the first commits, READ COMMITTED re-reads the *newest* version of the row
(PostgreSQL re-evaluates an ``UPDATE`` against the updated row rather than its own
snapshot), so it continues from the committed ``next_seq``. Two appends therefore never
reserve overlapping ranges, each request's items get consecutive positions in request
order, and because the reservation and the inserts commit together, committed items of
a conversation always form a gap-free prefix of its sequence (minus deletions): a reader
never sees a later append without the earlier ones. ``unique (conv, seq)`` backs this
up; ``unique (conv, id)`` turns a repeated item id into :class:`ItemConflict`, and the
failing statement leaves nothing behind (D14, D21).

Lock order: every write locks the conversation row before touching its items, so two
convostore transactions never deadlock. Deleting a conversation deletes its row and,
by ``ON DELETE CASCADE`` in the same statement, its items (D4).

Reads are single statements, so each sees one snapshot; a page is a keyset range scan
of the ``(conv, seq)`` primary key: O(log n) in the conversation's length.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from convostore.redact import redact_url
from convostore.store import migrate, postgres_search, sql
from convostore.store.base import (
    AfterMissing,
    AnswerTaken,
    ConversationMissing,
    ConversationRow,
    ItemAppend,
    ItemConflict,
    ItemMissing,
    ItemPage,
    KeyRow,
    MetadataUpdate,
    NewConversation,
    Owner,
    PageQuery,
    Remembered,
    StoredItem,
    fill_page,
)
from convostore.store.postgres_events import PostgresEvents
from convostore.store.postgres_ext import NO_BUDGET, PostgresExtensions, fitting_size, within_bytes
from convostore.store.postgres_fork import PostgresFork
from convostore.store.postgres_leases import PostgresLeases
from convostore.store.postgres_responses import PostgresResponses
from convostore.store.postgres_tx import Database
from convostore.store.sql import numbered, remember_args

# Key of the advisory lock every migrating process takes ("convosto" in ASCII).
MIGRATION_LOCK = 0x636F6E766F73746F

_OWNED = "id = $1 AND project = $2 AND user_key = $3"

_CREATE_TABLE_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)"
)

# The items of a request as four parallel arrays, numbered from 1 in request order.
_UNNEST = (
    "unnest({}::text[], {}::text[], {}::bytea[], {}::bigint[])"
    " WITH ORDINALITY AS t(id, type, body, mask, n)"
)

_CREATE = (
    "WITH c AS ("
    " INSERT INTO conversations"
    " (id, project, user_key, created_at, updated_at, metadata, next_seq, item_count,"
    " safety_identifier)"
    " VALUES ($1, $2, $3, $4, $4, $5, cardinality($6::text[]), cardinality($6::text[]), $10)"
    " RETURNING pk), "
    + postgres_search.cte("0", "$11", "$12", "$13")
    + " INSERT INTO items (conv, seq, id, type, body, mask)"
    " SELECT c.pk, t.n - 1, t.id, t.type, t.body, t.mask FROM c, "
    + _UNNEST.format("$6", "$7", "$8", "$9")
)

# _CREATE without items (the usual create): no items statement, so none of its triggers
# (the foreign key's, the search index's statement trigger) runs: 85 against 116 us of
# PostgreSQL's time per create, measured with EXPLAIN ANALYZE.
_CREATE_EMPTY = (
    "INSERT INTO conversations"
    " (id, project, user_key, created_at, updated_at, metadata, next_seq, item_count,"
    " safety_identifier)"
    " VALUES ($1, $2, $3, $4, $4, $5, 0, 0, $6)"
)

_APPEND = (
    "WITH c AS ("
    " UPDATE conversations SET next_seq = next_seq + cardinality($5::text[]),"
    " item_count = item_count + cardinality($5::text[]), updated_at = $4"
    f" WHERE {_OWNED} RETURNING pk, next_seq - cardinality($5::text[]) AS first), "
    + postgres_search.cte("c.first", "$9", "$10", "$11")
    + " INSERT INTO items (conv, seq, id, type, body, mask)"
    " SELECT c.pk, c.first + t.n - 1, t.id, t.type, t.body, t.mask FROM c, "
    + _UNNEST.format("$5", "$6", "$7", "$8")
)

_TOUCH = (
    f"UPDATE conversations SET updated_at = $4 WHERE {_OWNED} RETURNING pk, created_at, metadata"
)

# _TOUCH for an item delete: one item fewer (rolled back with the delete if none went).
_TOUCH_DELETE = (
    "UPDATE conversations SET updated_at = $4, item_count = item_count - 1"
    f" WHERE {_OWNED} RETURNING pk, created_at, metadata"
)


_REMEMBER = numbered(sql.REMEMBER)
_FIND_ANSWER = numbered(sql.FIND_ANSWER)
_GET_ITEM = numbered(sql.GET_ITEM)
_RECORD_MIGRATION = numbered(sql.RECORD_MIGRATION)
_INSERT_KEY = numbered(sql.INSERT_KEY)
_LIST_PROJECT_KEYS = numbered(sql.LIST_PROJECT_KEYS)
_REVOKE_KEY = numbered(sql.REVOKE_KEY)
_FIND_KEY = numbered(sql.FIND_KEY)
_TOUCH_KEY = numbered(sql.TOUCH_KEY)

_PURGE_ANSWERS = (
    "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM idempotency_keys WHERE created_at < $1 LIMIT $2))"
)


def _page_sql(after: bool, descending: bool) -> str:
    """One statement that checks the owner, finds the ``after`` anchor and reads the page.

    It answers one row per item, or a single row with a NULL item when the page is
    empty, or no row when the conversation is not the owner's. ``anchor`` is the
    ``after`` item's position (NULL when it is not in the conversation).
    """
    order, compare = ("DESC", "<") if descending else ("ASC", ">")
    anchor_join = " LEFT JOIN items a ON a.conv = c.pk AND a.id = $6" if after else ""
    anchor = "a.seq" if after else "NULL::bigint"
    bound = f" AND i.seq {compare} a.seq" if after else ""
    return (
        f"SELECT {anchor} AS anchor, p.id, p.type, p.fitting, p.mask, p.seq"
        f" FROM conversations c{anchor_join}"
        " LEFT JOIN LATERAL ("
        + within_bytes(
            "SELECT i.id, i.type, i.body, i.mask, i.seq FROM items i"
            f" WHERE i.conv = c.pk{bound} ORDER BY i.seq {order} LIMIT $4",
            f"seq {order}",
            "$5",
            "t.id, t.type, t.fitting, t.mask, t.seq",
        )
        + ") p ON true"
        " WHERE c.id = $1 AND c.project = $2 AND c.user_key = $3"
    )


PAGE_SQL = {(a, d): _page_sql(a, d) for a in (False, True) for d in (False, True)}

# The ids first (items_id), then each one's conversation by key, in a subplan the planner
# cannot turn into a join: a merge join would walk conversations_pkey up to the item's
# conversation, O(conversations).
_FIND_ITEMS = (
    "SELECT i.id, i.type, i.body, i.mask FROM items i WHERE i.id = ANY($1::text[])"
    " AND (SELECT c.project = $2 AND c.user_key = $3 FROM conversations c WHERE c.pk = i.conv)"
)


async def _keep_session(connection: asyncpg.Connection[asyncpg.Record]) -> None:
    """Reset hook of the pool: nothing to undo.

    asyncpg's default reset sends ``RESET ALL; UNLISTEN *; CLOSE ALL;
    pg_advisory_unlock_all()`` on every release, a round trip per request. The store leaves
    no session state behind (no SET, LISTEN, cursors or session-level locks), and asyncpg
    still rolls back a transaction left open before it calls this hook.
    """


def _rows(status: str) -> int:
    """The row count of a command status such as ``INSERT 0 3`` or ``DELETE 1``."""
    return int(status.rpartition(" ")[2])


def _columns(items: Sequence[StoredItem]) -> tuple[list[str], list[str], list[bytes], list[int]]:
    return (
        [item.id for item in items],
        [item.type for item in items],
        [item.body for item in items],
        [item.mask for item in items],
    )


class PostgresStore(
    PostgresExtensions, PostgresLeases, PostgresResponses, PostgresEvents, PostgresFork
):
    """:class:`~convostore.store.base.Store` on a PostgreSQL database."""

    backend = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10,
        timeout: float | None = 30,
    ):
        if max_size < 1 or not 0 <= min_size <= max_size:
            raise ValueError(
                f"need 0 <= min_size <= max_size and max_size >= 1, got {min_size}, {max_size}"
            )
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        # Every statement and transaction goes through here (store/postgres_tx.py), bounded
        # by ``timeout`` seconds.
        self.db = Database(lambda: self.pool, timeout, max_size)

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.dsn)!r}, max_size={self.max_size})"

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def open(self) -> None:
        """Create the pool on the running event loop (the one that will serve requests)."""
        if self._pool is not None:
            return
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.connect_timeout,
            reset=_keep_session,
            server_settings={
                "application_name": "convostore",
                "default_transaction_isolation": "read committed",
            },
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self.db.close()
            pool, self._pool = self._pool, None
            await pool.close()

    # -- migrations ----------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction, under an advisory lock.

        Processes that start together queue on the lock; each statement after it takes a
        fresh snapshot (READ COMMITTED), so a waiter sees the versions the holder recorded
        and applies nothing twice.
        """
        applied: list[int] = []
        async with self.db.transaction(bounded=False) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(_CREATE_TABLE_MIGRATIONS)
            done = {row[0] for row in await conn.fetch(sql.APPLIED_MIGRATIONS)}
            for migration in migrate.pending("postgres", done):
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    _RECORD_MIGRATION, migration.version, migration.name, int(time.time())
                )
                applied.append(migration.version)
        return applied

    async def schema_version(self) -> int:
        try:
            version = await self.db.fetchval(sql.SCHEMA_VERSION)
        except asyncpg.UndefinedTableError:
            return 0
        return int(version or 0)

    # -- conversations -------------------------------------------------------------------------

    async def create_conversation(self, owner: Owner, new: NewConversation) -> None:
        conversation, items, remember = new.conversation, new.items, new.remember
        args = (
            conversation.id,
            owner.project,
            owner.user,
            conversation.created_at,
            conversation.metadata,
        )
        if not items:
            await self._insert(
                _CREATE_EMPTY, (*args, conversation.safety_identifier), owner, remember
            )
            return
        await self._insert(
            _CREATE,
            (
                *args,
                *_columns(items),
                conversation.safety_identifier,
                *postgres_search.args(owner, items),
            ),
            owner,
            remember,
        )

    async def get_conversation(self, owner: Owner, conversation_id: str) -> ConversationRow:
        row = await self.db.fetchrow(
            f"SELECT created_at, metadata FROM conversations WHERE {_OWNED}",
            conversation_id,
            owner.project,
            owner.user,
        )
        if row is None:
            raise ConversationMissing(conversation_id)
        return ConversationRow(conversation_id, row[0], row[1])

    async def set_metadata(self, owner: Owner, update: MetadataUpdate) -> ConversationRow:
        conversation_id, metadata = update.conversation_id, update.metadata

        def found(created_at: Any) -> None:
            if created_at is None:
                raise ConversationMissing(conversation_id)

        created_at = await self._write(
            "fetchval",
            f"UPDATE conversations SET metadata = $4, updated_at = $5 WHERE {_OWNED} RETURNING created_at",
            (conversation_id, owner.project, owner.user, metadata, int(time.time())),
            found,
            owner,
            update.remember,
        )
        return ConversationRow(conversation_id, created_at, metadata)

    async def delete_conversation(self, owner: Owner, conversation_id: str) -> None:
        # The items go with it: ON DELETE CASCADE, in this statement's transaction.
        status = await self.db.execute(
            f"DELETE FROM conversations WHERE {_OWNED}", conversation_id, owner.project, owner.user
        )
        if _rows(status) == 0:
            raise ConversationMissing(conversation_id)

    # -- items -----------------------------------------------------------------------------------

    async def _write(
        self,
        how: str,
        sql: str,
        args: tuple[Any, ...],
        check: Callable[[Any], None],
        owner: Owner,
        remember: Remembered | None,
    ) -> Any:
        """One write statement, its result passed to ``check`` (which raises to refuse it).
        With ``remember``: in a transaction with the answer of its idempotency key, both
        undone when ``check`` refuses or the key is taken."""
        if remember is None:
            result = await getattr(self.db, how)(sql, *args, writes=True)
            check(result)
            return result
        async with self.db.transaction() as conn:
            result = await getattr(conn, how)(sql, *args)
            check(result)
            if await conn.fetchval(_REMEMBER, *remember_args(owner, remember)) is None:
                raise AnswerTaken(remember.key)
        return result

    async def _insert(
        self,
        sql: str,
        args: tuple[Any, ...],
        owner: Owner,
        remember: Remembered | None,
        missing: str | None = None,
    ) -> None:
        """Run an insert of items; a repeated id in the conversation is an
        :class:`ItemConflict`, no row inserted a :class:`ConversationMissing` of ``missing``."""

        def inserted(status: str) -> None:
            if missing is not None and _rows(status) == 0:
                raise ConversationMissing(missing)

        try:
            await self._write("execute", sql, args, inserted, owner, remember)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "items_conv_id":
                raise ItemConflict(str(exc)) from None
            raise

    async def append_items(self, owner: Owner, append: ItemAppend) -> None:
        conversation_id, items, remember = append.conversation_id, append.items, append.remember
        key = (conversation_id, owner.project, owner.user, int(time.time()))
        if not items:

            def found(row: Any) -> None:
                if row is None:
                    raise ConversationMissing(conversation_id)

            await self._write("fetchrow", _TOUCH, key, found, owner, remember)
            return
        # No row inserted means the UPDATE matched no conversation of the owner.
        await self._insert(
            _APPEND,
            (*key, *_columns(items), *postgres_search.args(owner, items)),
            owner,
            remember,
            conversation_id,
        )

    async def list_items(self, owner: Owner, conversation_id: str, paging: PageQuery) -> ItemPage:
        after, limit, descending = paging.after, paging.limit, paging.descending
        max_bytes = paging.max_bytes
        args: list[Any] = [
            conversation_id, owner.project, owner.user, limit + 1, max_bytes or NO_BUDGET
        ]  # fmt: skip
        if after is not None:
            args.append(after)
        rows = await self.db.fetch(PAGE_SQL[after is not None, descending], *args)
        if not rows:
            raise ConversationMissing(conversation_id)
        if after is not None and rows[0]["anchor"] is None:
            raise AfterMissing(after)
        if rows[0]["id"] is None:
            return ItemPage([], False)
        # The nested loop emits the index order; SQL only promises it with an outer ORDER BY,
        # so make it independent of the plan (an O(n) check on sorted input).
        rows.sort(key=lambda row: int(row["seq"]), reverse=descending)
        page, has_more = fill_page(rows, limit, max_bytes, fitting_size)
        items = [StoredItem(r["id"], r["type"], r["fitting"], r["mask"]) for r in page]
        return ItemPage(items, has_more)

    async def get_item(self, owner: Owner, conversation_id: str, item_id: str) -> StoredItem:
        row = await self.db.fetchrow(_GET_ITEM, item_id, conversation_id, owner.project, owner.user)
        return sql.got_item(row, conversation_id, item_id)

    async def delete_item(
        self, owner: Owner, conversation_id: str, item_id: str
    ) -> ConversationRow:
        # Lock the conversation first, like every write (see the module docstring); a
        # missing item rolls the touch of updated_at back.
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(
                _TOUCH_DELETE, conversation_id, owner.project, owner.user, int(time.time())
            )
            if row is None:
                raise ConversationMissing(conversation_id)
            status = await conn.execute(
                "DELETE FROM items WHERE conv = $1 AND id = $2", row[0], item_id
            )
            if _rows(status) == 0:
                raise ItemMissing(item_id)
        return ConversationRow(conversation_id, row[1], row[2])

    async def find_items(self, owner: Owner, item_ids: Sequence[str]) -> dict[str, StoredItem]:
        if not item_ids:
            return {}
        rows = await self.db.fetch(_FIND_ITEMS, list(item_ids), owner.project, owner.user)
        return {row[0]: StoredItem(row[0], row[1], row[2], row[3]) for row in rows}

    # -- idempotency keys (issue 20) ------------------------------------------------------------

    async def find_answer(
        self, owner: Owner, key: str, created_since: int
    ) -> tuple[bytes, bytes] | None:
        row = await self.db.fetchrow(_FIND_ANSWER, owner.project, owner.user, key, created_since)
        return None if row is None else (row[0], row[1])

    async def purge_answers(self, created_before: int, limit: int) -> int:
        return _rows(await self.db.execute(_PURGE_ANSWERS, created_before, limit))

    # -- API keys -----------------------------------------------------------------------------

    async def create_key(self, key: KeyRow) -> None:
        await self.db.execute(_INSERT_KEY, *sql.key_values(key))

    async def list_keys(self, project: str | None) -> list[KeyRow]:
        if project is None:
            rows = await self.db.fetch(sql.LIST_KEYS)
        else:
            rows = await self.db.fetch(_LIST_PROJECT_KEYS, project)
        return [KeyRow(*row) for row in rows]

    async def revoke_key(self, key_id: str, when: int) -> bool:
        return _rows(await self.db.execute(_REVOKE_KEY, when, key_id)) > 0

    async def find_key(self, key_hash: bytes) -> KeyRow | None:
        row = await self.db.fetchrow(_FIND_KEY, key_hash)
        return KeyRow(*row) if row else None

    async def touch_key(self, key_id: str, when: int) -> None:
        await self.db.execute(_TOUCH_KEY, when, key_id)

    async def has_keys(self) -> bool:
        row = await self.db.fetchrow(sql.ANY_KEY)
        return row is not None
