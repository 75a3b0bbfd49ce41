"""Items as one request may see them: the fields gated by ``include`` left out unless the
request asked for them (:mod:`convostore.items.include`)."""

from __future__ import annotations

from typing import Any

import orjson

from convostore.items import include as includes
from convostore.store.base import StoredItem


def visible(stored: StoredItem, include: int) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(includes.render(stored.body, stored.mask, include))
    return decoded


def visible_dict(item: dict[str, Any], include: int) -> dict[str, Any]:
    mask = includes.gated_mask(item)
    if not mask & ~include:
        return item
    return visible(StoredItem(item.get("id", ""), item["type"], orjson.dumps(item), mask), include)
