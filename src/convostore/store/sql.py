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
from typing import Any

from convostore.store.base import (
    ConversationMissing,
    ItemMissing,
    KeyRow,
    Owner,
    Remembered,
    StoredItem,
)

_MARK = re.compile(r"\?")


def numbered(sql: str) -> str:
    """``sql`` with its ``?`` marks numbered for PostgreSQL: ``$1, $2…``."""
    counter = itertools.count(1)
    return _MARK.sub(lambda _: f"${next(counter)}", sql)


# -- migrations -------------------------------------------------------------------------

RECORD_MIGRATION = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"

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
