"""The Response object, as ``POST /v1/responses`` returns it and the stream's lifecycle
events carry it: every field OpenAI sends, the request's parameters echoed back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from convostore import errors
from convostore.service.responses.request import ResponseRequest


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    created_at: int
    model: str  # the name the client asked for (before --model-map)


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished (or incomplete) response, already written back."""

    response: dict[str, Any]


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool["name"],
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def _service_tier(request: ResponseRequest, status: str) -> Any:
    """The tier asked for (OpenAI's default: "auto") until the response has its output;
    then "auto" is reported as the tier that served it, "default" (as in OpenAI's
    recorded streams: "auto" in ``response.created`` and ``in_progress``, and in a
    ``response.failed`` that never ran; "default" in ``response.completed`` and
    ``response.incomplete``)."""
    asked = request.forwarded.get("service_tier", "auto")
    return "default" if asked == "auto" and status in ("completed", "incomplete") else asked


def error_of(failure: errors.ApiError) -> dict[str, Any]:
    """A failed response's ``error``: OpenAI's codes for a response, rate_limit_exceeded
    when the model server refused for load (429), server_error otherwise."""
    code = "rate_limit_exceeded" if failure.status == 429 else "server_error"
    return {"code": code, "message": failure.message}


def build(
    request: ResponseRequest,
    identity: Identity,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
    billed: bool = False,
) -> dict[str, Any]:
    """The Response object. ``billed``: the answer of a non-streamed create, which carries
    OpenAI's ``billing`` (every such answer recorded has it, no streamed event does)."""
    done = status in ("completed", "incomplete", "failed")
    response: dict[str, Any] = {
        "id": identity.id,
        "object": "response",
        "created_at": identity.created_at,
        "status": status,
        "background": request.background,
    }
    if billed:
        response["billing"] = {"payer": "developer"}
    response["completed_at"] = int(time.time()) if status == "completed" else None
    if request.conversation_id is not None:  # OpenAI leaves the key out when there is none
        response["conversation"] = {"id": request.conversation_id}
    return response | {
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
        "service_tier": _service_tier(request, status),
        "store": request.store,
        # Not given: OpenAI's defaults (1.0 each), as its answers report them; the model
        # server is sent none and applies its own.
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "text": {"verbosity": "medium", **request.text},
        "tool_choice": request.tool_choice,
        "tools": [_tool(tool) for tool in request.tools],
        "top_logprobs": request.top_logprobs or 0,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "truncation": request.truncation,
        "usage": usage if done else None,
        "user": request.forwarded.get("user"),
    }
