"""SQL that SQLite and PostgreSQL run alike, written once with ``?`` marks, and the
row mappings both backends share.

The SQLite store runs these texts as they are; the PostgreSQL store numbers the marks
once, at import, with :func:`numbered` (``?`` → ``$1, $2…``), so asyncpg prepares the
same statement. None of the texts has a ``?`` anywhere but as a mark. A statement that
differs between the backends (locks, arrays, planner fences) stays in the backend's
module; what is common to both, down to the order of the arguments, goes here
(docs/design.md, "A new store query"). :mod:`convostore.store.listing` and
:mod:`convostore.store.fork` hold the shared statements of the list extension and of
forks.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from convostore.store.base import (
    ConversationDump,
    ConversationMissing,
    ItemMissing,
    ItemPage,
    KeyRow,
    Owner,
    PageQuery,
    Remembered,
    ResponseDump,
    ResponsePurge,
    ResponseRecord,
    StoredItem,
    StoredResponse,
)

_MARK = re.compile(r"\?")


def numbered(sql: str) -> str:
    """``sql`` with its ``?`` marks numbered for PostgreSQL: ``$1, $2…``."""
    counter = itertools.count(1)
    return _MARK.sub(lambda _: f"${next(counter)}", sql)


# -- migrations -------------------------------------------------------------------------

RECORD_MIGRATION = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
APPLIED_MIGRATIONS = "SELECT version FROM schema_migrations"
SCHEMA_VERSION = "SELECT max(version) FROM schema_migrations"

# -- import ------------------------------------------------------------------------------------


def imported_conversation(dump: ConversationDump) -> tuple[Any, ...]:
    """An imported conversation's ``id, project, user_key, created_at, updated_at,
    metadata, next_seq, safety_identifier`` (its ``item_count`` is its ``next_seq``)."""
    row = dump.conversation
    return (
        row.id,
        dump.owner.project,
        dump.owner.user,
        row.created_at,
        dump.updated_at,
        row.metadata,
        len(dump.items),
        row.safety_identifier,
    )


def found_conversation(row: Any, conversation_id: str) -> Any:
    """``row``, a statement's answer about the owner's conversation, when there is one.
    Raises ConversationMissing."""
    if row is None:
        raise ConversationMissing(conversation_id)
    return row


# -- items --------------------------------------------------------------------------------

# One item of an owner's conversation: the row's item columns are NULL when the
# conversation holds no such item, and there is no row when it is not the owner's.
GET_ITEM = (
    "SELECT i.type, i.body, i.mask FROM conversations c"
    " LEFT JOIN items i ON i.conv = c.pk AND i.id = ?"
    " WHERE c.id = ? AND c.project = ? AND c.user_key = ?"
)


def got_item(row: Any, conversation_id: str, item_id: str) -> StoredItem:
    """The item of :data:`GET_ITEM`'s row, or the fact that it is not there."""
    if row is None:
        raise ConversationMissing(conversation_id)
    if row[0] is None:
        raise ItemMissing(item_id)
    return StoredItem(item_id, row[0], row[1], row[2])


# -- idempotency keys (issue 20) ------------------------------------------------------------

# An Idempotency-Key's answer, in the transaction of its write: a live record of the key
# (committed first, or committing: the INSERT waits for it) returns no row.
REMEMBER = (
    "INSERT INTO idempotency_keys AS k (project, user_key, key, fingerprint, answer, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project, user_key, key) DO UPDATE"
    " SET fingerprint = excluded.fingerprint, answer = excluded.answer,"
    " created_at = excluded.created_at WHERE k.created_at < ? RETURNING 1"
)


def remember_args(owner: Owner, remember: Remembered) -> tuple[Any, ...]:
    """The arguments of :data:`REMEMBER`."""
    return (
        owner.project,
        owner.user,
        remember.key,
        remember.fingerprint,
        remember.answer,
        remember.created_at,
        remember.expired_before,
    )


FIND_ANSWER = (
    "SELECT fingerprint, answer FROM idempotency_keys"
    " WHERE project = ? AND user_key = ? AND key = ? AND created_at >= ?"
)

# -- API keys --------------------------------------------------------------------------------

KEY_COLUMNS = "id, hash, prefix, project, name, created_at, last_used_at, revoked_at"
INSERT_KEY = f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
LIST_KEYS = f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"
LIST_PROJECT_KEYS = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE project = ? ORDER BY created_at, id"
REVOKE_KEY = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
FIND_KEY = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?"
TOUCH_KEY = "UPDATE api_keys SET last_used_at = ? WHERE id = ?"
ANY_KEY = "SELECT 1 FROM api_keys LIMIT 1"


def key_values(key: KeyRow) -> tuple[Any, ...]:
    """The values of :data:`KEY_COLUMNS`, in their order."""
    return (
        key.id,
        key.hash,
        key.prefix,
        key.project,
        key.name,
        key.created_at,
        key.last_used_at,
        key.revoked_at,
    )


# -- stored responses (issue 17) ----------------------------------------------------------------

INSERT_RESPONSE = (
    "INSERT INTO responses (id, project, user_key, created_at, updated_at, previous_id,"
    " root_id, status, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def response_args(
    owner: Owner, record: ResponseRecord, updated_at: int, root_id: str
) -> tuple[Any, ...]:
    """The arguments of :data:`INSERT_RESPONSE`."""
    return (
        record.id,
        owner.project,
        owner.user,
        record.created_at,
        updated_at,
        record.previous_id,
        root_id,
        record.status,
        record.body,
    )


# A deleted response stays as a tombstone (its id and chain), its body emptied to ``{}``.
DELETE_RESPONSE = (
    "UPDATE responses SET deleted = true, body = ?"
    " WHERE id = ? AND project = ? AND user_key = ? AND NOT deleted RETURNING pk"
)
TOMBSTONE = b"{}"
DELETE_RESPONSE_ITEMS = "DELETE FROM response_items WHERE resp = ?"

# The end of a background response: only while it still runs.
FINISH_RESPONSE = (
    "UPDATE responses SET status = ?, body = ?, expires_at = NULL"
    " WHERE id = ? AND project = ? AND user_key = ?"
    " AND status IN ('queued', 'in_progress') RETURNING pk"
)


def finish_args(owner: Owner, record: ResponseRecord) -> tuple[Any, ...]:
    """The arguments of :data:`FINISH_RESPONSE`."""
    return (record.status, record.body, record.id, owner.project, owner.user)


CANCEL_RESPONSE = (
    "UPDATE responses SET status = 'cancelled', expires_at = NULL"
    " WHERE pk = ? AND status IN ('queued', 'in_progress')"
)

INPUT_ANCHOR = "SELECT seq FROM response_items WHERE resp = ? AND NOT output AND id = ?"


def inputs_sql(items: str) -> dict[tuple[bool, bool], str]:
    """A page of a response's inputs, by ``(after given, descending)``: ``items`` (the
    backend's select of ``r.id, r.type, body, r.mask FROM response_items r``) filtered and
    ordered. Arguments: the response's pk, the anchor's seq (after given), the limit."""
    pages = {}
    for after in (False, True):
        for descending in (False, True):
            order, compare = ("DESC", "<") if descending else ("ASC", ">")
            bound = f" AND r.seq {compare} ?" if after else ""
            pages[after, descending] = (
                f"{items} WHERE r.resp = ? AND NOT r.output{bound} ORDER BY r.seq {order} LIMIT ?"
            )
    return pages


def scan_responses_sql(project: str | None, after_pk: int, limit: int) -> tuple[str, list[Any]]:
    """Stored responses (not tombstones) after a pk, in pk order, of a project or all."""
    sql = (
        "SELECT pk, id, project, user_key, created_at, updated_at, previous_id, root_id,"
        " status, body FROM responses WHERE pk > ? AND NOT deleted"
    )
    args: list[Any] = [after_pk]
    if project is not None:
        sql += " AND project = ?"
        args.append(project)
    return sql + " ORDER BY pk LIMIT ?", [*args, limit]


def dumped(row: Any, items: Sequence[Any]) -> tuple[int, ResponseDump]:
    """A row of :func:`scan_responses_sql` with its items' rows ``(id, type, body, mask,
    output)``, in order: the response whole."""
    inputs: list[StoredItem] = []
    outputs: list[StoredItem] = []
    for r in items:
        (outputs if r[4] else inputs).append(StoredItem(r[0], r[1], r[2], r[3]))
    pk, rid, project, user, created, updated, previous, root, status, body = row
    record = ResponseRecord(rid, created, status, body, previous)
    return pk, ResponseDump(Owner(project, user), record, updated, root, inputs, outputs)


def purge_responses_sql(purge: ResponsePurge, *, not_in: str) -> tuple[str, list[Any]]:
    """The delete of the response trees ``purge`` names. ``not_in`` is how the backend
    writes "none of these projects" with a single mark (as in
    :func:`convostore.store.listing.scan_sql`)."""
    roots = "SELECT id FROM responses WHERE id = root_id AND updated_at < ?"
    args: list[Any] = [purge.updated_before]
    if purge.project is not None:
        roots += " AND project = ?"
        args.append(purge.project)
    elif purge.exclude_projects:
        roots += f" AND project {not_in}"
        args.append(list(purge.exclude_projects))
    return f"DELETE FROM responses WHERE root_id IN ({roots} LIMIT ?)", [*args, purge.limit]


def input_page(rows: Sequence[Any], page: PageQuery) -> ItemPage:
    """A page of a response's inputs from the rows ``(id, type, body, mask)`` of
    :func:`inputs_sql` (which asks one more than ``page.limit``)."""
    items = [StoredItem(r[0], r[1], r[2], r[3]) for r in rows[: page.limit]]
    return ItemPage(items, len(rows) > page.limit)


def stored_response(response_id: str, owned: Any, output: Sequence[Any]) -> StoredResponse:
    """The response from its row ``(pk, status, created_at, body, previous_id)`` and the
    rows of its output items ``(id, type, body, mask)``."""
    _, status, created_at, body, previous_id = owned
    record = ResponseRecord(response_id, created_at, status, body, previous_id)
    return StoredResponse(record, [StoredItem(r[0], r[1], r[2], r[3]) for r in output])
