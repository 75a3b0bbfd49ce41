"""The Response object, as ``POST /v1/responses`` returns it and the stream's lifecycle
events carry it: every field OpenAI sends, the request's parameters echoed back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from convostore.service.responses.request import ResponseRequest


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    created_at: int
    model: str  # the name the client asked for (before --model-map)


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool["name"],
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def build(
    request: ResponseRequest,
    identity: Identity,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    done = status in ("completed", "incomplete", "failed")
    return {
        "id": identity.id,
        "object": "response",
        "created_at": identity.created_at,
        "status": status,
        "background": request.background,
        "completed_at": int(time.time()) if status == "completed" else None,
        "conversation": (
            {"id": request.conversation_id} if request.conversation_id is not None else None
        ),
        "error": error,
        # OpenAI's defaults (recorded answers, 2026): convostore sends no penalties, and
        # model servers default them to 0 too.
        "frequency_penalty": 0.0,
        "incomplete_details": (
            {"reason": incomplete_reason} if incomplete_reason is not None else None
        ),
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "metadata": request.metadata,
        "model": identity.model,
        "output": output,
        "parallel_tool_calls": request.parallel_tool_calls,
        "presence_penalty": 0.0,
        "previous_response_id": request.previous_response_id,
        "prompt_cache_key": request.forwarded.get("prompt_cache_key"),
        "prompt_cache_retention": request.forwarded.get("prompt_cache_retention"),
        "reasoning": {"effort": request.effort, "summary": request.summary},
        "safety_identifier": request.forwarded.get("safety_identifier"),
        "service_tier": request.forwarded.get("service_tier", "default"),
        "store": request.store,
        "temperature": request.temperature,  # None: the model server's own default
        "text": {"verbosity": "medium", **request.text},
        "tool_choice": request.tool_choice,
        "tools": [_tool(tool) for tool in request.tools],
        "top_logprobs": request.top_logprobs or 0,
        "top_p": request.top_p,
        "truncation": request.truncation,
        "usage": usage if done else None,
        "user": request.forwarded.get("user"),
    }
