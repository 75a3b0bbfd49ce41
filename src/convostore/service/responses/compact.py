"""``POST /v1/responses/compact`` (issue 18): a summary of a history, as a compaction item.

The body is OpenAI's (``model``, ``input``, ``instructions``, ``previous_response_id``
and the pass-through fields) plus one extension, ``conversation``: its schema is
``CompactResponseBody`` (``body.py``, a response's fields), and :mod:`.request` reads it
like a response's. The conversation's history (from its latest compaction on, read
bounded) is compacted with the input, and the conversation gets the input then the
compaction item appended under its lease. The answer is OpenAI's ``response.compaction`` object:
the user messages that were summarised, then the compaction item; nothing else is stored.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from convostore import errors, ids
from convostore.service.responses import history, request, window
from convostore.service.responses.body import COMPACT_RESPONSE
from convostore.service.responses.lease import Lease
from convostore.service.responses.writeback import turn_of, write_back
from convostore.store.base import Owner

if TYPE_CHECKING:
    from convostore.service.responses import Responses


async def compact(service: Responses, owner: Owner, body: Any) -> dict[str, Any]:
    req = request.parse(body, service.registry, COMPACT_RESPONSE)
    if service.upstream is None:
        from convostore.service.responses import NOT_CONFIGURED

        raise errors.InvalidRequest(NOT_CONFIGURED, code="upstream_not_configured")
    if req.compact_at is not None:
        raise errors.invalid_value("input", "compaction_trigger", ("message", "..."))
    inputs = await service._inputs(owner, req)
    identity = ids.new_id("resp")
    lease: Lease | None = None
    if req.conversation_id is not None:
        lease = Lease(
            service.store,
            owner,
            req.conversation_id,
            identity,
            service.config.lease_seconds,
            service.clock,
        )
        await lease.take()
    try:
        size = await service.context.window(req.model)
        held, complete = await service.context.view(owner, req, size)
        history.entries(held, inputs)
        items = window.decode(held) + window.decode(inputs)
        compacted, usage = await service.context.compact(req, items, size, complete)
        if req.conversation_id is not None:
            turn = turn_of(req.conversation_id, [*inputs, compacted], [], lease)
            await write_back(service.store, owner, None, turn)
    finally:
        if lease is not None:
            await lease.release()
    users = [item for item in items if item.get("type") == "message" and item.get("role") == "user"]
    return {
        "id": identity,
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*users, orjson.loads(compacted.body)],
        "usage": usage
        or {
            "input_tokens": 0,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 0,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 0,
        },
    }
