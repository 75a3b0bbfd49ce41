"""Migration 0090 (issue 21): the owner-tagged tsvector is built from the tsvector's text
form as a whole, and must equal 0015's lexeme-by-lexeme construction exactly, so the
rows indexed before the migration and after it answer the same queries."""

from __future__ import annotations

import asyncio

import asyncpg

from convostore.store.postgres import PostgresStore

# 0015's construction, kept here as the reference.
REFERENCE = (
    "SELECT coalesce(string_agg('''' || replace(replace($1 || t.lexeme, '\\', '\\\\'),"
    " '''', '''''') || ''':' || array_to_string(t.positions, ','), ' '), '')::tsvector"
    " FROM unnest(to_tsvector('simple', $2)) t"
)

TEXTS = [
    "",
    "  ,,; -- ",
    "Hello world hello",
    "O'Brien's \\path\\to 'quoted' ''doubled'' back\\\\slash",
    "some-hyphen a.b@example.com http://x.org/p?q=1 3.14 v1.2.3",
    "café ÉTÉ naïve 東京 Ελληνικά русский",
    "a' 'b ' ' x ' y",
    "tab\tnew\nline\u00a0nbsp",
    " ".join(f"w{n}" for n in range(3000)),
]


def test_tagged_tsv_equals_the_reference(pg_url: str) -> None:
    async def run() -> None:
        store = PostgresStore(pg_url, max_size=1)
        await store.open()
        try:
            await store.migrate()
        finally:
            await store.close()
        conn = await asyncpg.connect(pg_url)
        try:
            for tag in ("t0123456789", "tabcdef0123"):
                for text in TEXTS:
                    got = await conn.fetchval("SELECT convostore_tagged_tsv($1, $2)::text", tag, text)
                    want = await conn.fetchval(f"SELECT ({REFERENCE})::text", tag, text)
                    assert got == want, text
                    assert (got == "") == (text.strip(" ,;-") == "")
        finally:
            await conn.close()

    asyncio.run(run())
