"""A model server's own ``/v1/responses`` as the upstream (``--upstream-api responses``,
issue 17): for servers that speak the Responses API (vLLM, SGLang/SMG, ogx,
agentic-api), the turn's history and input are sent as ``input`` items, unchanged (their
reasoning items and tool calls included), with ``store: false``: convostore keeps the
state, the model server keeps nothing. The output items come back as the model server
made them and are stored through the item registry like any output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from convostore.items import include as includes
from convostore.service.responses.request import ResponseRequest
from convostore.store.base import StoredItem


def body(
    request: ResponseRequest,
    history: Sequence[StoredItem],
    inputs: Sequence[StoredItem],
    model: str,
) -> dict[str, Any]:
    """The request to the model server's ``POST /responses``."""
    out: dict[str, Any] = {
        "model": model,
        "input": [orjson.loads(item.body) for item in (*history, *inputs)],
        "store": False,
    }
    if request.instructions is not None:
        out["instructions"] = request.instructions
    if request.tools:
        out["tools"] = request.tools
        out["tool_choice"] = request.tool_choice
        out["parallel_tool_calls"] = request.parallel_tool_calls
    for key in ("temperature", "top_p", "max_output_tokens", "max_tool_calls", "top_logprobs"):
        value = getattr(request, key)
        if value is not None:
            out[key] = value
    out["text"] = request.text
    reasoning = {
        key: value
        for key, value in (("effort", request.effort), ("summary", request.summary))
        if value is not None
    }
    if reasoning:
        out["reasoning"] = reasoning
    if request.include:
        out["include"] = [name for name, bit in includes.BIT.items() if request.include & bit]
    out.update(request.forwarded)
    return out
