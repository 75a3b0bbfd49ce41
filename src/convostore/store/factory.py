"""Build the store a :class:`~convostore.settings.Settings` names."""

from __future__ import annotations

from convostore.settings import Settings
from convostore.store.base import Store


def store_for(settings: Settings, *, create: bool = True) -> Store:
    """The store of ``settings.db``. ``create=False``: a SQLite file that does not exist
    is refused (:class:`~convostore.store.base.DatabaseMissing`) instead of created."""
    database = settings.database
    if database.backend == "postgres":
        from convostore.store.postgres import PostgresStore

        return PostgresStore(
            database.target,
            min_size=settings.pool_min_size,
            max_size=settings.pool_size,
            timeout=settings.request_timeout_seconds,
        )
    from convostore.store.sqlite import SQLiteStore

    # Group commit holds the write lock until the end of a loop turn: with one process
    # that costs nothing, with several the others wait on it (p99 of 700 ms measured
    # with 2 workers against 100 to 250 without), so they commit each write alone.
    return SQLiteStore(
        database.target,
        synchronous=settings.sqlite_synchronous,
        group_commit=settings.workers == 1,
        create=create,
    )
