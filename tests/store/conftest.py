"""Fixtures of the store conformance suite: a test's own event loop, and ``run``, which
drives a coroutine on it against the open, migrated store of the ``store`` fixture."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from convostore.store.base import Store
from tests.store.test_store import Run


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def run(store: Store, loop: asyncio.AbstractEventLoop) -> Iterator[Run[Any]]:
    """Runs a coroutine on the open, migrated store's loop."""
    loop.run_until_complete(store.open())
    loop.run_until_complete(store.migrate())
    yield loop.run_until_complete
    loop.run_until_complete(store.close())
