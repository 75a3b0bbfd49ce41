"""What the model said, as Responses output items (shared by the streaming and the
non-streaming paths), and the usage block.

The rules (docs/responses.md, "What comes back"):

* the reasoning text a model server sends (``reasoning_content``, or ``reasoning`` as
  newer vLLM and Ollama name it) becomes one ``reasoning`` item ``rs_…``, before the
  rest, with the text as ``content`` ``[{type: reasoning_text}]``; when the request asked
  for a reasoning summary (``reasoning.summary``), the text is given as ``summary``
  ``[{type: summary_text}]`` instead, since the model server makes no shorter one;
* the text (and a ``refusal``) becomes one assistant ``message`` ``msg_…`` with an
  ``output_text`` part (``annotations: []``, and ``logprobs`` when asked for);
* each tool call becomes a ``function_call`` ``fc_…`` that keeps the model server's id
  as its ``call_id`` (one is made, ``call_…``, if the server sent none); with
  ``parallel_tool_calls: false`` only the first call is kept;
* ``finish_reason: length`` makes the response ``incomplete`` (``max_output_tokens``)
  and its last item ``incomplete``; ``content_filter`` makes it ``incomplete``
  (``content_filter``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from convostore import ids

if TYPE_CHECKING:
    from convostore.service.responses.request import ResponseRequest

Item = dict[str, Any]

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass(frozen=True, slots=True)
class Shape:
    """How this request wants output made."""

    summary: bool  # reasoning text as summary, not content
    parallel: bool
    logprobs: bool


def reasoning_item(item_id: str, text: str, shape: Shape) -> Item:
    part_type = "summary_text" if shape.summary else "reasoning_text"
    item: Item = {"id": item_id, "type": "reasoning", "summary": []}
    if shape.summary:
        item["summary"] = [{"type": part_type, "text": text}]
    else:
        item["content"] = [{"type": part_type, "text": text}]
    return item


def text_part(text: str, logprobs: list[Any] | None = None) -> Item:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def message_item(item_id: str, parts: list[Item], status: str) -> Item:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": parts,
    }


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> Item:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def new_call_id() -> str:
    return ids.new_id("call")


def logprobs(choice: dict[str, Any]) -> list[Any]:
    """A chat choice's token logprobs in the Responses shape (the same fields)."""
    block = choice.get("logprobs")
    content = block.get("content") if isinstance(block, dict) else None
    out: list[Any] = []
    for token in content or ():
        if not isinstance(token, dict):
            continue
        out.append(
            {
                "token": token.get("token", ""),
                "logprob": token.get("logprob", 0.0),
                "bytes": token.get("bytes") or [],
                "top_logprobs": [
                    {
                        "token": top.get("token", ""),
                        "logprob": top.get("logprob", 0.0),
                        "bytes": top.get("bytes") or [],
                    }
                    for top in token.get("top_logprobs") or ()
                    if isinstance(top, dict)
                ],
            }
        )
    return out


def reasoning_of(message: dict[str, Any]) -> str | None:
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def from_completion(
    completion: dict[str, Any], shape: Shape, new_id: Callable[[str], str]
) -> tuple[list[Item], str | None]:
    """Output items of a non-streaming chat completion, and its finish_reason."""
    choices = completion.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    status = "incomplete" if finish in INCOMPLETE_REASONS else "completed"
    items: list[Item] = []
    reasoning = reasoning_of(message)
    if reasoning:
        items.append(reasoning_item(new_id("rs"), reasoning, shape))
    parts: list[Item] = []
    if isinstance(message.get("content"), str) and message["content"]:
        parts.append(text_part(message["content"], logprobs(choice) if shape.logprobs else None))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        items.append(message_item(new_id("msg"), parts, "completed"))
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
    for call in calls[: None if shape.parallel else 1]:
        function = call.get("function") or {}
        items.append(
            call_item(
                new_id("fc"),
                call.get("id") or new_call_id(),
                function.get("name") or "",
                _arguments(function.get("arguments")),
                "completed",
            )
        )
    if status == "incomplete":
        for item in reversed(items):
            if item["type"] != "reasoning":
                item["status"] = "incomplete"
                break
    return items, finish


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return orjson.dumps(value).decode()  # some servers send the arguments as an object


def usage(raw: Any) -> dict[str, Any] | None:
    """A chat ``usage`` block as the Responses ``usage`` (None when the server sent none)."""
    if not isinstance(raw, dict):
        return None
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": int(prompt_details.get("cached_tokens") or 0)},
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)
        },
        "total_tokens": int(raw.get("total_tokens") or prompt + completion),
    }


def shape_of(req: ResponseRequest) -> Shape:
    """The output shape ``req`` asks for."""
    return Shape(
        summary=req.summary is not None, parallel=req.parallel_tool_calls, logprobs=req.logprobs
    )
