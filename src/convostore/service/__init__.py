"""The rules of the Conversations API, free of HTTP: validation beyond item shapes,
id assignment, item copies and references, and the mapping of store facts to errors."""

from __future__ import annotations

from dataclasses import dataclass

from convostore.clock import SYSTEM, Clock
from convostore.items.registry import Registry
from convostore.service.conversations import Conversations
from convostore.service.idempotency import Idempotency
from convostore.service.items import Items
from convostore.service.limits import Limits
from convostore.service.listing import Listing
from convostore.service.materialize import Materializer
from convostore.service.responses import Responses
from convostore.service.responses.stored import StoredResponses
from convostore.store.base import Store
from convostore.upstream import UpstreamConfig


@dataclass(frozen=True, slots=True)
class Services:
    conversations: Conversations
    items: Items
    listing: Listing
    responses: Responses  # POST /v1/responses in front of a model server (issue 10)
    idempotency: Idempotency  # answers kept under an Idempotency-Key (issue 20)
    stored_responses: StoredResponses  # GET/DELETE /v1/responses/{id}, input items (issue 17)


def build_services(
    store: Store,
    registry: Registry | None = None,
    upstream: UpstreamConfig | None = None,
    clock: Clock = SYSTEM,
    idempotency_seconds: float = 24 * 3600,
    limits: Limits | None = None,
    page_max_bytes: int | None = None,
) -> Services:
    """``page_max_bytes``: the byte budget of a page of items or search hits (None: none)."""
    materializer = Materializer(store, registry or Registry(), limits or Limits())
    idempotency = Idempotency(store, idempotency_seconds)
    responses = Responses(store, materializer, upstream, clock=clock)
    return Services(
        Conversations(store, materializer, idempotency),
        Items(store, materializer, idempotency, page_max_bytes),
        Listing(store, page_max_bytes),
        responses,
        idempotency,
        responses.stored,
    )


__all__ = [
    "Conversations",
    "Idempotency",
    "Items",
    "Listing",
    "Responses",
    "Services",
    "build_services",
]
