"""A throwaway PostgreSQL database for one run, on a server on this machine only."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """Create ``convostore_bench_<hex>`` on the server ``server_url`` names; drop it after."""
    parts = urlsplit(server_url)
    if parts.hostname not in LOOPBACK:
        raise SystemExit(
            f"benchmarks only run against a PostgreSQL on this machine, not {parts.hostname}"
        )
    name = f"convostore_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
