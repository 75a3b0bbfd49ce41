"""What every step of one ``POST /v1/responses`` turn is given: who asks, what was asked,
the response's identity, its input items as stored, and the conversation lease held
(None without a conversation). One record, passed down the create path, so the steps
take it rather than the same five arguments each (docs/design.md: more than three or
four arguments, one record)."""

from __future__ import annotations

from dataclasses import dataclass

from convostore.service.responses.lease import Lease
from convostore.service.responses.request import ResponseRequest
from convostore.service.responses.resource import Identity
from convostore.store.base import Owner, StoredItem


@dataclass(frozen=True, slots=True)
class TurnContext:
    owner: Owner
    req: ResponseRequest
    identity: Identity
    inputs: list[StoredItem]
    lease: Lease | None
