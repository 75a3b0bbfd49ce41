"""Fixtures of the /v1/responses tests: a scripted model server, and convostore serving
in front of it over a real socket, on each store backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI

from convostore.api.app import create_app
from convostore.settings import Settings
from convostore.store.base import Store
from tests.responses.fake_upstream import FakeUpstream, serve


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    with serve(fake) as url:
        fake.url = url + "/v1"
        yield fake


def convostore_settings(upstream: FakeUpstream, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "upstream": upstream.url,
        "upstream_key": "sk-upstream-secret",
        "access_log": False,
        "metrics": False,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def base_url(
    store: Store, upstream: FakeUpstream, settings_overrides: dict[str, Any]
) -> Iterator[str]:
    """convostore in front of the fake model server: ``http://127.0.0.1:P/v1``."""
    app = create_app(convostore_settings(upstream, **settings_overrides), store)
    with serve(app) as url:
        yield url + "/v1"


@pytest.fixture
def client(base_url: str) -> Iterator[OpenAI]:
    sdk = OpenAI(base_url=base_url, api_key="anything", max_retries=0)
    yield sdk
    sdk.close()
