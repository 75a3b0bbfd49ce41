"""Fixtures: a store per backend, an in-process API client over it, a real server.

``backend`` is parametrized over every store backend; tests that touch storage take
``api`` or ``store`` and so run against each one (the store conformance suite).

The PostgreSQL leg uses a real server: ``CONVOSTORE_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``) names a role that may create
databases, and each test gets a database of its own, created empty (like a new SQLite
file) and dropped afterwards. When that server cannot be reached the postgres leg is
skipped with the reason, except under CI (``CI`` set), where it fails: CI must run it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from convostore.redact import redact_url
from convostore.store.base import Store
from convostore.store.postgres import PostgresStore
from convostore.store.sqlite import SQLiteStore
from tests.support import Api, make_app

BACKENDS = ["sqlite", "postgres"]

PG_DSN = os.environ.get("CONVOSTORE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class PostgresServer:
    """Throwaway databases on the test server, named ``convostore_test_<pid>_<hex>``."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.prefix = f"convostore_test_{os.getpid()}_"
        self.created: set[str] = set()

    async def _admin(self, *statements: str) -> None:
        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def url(self, database: str) -> str:
        return urlunsplit(urlsplit(self.dsn)._replace(path="/" + database))

    def create(self) -> str:
        """A new, empty database; returns its URL."""
        name = self.prefix + uuid.uuid4().hex[:12]
        asyncio.run(self._admin(f'CREATE DATABASE "{name}"'))
        self.created.add(name)
        return self.url(name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.discard(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(self.url(name))

    def drop_orphans(self) -> None:
        """Drop the databases of earlier test runs on this machine whose process is gone."""

        async def run() -> None:
            conn = await asyncpg.connect(self.dsn, timeout=5)
            try:
                names = await conn.fetch(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'convostore\\_test\\_%'"
                )
                for (name,) in names:
                    pid = name.split("_")[2]
                    if pid.isdigit() and not _alive(int(pid)):
                        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(run())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_server: PostgresServer | None = None
_unreachable: str | None = None


def postgres_server() -> PostgresServer:
    """The test PostgreSQL server; skips (fails under CI) when it cannot be reached."""
    global _server, _unreachable
    if _server is None and _unreachable is None:
        candidate = PostgresServer(PG_DSN)
        try:
            candidate.drop_orphans()
            _server = candidate
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            _unreachable = f"{type(exc).__name__}: {exc}"
    if _server is None:
        message = (
            f"PostgreSQL at {redact_url(PG_DSN)} (CONVOSTORE_TEST_PG) is unreachable: {_unreachable}. "
            "Start one (scripts/ci-postgres.sh) or point CONVOSTORE_TEST_PG at one."
        )
        if os.environ.get("CI"):
            pytest.fail("CI runs the PostgreSQL tests and they cannot run: " + message)
        pytest.skip(message)
    return _server


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _server is not None:
        _server.drop_all()


def make_store(backend: str, tmp_path: Path) -> Store:
    """A new, empty store (not migrated yet) of the backend."""
    if backend == "sqlite":
        tmp_path.mkdir(parents=True, exist_ok=True)  # a store creates its file, not folders
        return SQLiteStore(tmp_path / "convostore.db")
    if backend == "postgres":
        return PostgresStore(postgres_server().create(), max_size=4)
    raise ValueError(backend)


def drop_store(store: Store) -> None:
    """Remove what :func:`make_store` made outside ``tmp_path``."""
    if isinstance(store, PostgresStore):
        postgres_server().drop(store.dsn)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    made = make_store(backend, tmp_path)
    yield made
    drop_store(made)


@pytest.fixture(scope="session")
def pg_server() -> PostgresServer:
    """The test PostgreSQL server (skipped when unreachable, failed under CI)."""
    return postgres_server()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    url = pg_server.create()
    yield url
    pg_server.drop(url)


@pytest.fixture
def api(store: Store) -> Iterator[Api]:
    client = Api(make_app(store))
    yield client
    client.close()


@pytest.fixture
def strict_api(store: Store) -> Iterator[Api]:
    """An API that refuses unknown keys inside items (``unknown_item_fields=refuse``, D9)."""
    client = Api(make_app(store, unknown_item_fields="refuse"))
    yield client
    client.close()
