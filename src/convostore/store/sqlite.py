"""The embedded SQLite store.

One connection per server process, used from the event loop thread. Every statement
is an indexed point or range query that takes microseconds, less than handing the
call to a worker thread would cost, so the store calls SQLite inline instead of
through an executor (measured in benchmarks/; see docs/design.md). What could take
longer runs elsewhere: waiting for the write lock is an ``asyncio.sleep`` between tries,
search indexing and checkpoints run on a background thread (sqlite_maintenance.py).

* WAL journal: readers never wait for the writer, and several server processes can
  share one file.
* Every transaction goes through :class:`~convostore.store.sqlite_tx.Transactions`:
  ``BEGIN IMMEDIATE`` (the write lock up front, so two processes never deadlock
  upgrading a read lock), retried asynchronously while another connection holds it;
  group commit of the writes of one loop turn with one server process.
* ``synchronous=NORMAL`` (the default) keeps every committed transaction across a
  crash or ``kill -9`` of the process; ``FULL`` also keeps it across power loss, at the
  cost of an fsync per commit.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

from convostore.store import migrate, sql, sqlite_append
from convostore.store.base import (
    SEARCH_TIME_LIMIT,
    AfterMissing,
    AnswerTaken,
    ConversationRow,
    DatabaseMissing,
    ItemAppend,
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
from convostore.store.sqlite_events import SQLiteEvents
from convostore.store.sqlite_ext import SQLiteExtensions
from convostore.store.sqlite_fork import SQLiteFork
from convostore.store.sqlite_health import Corruption
from convostore.store.sqlite_leases import SQLiteLeases
from convostore.store.sqlite_maintenance import Maintenance
from convostore.store.sqlite_responses import SQLiteResponses
from convostore.store.sqlite_search import Searcher
from convostore.store.sqlite_tx import Transactions

log = logging.getLogger("convostore")

SYNCHRONOUS_MODES = ("off", "normal", "full", "extra")
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def _remember(db: sqlite3.Connection, owner: Owner, remember: Remembered | None) -> None:
    """An Idempotency-Key's answer, in the savepoint of its write (:data:`sql.REMEMBER`)."""
    if (
        remember is not None
        and db.execute(sql.REMEMBER, sql.remember_args(owner, remember)).fetchone() is None
    ):
        raise AnswerTaken(remember.key)


def create_private(path: str) -> None:
    """Create the database file readable by its owner only (0600), unless it exists.

    SQLite gives the ``-wal`` and ``-shm`` files it makes beside it the database file's
    permissions, so all three hold the conversations away from other users of the
    machine (issue 15, L10). An existing file keeps the mode its owner gave it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        if os.stat(path).st_mode & 0o077:
            log.warning("%s can be read by other users of this machine (chmod 600 it)", path)


class SQLiteStore(SQLiteExtensions, SQLiteLeases, SQLiteResponses, SQLiteEvents, SQLiteFork):
    """:class:`~convostore.store.base.Store` on one SQLite file."""

    backend = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "normal",
        busy_timeout_ms: int = 10_000,
        group_commit: bool = True,
        search_time_limit: float = SEARCH_TIME_LIMIT,
        create: bool = True,
    ):
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.path = str(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        #: Off: every write commits alone (several server processes on one file).
        self.group_commit = group_commit
        self.search_time_limit = search_time_limit
        #: Off: a file that does not exist is refused (DatabaseMissing), never created.
        self.create = create
        self._db: sqlite3.Connection | None = None
        self._tx: Transactions | None = None
        self._maintenance: Maintenance | None = None
        self._searcher: Searcher | None = None
        self._opened = ExitStack()  # what close() lets go of (open() fills it)
        self.corruption = Corruption(self.path)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            raise RuntimeError("store is not open")
        return self._searcher

    @property
    def transactions(self) -> Transactions:
        if self._tx is None:
            raise RuntimeError("store is not open")
        return self._tx

    async def open(self) -> None:
        if self._db is not None:
            return
        target = self.path
        if self.path != ":memory:":
            # The file only, never its folder: a mistyped path must not grow directories.
            where = Path(self.path).resolve()
            existed = where.exists()
            if not existed and not self.create:
                raise DatabaseMissing(f"no SQLite database at {where}")
            if not existed:
                create_private(str(where))  # 0600, before SQLite makes it (issue 15, L10)
            mode = "rwc" if self.create else "rw"
            target = f"file:{quote(str(where))}?mode={mode}"
        # Each resource's release is registered as it is made: a failed open lets go of
        # what it made, and close() lets go of everything in the reverse order.
        with ExitStack() as opened:
            db = sqlite3.connect(target, isolation_level=None, check_same_thread=False, uri=True)
            opened.callback(db.close)
            if self.path != ":memory:" and not existed:
                log.info("created a new SQLite database at %s", where)
            # Transactions sets busy_timeout to 0 once journal_mode is set (which can wait).
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {self.synchronous}")
            db.execute("PRAGMA foreign_keys = ON")
            # Statement journals in memory: every write runs inside ``SAVEPOINT write`` (group
            # commit), so each INSERT that fires a trigger opens a statement journal, which by
            # default is a temporary file. In memory it is 3x cheaper for append20 (issue 21);
            # it only serves rolling back a statement of the open transaction, never recovery.
            db.execute("PRAGMA temp_store = MEMORY")
            maintenance = None
            if self.path != ":memory:":
                db.execute("PRAGMA wal_autocheckpoint = 0")  # the maintenance thread does it
                # Once checkpointed, the log restarts; this caps the file it leaves behind.
                db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
                maintenance = Maintenance(
                    self.path, synchronous=self.synchronous, corruption=self.corruption
                )
            tx = Transactions(
                db,
                group_commit=self.group_commit,
                lock_timeout=self.busy_timeout_ms / 1000,
                waiting=None if maintenance is None else maintenance.writer_waiting,
                corruption=self.corruption,  # a damaged file: noted, 503, /readyz fails
            )
            if maintenance is not None:
                maintenance.start()
                opened.callback(maintenance.stop)
            searcher = Searcher(
                self.path, db, time_limit=self.search_time_limit, corruption=self.corruption
            )
            opened.callback(searcher.close)
            opened.callback(tx.close)  # first on close: the open turn's writes commit
            self._db, self._tx, self._searcher, self._maintenance = db, tx, searcher, maintenance
            self._opened = opened.pop_all()

    async def close(self) -> None:
        self._db = self._tx = self._searcher = self._maintenance = None
        opened, self._opened = self._opened, ExitStack()
        opened.close()

    def health(self) -> str | None:
        return self.corruption.reason

    # -- migrations ----------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        # Its own transaction, not the loop turn's.
        async with self.transactions.alone() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            done = {row[0] for row in db.execute(sql.APPLIED_MIGRATIONS)}
            for migration in migrate.pending("sqlite", done):
                for statement in migration.statements:
                    db.execute(statement)
                db.execute(
                    sql.RECORD_MIGRATION, (migration.version, migration.name, int(time.time()))
                )
                applied.append(migration.version)
        return applied

    async def schema_version(self) -> int:
        try:
            row = self.db.execute(sql.SCHEMA_VERSION).fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0] or 0)

    # -- conversations -------------------------------------------------------------------------

    async def create_conversation(self, owner: Owner, new: NewConversation) -> None:
        conversation, items = new.conversation, new.items
        async with self.transactions.write() as db:
            cursor = db.execute(
                "INSERT INTO conversations (id, project, user_key, created_at, updated_at,"
                " metadata, next_seq, item_count, safety_identifier)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation.id,
                    owner.project,
                    owner.user,
                    conversation.created_at,
                    conversation.created_at,
                    conversation.metadata,
                    len(items),
                    len(items),
                    conversation.safety_identifier,
                ),
            )
            if items:
                sqlite_append.insert_items(db, int(cursor.lastrowid or 0), 0, items)
            _remember(db, owner, new.remember)

    async def get_conversation(self, owner: Owner, conversation_id: str) -> ConversationRow:
        async with self.transactions.read() as db:
            row = sqlite_append.conversation(db, owner, conversation_id)
        return ConversationRow(conversation_id, row[1], row[2])

    async def set_metadata(self, owner: Owner, update: MetadataUpdate) -> ConversationRow:
        conversation_id, metadata = update.conversation_id, update.metadata
        async with self.transactions.write() as db:
            row = db.execute(
                "UPDATE conversations SET metadata = ?, updated_at = ?"
                " WHERE id = ? AND project = ? AND user_key = ? RETURNING created_at",
                (metadata, int(time.time()), conversation_id, owner.project, owner.user),
            ).fetchone()
            sql.found_conversation(row, conversation_id)
            _remember(db, owner, update.remember)
        return ConversationRow(conversation_id, row[0], metadata)

    async def delete_conversation(self, owner: Owner, conversation_id: str) -> None:
        async with self.transactions.write() as db:
            pk = sqlite_append.conversation_pk(db, owner, conversation_id)
            db.execute("DELETE FROM items WHERE conv = ?", (pk,))
            db.execute("DELETE FROM conversations WHERE pk = ?", (pk,))

    # -- items -----------------------------------------------------------------------------------

    async def append_items(self, owner: Owner, append: ItemAppend) -> None:
        async with self.transactions.write() as db:
            sqlite_append.append(db, owner, append.conversation_id, append.items)
            _remember(db, owner, append.remember)

    async def list_items(
        self,
        owner: Owner,
        conversation_id: str,
        paging: PageQuery,
    ) -> ItemPage:
        after, limit, descending = paging.after, paging.limit, paging.descending
        async with self.transactions.read() as db:
            if after is None:
                pk = sqlite_append.conversation_pk(db, owner, conversation_id)
                statement = (
                    "SELECT id, type, body, mask FROM items WHERE conv = ? ORDER BY seq DESC LIMIT ?"
                    if descending
                    else "SELECT id, type, body, mask FROM items WHERE conv = ? ORDER BY seq LIMIT ?"
                )
                rows = db.execute(statement, (pk, limit + 1))
            else:
                found = db.execute(
                    "SELECT c.pk, a.seq FROM conversations c LEFT JOIN items a ON a.conv = c.pk AND a.id = ?"
                    " WHERE c.id = ? AND c.project = ? AND c.user_key = ?",
                    (after, conversation_id, owner.project, owner.user),
                ).fetchone()
                pk, seq = sql.found_conversation(found, conversation_id)
                if seq is None:
                    raise AfterMissing(after)
                statement = (
                    "SELECT id, type, body, mask FROM items WHERE conv = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
                    if descending
                    else "SELECT id, type, body, mask FROM items WHERE conv = ? AND seq > ? ORDER BY seq LIMIT ?"
                )
                rows = db.execute(statement, (pk, seq, limit + 1))
            # The cursor reads row by row: a page stopped by max_bytes never loads the rest.
            page, has_more = fill_page(rows, limit, paging.max_bytes, lambda r: len(r[2]))
        return ItemPage([StoredItem(*r) for r in page], has_more)

    async def get_item(self, owner: Owner, conversation_id: str, item_id: str) -> StoredItem:
        async with self.transactions.read() as db:
            row = db.execute(
                sql.GET_ITEM, (item_id, conversation_id, owner.project, owner.user)
            ).fetchone()
        return sql.got_item(row, conversation_id, item_id)

    async def delete_item(
        self, owner: Owner, conversation_id: str, item_id: str
    ) -> ConversationRow:
        async with self.transactions.write() as db:
            pk, created_at, metadata = sqlite_append.conversation(db, owner, conversation_id)
            if (
                db.execute("DELETE FROM items WHERE conv = ? AND id = ?", (pk, item_id)).rowcount
                == 0
            ):
                raise ItemMissing(item_id)
            db.execute(
                "UPDATE conversations SET updated_at = ?, item_count = item_count - 1 WHERE pk = ?",
                (int(time.time()), pk),
            )
        return ConversationRow(conversation_id, created_at, metadata)

    async def find_items(self, owner: Owner, item_ids: Sequence[str]) -> dict[str, StoredItem]:
        if not item_ids:
            return {}
        marks = ",".join("?" * len(item_ids))
        # CROSS JOIN fixes the join order: items by id first (items_id), then their
        # conversations by primary key. Left to itself, SQLite walks every conversation of
        # the owner (conversations_owner_created) and probes each: O(conversations).
        async with self.transactions.read() as db:
            rows = db.execute(
                "SELECT i.id, i.type, i.body, i.mask FROM items i CROSS JOIN conversations c"
                f" ON c.pk = i.conv WHERE i.id IN ({marks}) AND c.project = ? AND c.user_key = ?",
                (*item_ids, owner.project, owner.user),
            ).fetchall()
        return {row[0]: StoredItem(*row) for row in rows}

    # -- idempotency keys (issue 20) ------------------------------------------------------------

    async def find_answer(
        self, owner: Owner, key: str, created_since: int
    ) -> tuple[bytes, bytes] | None:
        async with self.transactions.read() as db:
            row = db.execute(
                sql.FIND_ANSWER, (owner.project, owner.user, key, created_since)
            ).fetchone()
        return None if row is None else (row[0], row[1])

    async def purge_answers(self, created_before: int, limit: int) -> int:
        async with self.transactions.write() as db:
            return db.execute(
                "DELETE FROM idempotency_keys WHERE (project, user_key, key) IN (SELECT"
                " project, user_key, key FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
                (created_before, limit),
            ).rowcount

    # -- API keys -----------------------------------------------------------------------------

    async def create_key(self, key: KeyRow) -> None:
        async with self.transactions.write() as db:
            db.execute(sql.INSERT_KEY, sql.key_values(key))

    async def list_keys(self, project: str | None) -> list[KeyRow]:
        async with self.transactions.read() as db:
            if project is None:
                rows = db.execute(sql.LIST_KEYS).fetchall()
            else:
                rows = db.execute(sql.LIST_PROJECT_KEYS, (project,)).fetchall()
        return [KeyRow(*row) for row in rows]

    async def revoke_key(self, key_id: str, when: int) -> bool:
        async with self.transactions.write() as db:
            cursor = db.execute(sql.REVOKE_KEY, (when, key_id))
        return cursor.rowcount > 0

    async def find_key(self, key_hash: bytes) -> KeyRow | None:
        async with self.transactions.read() as db:
            row = db.execute(sql.FIND_KEY, (key_hash,)).fetchone()
        return KeyRow(*row) if row else None

    async def touch_key(self, key_id: str, when: int) -> None:
        async with self.transactions.write() as db:
            db.execute(sql.TOUCH_KEY, (when, key_id))

    async def has_keys(self) -> bool:
        async with self.transactions.read() as db:
            row = db.execute(sql.ANY_KEY).fetchone()
        return row is not None
