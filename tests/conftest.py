"""Fixtures: a store per backend, an in-process API client over it, a real server.

``backend`` is parametrized over every store backend; tests that touch storage take
``api`` or ``store`` and so run against each one (the store conformance suite).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from convostore.store.base import Store
from convostore.store.sqlite import SQLiteStore
from tests.support import Api, make_app

BACKENDS = ["sqlite"]


def make_store(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        return SQLiteStore(tmp_path / "convostore.db")
    raise ValueError(backend)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Store:
    return make_store(backend, tmp_path)


@pytest.fixture
def api(store: Store) -> Iterator[Api]:
    client = Api(make_app(store))
    yield client
    client.close()
