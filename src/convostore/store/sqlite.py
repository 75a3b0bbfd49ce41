"""The embedded SQLite store.

One connection per server process, used from the event loop thread. Every statement
is an indexed point or range query that takes microseconds, less than handing the
call to a worker thread would cost, so the store calls SQLite inline instead of
through an executor (measured in benchmarks/; see docs/design.md).

* WAL journal: readers never wait for the writer, and several server processes can
  share one file.
* Writes run in ``BEGIN IMMEDIATE`` transactions, which take the write lock up front,
  so two processes never deadlock upgrading a read lock; ``busy_timeout`` makes a
  second writer wait for the lock instead of failing with "database is locked".
* ``synchronous=NORMAL`` (the default) keeps every committed transaction across a
  crash or ``kill -9`` of the process; ``FULL`` also keeps it across power loss, at the
  cost of an fsync per commit.
* Group commit: the writes of one turn of the event loop share one transaction. The
  first opens it (``BEGIN IMMEDIATE``) and schedules its ``COMMIT`` for the end of the
  turn; each write runs in a savepoint of its own, so a refused one (a duplicate id, a
  missing conversation) undoes only itself. No store call returns before the
  transaction holding what it wrote, or what it read, has committed: an answer never
  acknowledges a write that is not durable, nor shows one that could still fail. A
  commit writes each changed page to the log once, however many requests changed it:
  concurrent creates and appends share their index pages, so this removes most of the
  per-request log writes and lock system calls. With several server processes on one
  file (``--workers N``) it is off: a process holding the lock for a whole turn made
  the others' writes wait (p99 700 ms with 2 workers), so each write commits alone.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from convostore.store import migrate
from convostore.store.base import (
    AfterMissing,
    AnswerTaken,
    ConversationMissing,
    ConversationRow,
    ItemConflict,
    ItemMissing,
    ItemPage,
    KeyRow,
    Owner,
    PageQuery,
    Remembered,
    StoredItem,
    unavailable_on,
)
from convostore.store.sqlite_ext import SQLiteExtensions
from convostore.store.sqlite_leases import SQLiteLeases
from convostore.store.sqlite_maintenance import Maintenance

SYNCHRONOUS_MODES = ("off", "normal", "full", "extra")
WAL_SIZE_LIMIT = 64 * 1024 * 1024

_Class = TypeVar("_Class", bound=type)


class _Group:
    """The writes of one turn of the event loop, committed together, and the calls
    waiting for that commit."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[asyncio.Future[None]] = []

    def settle(self, error: BaseException | None) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)


def _settled(cls: _Class) -> _Class:
    """Every public coroutine method of ``cls`` (its mixins' too) returns only once the
    transaction open when it finished has committed (see the module docstring)."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        async def settled(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
            result = await method(self, *args, **kwargs)
            group = self._group
            if group is not None:
                waiter = asyncio.get_running_loop().create_future()
                group.waiters.append(waiter)
                await waiter
            return result

        return settled

    for name in dir(cls):
        member = getattr(cls, name)
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, wrap(member))
    return cls


# The stores with an open group, by event loop.
_HOLDING: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop | None, weakref.WeakSet[SQLiteStore]
] = weakref.WeakKeyDictionary()

# An Idempotency-Key's answer, in the savepoint of its write: a live record of the key
# returns no row (see the PostgreSQL store).
_REMEMBER = (
    "INSERT INTO idempotency_keys AS k (project, user_key, key, fingerprint, answer, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project, user_key, key) DO UPDATE"
    " SET fingerprint = excluded.fingerprint, answer = excluded.answer,"
    " created_at = excluded.created_at WHERE k.created_at < ? RETURNING 1"
)


def _remember(db: sqlite3.Connection, owner: Owner, remember: Remembered | None) -> None:
    if remember is None:
        return
    row = db.execute(
        _REMEMBER,
        (
            owner.project,
            owner.user,
            remember.key,
            remember.fingerprint,
            remember.answer,
            remember.created_at,
            remember.expired_before,
        ),
    ).fetchone()
    if row is None:
        raise AnswerTaken(remember.key)


_CONVERSATION = "SELECT pk, created_at, metadata FROM conversations WHERE id = ? AND project = ? AND user_key = ?"


@unavailable_on(sqlite3.OperationalError)
@_settled
class SQLiteStore(SQLiteExtensions, SQLiteLeases):
    """:class:`~convostore.store.base.Store` on one SQLite file."""

    backend = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "normal",
        busy_timeout_ms: int = 10_000,
        group_commit: bool = True,
    ):
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.path = str(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        #: Off: every write commits alone (several server processes on one file).
        self.group_commit = group_commit
        self._db: sqlite3.Connection | None = None
        self._maintenance: Maintenance | None = None
        self._group: _Group | None = None  # the open transaction of this loop turn

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def open(self) -> None:
        if self._db is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {self.synchronous}")
        db.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            db.execute("PRAGMA wal_autocheckpoint = 0")  # the maintenance thread does it
            # Once checkpointed, the log restarts; this caps the file it leaves behind.
            db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            self._maintenance = Maintenance(self.path, synchronous=self.synchronous)
            self._maintenance.start()
        self._db = db

    async def close(self) -> None:
        if self._group is not None:
            self._commit(self._group)
        if self._maintenance is not None:
            self._maintenance.stop()
            self._maintenance = None
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write in this loop turn's transaction (opened here if need be), in a
        savepoint: undone alone if it raises."""
        db = self.db
        group = self._group
        if group is None:
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (not a request): no one to share with
                loop = None
            self._begin(loop)
            if loop is None or not self.group_commit:
                with self._alone(db):
                    yield db
                return
            group = self._group = _Group()
            _HOLDING.setdefault(loop, weakref.WeakSet()).add(self)
            loop.call_soon(self._commit, group)
        db.execute("SAVEPOINT write")
        try:
            yield db
            db.execute("RELEASE write")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK TO write")
                db.execute("RELEASE write")
            elif self._group is group:
                # SQLite rolled the whole transaction back (a full disk, an I/O error):
                # the writes before this one are gone too, and none was acknowledged.
                self._group = None
                group.settle(exc)
            raise

    def _begin(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """``BEGIN IMMEDIATE``, once the other stores of this loop have committed: one
        thread holds one write lock at a time, and waiting here for a lock another store
        of this thread holds until the end of the turn would never end (tests run two
        "processes" in one loop)."""
        if loop is not None:
            for other in list(_HOLDING.get(loop, ())):
                if other is not self and other._group is not None:
                    other._commit(other._group)
        self.db.execute("BEGIN IMMEDIATE")

    @staticmethod
    @contextmanager
    def _alone(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """The transaction already begun on ``db``, committed on its own."""
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _commit(self, group: _Group) -> None:
        """The end of a loop turn: commit its writes and answer everyone waiting."""
        if self._group is not group:
            return  # already failed and settled
        self._group = None
        db = self.db
        try:
            db.execute("COMMIT")
        except BaseException as exc:
            # A COMMIT that failed may leave the transaction open; the connection must
            # come out of here without one, or every later BEGIN would fail.
            if db.in_transaction:
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            group.settle(exc)
        else:
            group.settle(None)

    # -- migrations ----------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        # Its own transaction, not the loop turn's: servers starting together migrate at
        # once, and one must not hold the lock while the others wait on the same thread.
        db = self.db
        self._begin(asyncio.get_running_loop())
        with self._alone(db):
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
            for migration in migrate.load("sqlite"):
                if migration.version in done:
                    continue
                for statement in migration.statements:
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, int(time.time())),
                )
                applied.append(migration.version)
        return applied

    async def schema_version(self) -> int:
        try:
            row = self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0] or 0)

    # -- conversations -------------------------------------------------------------------------

    def _conversation_pk(self, db: sqlite3.Connection, owner: Owner, conversation_id: str) -> int:
        row = db.execute(
            "SELECT pk FROM conversations WHERE id = ? AND project = ? AND user_key = ?",
            (conversation_id, owner.project, owner.user),
        ).fetchone()
        if row is None:
            raise ConversationMissing(conversation_id)
        return int(row[0])

    async def create_conversation(
        self,
        owner: Owner,
        conversation: ConversationRow,
        items: Sequence[StoredItem],
        remember: Remembered | None = None,
    ) -> None:
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO conversations"
                " (id, project, user_key, created_at, updated_at, metadata, next_seq, item_count)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation.id,
                    owner.project,
                    owner.user,
                    conversation.created_at,
                    conversation.created_at,
                    conversation.metadata,
                    len(items),
                    len(items),
                ),
            )
            if items:
                self._insert_items(db, int(cursor.lastrowid or 0), 0, items)
            _remember(db, owner, remember)

    async def get_conversation(self, owner: Owner, conversation_id: str) -> ConversationRow:
        row = self.db.execute(
            _CONVERSATION, (conversation_id, owner.project, owner.user)
        ).fetchone()
        if row is None:
            raise ConversationMissing(conversation_id)
        return ConversationRow(conversation_id, row[1], row[2])

    async def set_metadata(
        self,
        owner: Owner,
        conversation_id: str,
        metadata: bytes,
        remember: Remembered | None = None,
    ) -> ConversationRow:
        with self._write() as db:
            row = db.execute(
                "UPDATE conversations SET metadata = ?, updated_at = ?"
                " WHERE id = ? AND project = ? AND user_key = ? RETURNING created_at",
                (metadata, int(time.time()), conversation_id, owner.project, owner.user),
            ).fetchone()
            if row is None:
                raise ConversationMissing(conversation_id)
            _remember(db, owner, remember)
        return ConversationRow(conversation_id, row[0], metadata)

    async def delete_conversation(self, owner: Owner, conversation_id: str) -> None:
        with self._write() as db:
            pk = self._conversation_pk(db, owner, conversation_id)
            db.execute("DELETE FROM items WHERE conv = ?", (pk,))
            db.execute("DELETE FROM conversations WHERE pk = ?", (pk,))

    # -- items -----------------------------------------------------------------------------------

    @staticmethod
    def _insert_items(
        db: sqlite3.Connection, pk: int, first_seq: int, items: Sequence[StoredItem]
    ) -> None:
        try:
            db.executemany(
                "INSERT INTO items (conv, seq, id, type, body, mask) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (pk, first_seq + n, item.id, item.type, item.body, item.mask)
                    for n, item in enumerate(items)
                ],
            )
        except sqlite3.IntegrityError as exc:
            raise ItemConflict(str(exc)) from None

    @staticmethod
    def _reserve(
        db: sqlite3.Connection, owner: Owner, conversation_id: str, count: int
    ) -> tuple[int, int]:
        """Lock the conversation and reserve ``count`` positions: (pk, the first one).
        The same UPDATE counts the items (``item_count``, migration 0011)."""
        row = db.execute(
            "UPDATE conversations SET next_seq = next_seq + ?1, item_count = item_count + ?1,"
            " updated_at = ?2 WHERE id = ?3 AND project = ?4 AND user_key = ?5"
            " RETURNING pk, next_seq",
            (count, int(time.time()), conversation_id, owner.project, owner.user),
        ).fetchone()
        if row is None:
            raise ConversationMissing(conversation_id)
        return int(row[0]), int(row[1]) - count

    async def append_items(
        self,
        owner: Owner,
        conversation_id: str,
        items: Sequence[StoredItem],
        remember: Remembered | None = None,
    ) -> None:
        with self._write() as db:
            pk, first = self._reserve(db, owner, conversation_id, len(items))
            if items:
                self._insert_items(db, pk, first, items)
            _remember(db, owner, remember)

    async def list_items(self, owner: Owner, conversation_id: str, paging: PageQuery) -> ItemPage:
        after, limit, descending = paging.after, paging.limit, paging.descending
        db = self.db
        if after is None:
            pk = self._conversation_pk(db, owner, conversation_id)
            sql = (
                "SELECT id, type, body, mask FROM items WHERE conv = ? ORDER BY seq DESC LIMIT ?"
                if descending
                else "SELECT id, type, body, mask FROM items WHERE conv = ? ORDER BY seq LIMIT ?"
            )
            rows = db.execute(sql, (pk, limit + 1)).fetchall()
        else:
            found = db.execute(
                "SELECT c.pk, a.seq FROM conversations c LEFT JOIN items a ON a.conv = c.pk AND a.id = ?"
                " WHERE c.id = ? AND c.project = ? AND c.user_key = ?",
                (after, conversation_id, owner.project, owner.user),
            ).fetchone()
            if found is None:
                raise ConversationMissing(conversation_id)
            pk, seq = found
            if seq is None:
                raise AfterMissing(after)
            sql = (
                "SELECT id, type, body, mask FROM items WHERE conv = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
                if descending
                else "SELECT id, type, body, mask FROM items WHERE conv = ? AND seq > ? ORDER BY seq LIMIT ?"
            )
            rows = db.execute(sql, (pk, seq, limit + 1)).fetchall()
        has_more = len(rows) > limit
        return ItemPage([StoredItem(*r) for r in rows[:limit]], has_more)

    async def get_item(self, owner: Owner, conversation_id: str, item_id: str) -> StoredItem:
        row = self.db.execute(
            "SELECT c.pk, i.type, i.body, i.mask FROM conversations c"
            " LEFT JOIN items i ON i.conv = c.pk AND i.id = ?"
            " WHERE c.id = ? AND c.project = ? AND c.user_key = ?",
            (item_id, conversation_id, owner.project, owner.user),
        ).fetchone()
        if row is None:
            raise ConversationMissing(conversation_id)
        if row[1] is None:
            raise ItemMissing(item_id)
        return StoredItem(item_id, row[1], row[2], row[3])

    async def delete_item(
        self, owner: Owner, conversation_id: str, item_id: str
    ) -> ConversationRow:
        with self._write() as db:
            row = db.execute(_CONVERSATION, (conversation_id, owner.project, owner.user)).fetchone()
            if row is None:
                raise ConversationMissing(conversation_id)
            pk, created_at, metadata = row
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
        rows = self.db.execute(
            "SELECT i.id, i.type, i.body, i.mask FROM items i CROSS JOIN conversations c"
            f" ON c.pk = i.conv WHERE i.id IN ({marks}) AND c.project = ? AND c.user_key = ?",
            (*item_ids, owner.project, owner.user),
        ).fetchall()
        return {row[0]: StoredItem(*row) for row in rows}

    # -- idempotency keys (issue 20) ------------------------------------------------------------

    async def find_answer(
        self, owner: Owner, key: str, created_since: int
    ) -> tuple[bytes, bytes] | None:
        row = self.db.execute(
            "SELECT fingerprint, answer FROM idempotency_keys"
            " WHERE project = ? AND user_key = ? AND key = ? AND created_at >= ?",
            (owner.project, owner.user, key, created_since),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    async def purge_answers(self, created_before: int, limit: int) -> int:
        with self._write() as db:
            return db.execute(
                "DELETE FROM idempotency_keys WHERE (project, user_key, key) IN (SELECT"
                " project, user_key, key FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
                (created_before, limit),
            ).rowcount

    # -- API keys -----------------------------------------------------------------------------

    async def create_key(self, key: KeyRow) -> None:
        with self._write() as db:
            db.execute(
                f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.id,
                    key.hash,
                    key.prefix,
                    key.project,
                    key.name,
                    key.created_at,
                    key.last_used_at,
                    key.revoked_at,
                ),
            )

    async def list_keys(self, project: str | None) -> list[KeyRow]:
        sql = f"SELECT {_KEY_COLUMNS} FROM api_keys"
        if project is None:
            rows = self.db.execute(sql + " ORDER BY created_at, id").fetchall()
        else:
            rows = self.db.execute(
                sql + " WHERE project = ? ORDER BY created_at, id", (project,)
            ).fetchall()
        return [KeyRow(*row) for row in rows]

    async def revoke_key(self, key_id: str, when: int) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (when, key_id),
            )
        return cursor.rowcount > 0

    async def find_key(self, key_hash: bytes) -> KeyRow | None:
        row = self.db.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE hash = ?", (key_hash,)
        ).fetchone()
        return KeyRow(*row) if row else None

    async def touch_key(self, key_id: str, when: int) -> None:
        with self._write() as db:
            db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (when, key_id))

    async def has_keys(self) -> bool:
        row = self.db.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone()
        return row is not None


_KEY_COLUMNS = "id, hash, prefix, project, name, created_at, last_used_at, revoked_at"
