"""Migration 0120 on PostgreSQL (issue 21): conversation_metadata loses its foreign key
(a check per row on every create) and a delete trigger takes over its cascade. A
database made before it keeps its rows; after it, deleting a conversation (made before
or after) deletes its metadata rows and no other's, updates still replace them, and the
rows of every create are still jsonb_each_text's reading of the stored metadata."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson
import pytest

from convostore.store import migrate
from convostore.store.base import ConversationRow, MetadataUpdate, NewConversation, Owner
from convostore.store.postgres import PostgresStore
from tests.conftest import PostgresServer

ME = Owner("p", "u")
OTHER = Owner("p", "v")

SHAPES = {
    "three": {"user": "user-0042", "topic": "benchmarks", "channel": "web"},
    "unicode": {"clé": "värde ✓ 🙂", "空": ""},
    "sixteen": {f"k{i:02}": f"v{i}" * 40 for i in range(16)},
    "escapes": {"q": 'say "hi"\\n', "nul": "a\x00b", "ctl": "\t\n\x01", "lit": "\\u0000"},
    "longest": {"k" * 64: "v" * 512},
}

ROWS = "SELECT c.id, m.key, m.value, m.project, m.user_key, m.created_at FROM conversation_metadata m JOIN conversations c ON c.pk = m.conv ORDER BY 1, 2"
# What the trigger of migration 0003 stores, read from the stored bytes by PostgreSQL.
EXPECTED = (
    "SELECT c.id, j.key, j.value, c.project, c.user_key, c.created_at FROM conversations c,"
    " jsonb_each_text(replace(convert_from(c.metadata, 'UTF8'), '\\u0000', '\\ufffd')::jsonb) j"
    " ORDER BY 1, 2"
)


async def create(
    store: PostgresStore, owner: Owner, conv_id: str, metadata: dict[str, str]
) -> None:
    body = orjson.dumps(metadata) if metadata else b"{}"
    await store.create_conversation(owner, NewConversation(ConversationRow(conv_id, 7, body)))


def test_migration_0120(pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_server.create()
    real = migrate.load

    async def before() -> list[asyncpg.Record]:
        monkeypatch.setattr(
            migrate, "load", lambda backend: [m for m in real(backend) if m.version < 120]
        )
        store = PostgresStore(url, max_size=2)
        await store.open()
        try:
            await store.migrate()
            for name, shape in SHAPES.items():
                await create(store, ME, f"conv_old_{name}", shape)
            await create(store, OTHER, "conv_old_other", SHAPES["three"])
            await create(store, ME, "conv_old_empty", {})
            return await store.db.fetch(ROWS)
        finally:
            await store.close()

    old_rows = asyncio.run(before())
    monkeypatch.setattr(migrate, "load", real)

    async def after() -> None:
        store = PostgresStore(url, max_size=2)
        await store.open()
        try:
            assert 120 in await store.migrate()
            db = store.db
            assert await db.fetch(ROWS) == old_rows  # kept as they were
            assert (
                await db.fetchval(
                    "SELECT count(*) FROM pg_constraint"
                    " WHERE conrelid = 'conversation_metadata'::regclass AND contype = 'f'"
                )
                == 0
            )
            for name, shape in SHAPES.items():
                await create(store, ME, f"conv_new_{name}", shape)
            await create(store, ME, "conv_new_empty", {})
            rows = await db.fetch(ROWS)
            assert rows == await db.fetch(EXPECTED)
            assert len(rows) == 2 * sum(map(len, SHAPES.values())) + 3
            nul = {(r[1], r[2]) for r in rows if r[0] == "conv_new_escapes"}
            assert ("nul", "a\ufffdb") in nul and ("lit", "\\ufffd") in nul

            # Deletes take their conversation's rows, made before or after the migration.
            for conv_id in ("conv_old_three", "conv_new_three", "conv_old_empty"):
                await store.delete_conversation(ME, conv_id)
            left = {r[0] for r in await db.fetch(ROWS)}
            assert not left & {"conv_old_three", "conv_new_three"}
            assert "conv_old_other" in left and "conv_new_unicode" in left
            assert await db.fetch(ROWS) == await db.fetch(EXPECTED)

            # An update replaces them; emptied, there are none, and the delete still works.
            await store.set_metadata(ME, MetadataUpdate("conv_old_unicode", b'{"a":"b"}'))
            await store.set_metadata(ME, MetadataUpdate("conv_new_unicode", b"{}"))
            assert await db.fetch(ROWS) == await db.fetch(EXPECTED)
            await store.delete_conversation(ME, "conv_old_unicode")
            await store.delete_conversation(ME, "conv_new_unicode")
            assert await db.fetch(ROWS) == await db.fetch(EXPECTED)
            assert (
                await db.fetchval(
                    "SELECT count(*) FROM conversation_metadata m"
                    " WHERE NOT EXISTS (SELECT 1 FROM conversations c WHERE c.pk = m.conv)"
                )
                == 0
            )
        finally:
            await store.close()

    asyncio.run(after())


def test_a_delete_waiting_on_a_metadata_update_takes_the_new_rows(
    pg_server: PostgresServer,
) -> None:
    """The cascade the foreign key did under its lock: a delete that waited for an update of
    the conversation's metadata removes the rows that update wrote, none are left behind."""
    url = pg_server.create()

    async def scenario() -> None:
        store = PostgresStore(url, max_size=2)
        await store.open()
        try:
            await store.migrate()
            await create(store, ME, "conv_race", SHAPES["three"])
        finally:
            await store.close()
        updater, deleter = await asyncpg.connect(url), await asyncpg.connect(url)
        try:
            update = updater.transaction()
            await update.start()
            await updater.execute(
                "UPDATE conversations SET metadata = $1 WHERE id = 'conv_race'",
                orjson.dumps(SHAPES["sixteen"]),
            )
            pid = await deleter.fetchval("SELECT pg_backend_pid()")
            deleting = asyncio.ensure_future(
                deleter.execute("DELETE FROM conversations WHERE id = 'conv_race'")
            )
            while not await updater.fetchval(  # the delete waits on the row lock
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
            ):
                await asyncio.sleep(0.01)
            assert await updater.fetchval("SELECT count(*) FROM conversation_metadata") == 16
            await update.commit()
            assert await deleting == "DELETE 1"
            assert await updater.fetchval("SELECT count(*) FROM conversation_metadata") == 0
        finally:
            await updater.close()
            await deleter.close()

    asyncio.run(scenario())
