"""Build the store a :class:`~convostore.settings.Settings` names."""

from __future__ import annotations

from convostore.settings import Settings
from convostore.store.base import Store


def store_for(settings: Settings) -> Store:
    if settings.backend == "postgres":
        from convostore.store.postgres import PostgresStore

        return PostgresStore(
            settings.db, min_size=settings.pool_min_size, max_size=settings.pool_size
        )
    from convostore.store.sqlite import SQLiteStore

    return SQLiteStore(settings.db, synchronous=settings.sqlite_synchronous)
