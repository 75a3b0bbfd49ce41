"""Issue 15, M3: a page of items or search hits stops at a byte budget and says has_more,
so a page of huge items is not built whole in memory; clients that follow has_more still
get every item, in order. On both backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from convostore.store.base import Store
from tests.support import Api, make_app

BUDGET = 64 * 1024
BIG = 30 * 1024  # two fit in a page, a third does not


@pytest.fixture
def small_pages(store: Store) -> Iterator[Api]:
    client = Api(make_app(store, page_max_bytes=BUDGET))
    yield client
    client.close()


def message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def pages(api: Api, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page, following ``after`` = ``last_id`` while ``has_more``, as the SDKs do."""
    out = []
    query: dict[str, Any] = {"limit": 100, **params}
    while True:
        page = api.get(path, params=query).json()
        out.append(page["data"])
        if not page["has_more"]:
            return out
        query["after"] = page["last_id"]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_big_items_are_paged_by_bytes(small_pages: Api, order: str) -> None:
    api = small_pages
    conversation = api.new_conversation()
    texts = [f"big{n} " + "x" * BIG for n in range(7)] + [f"small{n}" for n in range(5)]
    texts.insert(3, "huge " + "y" * (BUDGET * 2))  # alone over the budget: a page of its own
    for text in texts:
        api.add(conversation, message(text))
    got = pages(api, f"/v1/conversations/{conversation}/items", order=order)
    flat = [item["content"][0]["text"] for page in got for item in page]
    assert flat == (texts if order == "asc" else texts[::-1])  # nothing lost, order kept
    for page in got:
        size = sum(len(item["content"][0]["text"]) for item in page)
        assert len(page) == 1 or size <= BUDGET, [len(i["content"][0]["text"]) for i in page]
    assert len(got) >= 5  # the budget cut them, not the limit of 100


def test_small_items_fill_the_limit(small_pages: Api) -> None:
    conversation = small_pages.new_conversation()
    small_pages.add(conversation, *(message(f"m{n}") for n in range(20)))
    page = small_pages.get(f"/v1/conversations/{conversation}/items", params={"limit": 20}).json()
    assert len(page["data"]) == 20 and page["has_more"] is False


def test_search_pages_by_bytes(small_pages: Api) -> None:
    api = small_pages
    conversation = api.new_conversation()
    texts = [f"needle{n} " + "z " * (BIG // 2) for n in range(6)]
    for text in texts:
        api.add(conversation, message(text))
    got = pages(api, "/v1/conversations/search", q="needle*")
    found = [hit["item"]["content"][0]["text"] for page in got for hit in page]
    assert found == texts[::-1]  # newest first, every one once
    assert len(got) >= 3
