"""From raw input items to stored items (CONTRACT.md D5 to D7, D14, D18 to D21).

All items of a request are validated before anything is looked up or stored, so a bad
item anywhere stores nothing (D14). Ids a client names are then resolved in one query:
an ``item_reference`` becomes a copy of the item it names (D7), and an item sent with
the id of an item the caller can already read is stored as that item (D21 a). The
same id twice in one request is refused like an id the conversation already holds
(D21 c); the store's unique index refuses the latter inside the append transaction.
"""

from __future__ import annotations

from typing import Any

import orjson

from convostore import errors, ids
from convostore.items import include
from convostore.items.registry import Reference, Registry
from convostore.service.limits import Limits
from convostore.store.base import Owner, Store, StoredItem, stored_item


class Materializer:
    def __init__(self, store: Store, registry: Registry, limits: Limits):
        self.store = store
        self.registry = registry
        self.limits = limits

    def validate(self, raw_items: list[Any]) -> list[dict[str, Any] | Reference]:
        quick = self.registry.quick  # a plain message, checked and shaped in one pass
        max_parts = self.limits.max_item_parts
        prepared: list[dict[str, Any] | Reference] = []
        for index, raw in enumerate(raw_items):
            item = quick(raw, max_parts)
            if item is None:
                path = f"items[{index}]"
                self.limits.check_item(raw, path)  # issue 15's bounds, before the item's own
                prepared.append(self.registry.prepare(raw, path))  # validation
            else:
                prepared.append(item)
        return prepared

    @staticmethod
    def named_ids(prepared: list[dict[str, Any] | Reference]) -> list[str]:
        named: list[str] = []
        for entry in prepared:
            item_id = entry.id if isinstance(entry, Reference) else entry.get("id")
            if item_id is not None:
                named.append(item_id)
        if len(set(named)) != len(named):
            raise errors.item_already_in_conversation()
        return named

    async def materialize(
        self, owner: Owner, prepared: list[dict[str, Any] | Reference], named: list[str]
    ) -> list[StoredItem]:
        known = await self.store.find_items(owner, named) if named else {}
        # The generated ids of the request, in one go (some may go unused).
        suffixes = ids.new_suffixes(len(prepared) - len(named))
        out: list[StoredItem] = []
        for entry in prepared:
            if isinstance(entry, Reference):
                found = known.get(entry.id)
                if found is None:
                    raise errors.referenced_item_not_found(entry.id)
                out.append(found)
                continue
            item_id = entry.get("id")
            if item_id is not None and item_id in known:
                out.append(known[item_id])
                continue
            out.append(self._fresh(entry, len(out), suffixes))
        return out

    def fresh(self, item: dict[str, Any], path: str = "item") -> StoredItem:
        """The item to store (``item`` loses its ``id``): with its own id, or a new one."""
        return self._fresh(item, path, [])

    def _fresh(self, item: dict[str, Any], where: str | int, suffixes: list[str]) -> StoredItem:
        """:meth:`fresh`, the new id from ``suffixes`` while it lasts; ``where`` is the
        param of a size error, or the index of the item in ``items``."""
        kind = item["type"]
        item_id = item.pop("id", None)
        if not item_id:
            prefix = self.registry.id_prefix(kind)
            item_id = f"{prefix}_{suffixes.pop()}" if suffixes else ids.new_id(prefix)
        body = {"id": item_id, **item}
        encoded = orjson.dumps(body)
        if len(encoded) > self.limits.max_item_bytes:
            path = where if isinstance(where, str) else f"items[{where}]"
            self.limits.check_stored(len(encoded), path)
        return stored_item(item_id, kind, encoded, include.gated_mask(body))
