"""Build the store a :class:`~convostore.settings.Settings` names."""

from __future__ import annotations

from convostore.settings import Settings
from convostore.store.base import Store


def store_for(settings: Settings) -> Store:
    if settings.backend == "postgres":
        raise NotImplementedError("the PostgreSQL backend is not available yet")
    from convostore.store.sqlite import SQLiteStore

    return SQLiteStore(settings.db, synchronous=settings.sqlite_synchronous)
