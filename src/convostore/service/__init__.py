"""The rules of the Conversations API, free of HTTP: validation beyond item shapes,
id assignment, item copies and references, and the mapping of store facts to errors."""

from __future__ import annotations

from dataclasses import dataclass

from convostore.items.registry import Registry
from convostore.service.conversations import Conversations
from convostore.service.items import Items
from convostore.service.materialize import Materializer
from convostore.store.base import Store


@dataclass(frozen=True, slots=True)
class Services:
    conversations: Conversations
    items: Items


def build_services(store: Store, registry: Registry | None = None) -> Services:
    materializer = Materializer(store, registry or Registry())
    return Services(Conversations(store, materializer), Items(store, materializer))


__all__ = ["Conversations", "Items", "Services", "build_services"]
