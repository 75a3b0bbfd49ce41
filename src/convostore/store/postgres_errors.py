"""Which asyncpg errors mean "the database cannot serve now", and which mean "the
connection was lost": the two lists :mod:`convostore.store.postgres_tx` maps, in one place.
"""

from __future__ import annotations

import asyncpg
from asyncpg.exceptions import AdminShutdownError, CrashShutdownError, InternalClientError

UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.OperatorInterventionError,  # shutting down, starting up, cancelled
    asyncpg.ReadOnlySQLTransactionError,  # a standby (or a primary being demoted)
    # The driver's own errors, no PostgresError: a multi-host URL with
    # target_session_attrs=read-write while no host is writable yet (the primary died, the
    # standby is not promoted), or a connection the server ended while it was idle, whose
    # next statement finds the protocol in the wrong state ("cannot switch to state 12").
    InternalClientError,
)
"""The database cannot serve now: answered 503, never 500."""

LOST: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # The server ended the session: after a COMMIT, possibly after it was durable (a
    # backend terminated while waiting for its synchronous standby has committed locally).
    AdminShutdownError,
    CrashShutdownError,
    InternalClientError,
)
"""The connection went away without the server saying what became of the statement."""
