"""The asyncpg errors that mean "the database cannot serve now": answered 503, never 500.

Every PostgreSQL store class is decorated with :data:`postgres_unavailable`, so the list
lives in one place.
"""

from __future__ import annotations

import asyncpg

from convostore.store.base import unavailable_on

postgres_unavailable = unavailable_on(
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.ReadOnlySQLTransactionError,
)
