"""Compaction items convostore makes, and how the model reads them (issue 18).

OpenAI's ``compaction`` item carries an ``encrypted_content`` only OpenAI's models can
read. convostore's model server writes a plain summary instead, stored in that same field
after :data:`PREFIX` (so clients that copy compaction items around, as the agents SDKs
do, carry it unchanged, and an operator can read it). The model is given such an item as
a user message holding the summary; a compaction item without the prefix (made by
OpenAI) keeps the rule of :mod:`.messages`: it cannot be sent.

``configuration_update`` items in the model's view (from the latest compaction on) set
``reasoning.effort`` and ``text.format`` for the turn, the newest one winning, unless the
request itself sets them (:func:`apply_updates`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from convostore.service.responses.request import ResponseRequest
from convostore.store.base import StoredItem

PREFIX = "convostore-summary:v1\n"
_MARK = PREFIX.strip().encode()  # as it appears in the stored JSON
SHOWN_AS = "Summary of the earlier part of this conversation:\n\n"
PROMPT = (
    "You compact a conversation between a user and an assistant so that it can go on "
    "without its earlier messages. Write a summary that keeps everything needed to "
    "continue: the user's goals and constraints, decisions made, facts and names learnt, "
    "tool calls made and what they returned, open questions and unfinished tasks. Quote "
    "the user's latest request word for word. Write plain text, no preamble."
)
SUMMARY_MAX_TOKENS = 1024


def is_ours(item: dict[str, Any]) -> bool:
    content = item.get("encrypted_content")
    return (
        item.get("type") == "compaction" and isinstance(content, str) and content.startswith(PREFIX)
    )


def is_ours_stored(item: StoredItem) -> bool:
    return item.type == "compaction" and _MARK in item.body and is_ours(orjson.loads(item.body))


def latest(items: Sequence[dict[str, Any]]) -> int:
    """The index of the latest compaction item convostore made in ``items``, or -1."""
    for index in range(len(items) - 1, -1, -1):
        if is_ours(items[index]):
            return index
    return -1


def new_item(summary: str) -> dict[str, Any]:
    return {"type": "compaction", "encrypted_content": PREFIX + summary}


def as_message(item: dict[str, Any]) -> dict[str, Any]:
    """The chat message the model is given for a compaction item convostore made."""
    return {"role": "user", "content": SHOWN_AS + item["encrypted_content"][len(PREFIX) :]}


def as_input_item(item: dict[str, Any]) -> dict[str, Any]:
    """The same, as a Responses ``input`` item (``--upstream-api responses``)."""
    text = as_message(item)["content"]
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def summary_tokens(window: int) -> int:
    return max(16, min(SUMMARY_MAX_TOKENS, window // 4))


def transcript(messages: Sequence[dict[str, Any]]) -> str:
    """Chat messages as a plain transcript, for the summarising call."""
    lines: list[str] = []
    for message in messages:
        role = message.get("role", "")
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(
                part.get("text", "[attachment]") for part in content if isinstance(part, dict)
            )
        text = content or ""
        if message.get("reasoning_content"):
            text = f"(thinking: {message['reasoning_content']})\n{text}"
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            text += f"\n[calls {function.get('name')}({function.get('arguments')})]"
        if role == "tool":
            role = f"tool result for {message.get('tool_call_id')}"
        lines.append(f"{role}: {text.strip()}")
    return "\n\n".join(lines)


def summary_body(model: str, text: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": PROMPT},
            {"role": "user", "content": "The conversation so far:\n\n" + text},
        ],
        "max_tokens": max_tokens,
    }


def summary_input(model: str, text: str, max_tokens: int) -> dict[str, Any]:
    """:func:`summary_body` for the model server's own ``/responses``."""
    return {
        "model": model,
        "instructions": PROMPT,
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "The conversation so far:\n\n" + text}],
            }
        ],
        "max_output_tokens": max_tokens,
        "store": False,
    }


def summary_of_response(response: dict[str, Any]) -> str | None:
    """The summary a ``/responses`` answer holds: its assistant messages' text."""
    raw = response.get("output")
    texts = [
        part["text"]
        for item in (raw if isinstance(raw, list) else ())
        if isinstance(item, dict) and item.get("type") == "message"
        for part in item.get("content") or ()
        if isinstance(part, dict)
        and part.get("type") == "output_text"
        and isinstance(part.get("text"), str)
    ]
    text = "".join(texts).strip()
    return text or None


def summary_of(completion: dict[str, Any]) -> str | None:
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content.strip() if isinstance(content, str) and content.strip() else None


def apply_updates(req: ResponseRequest, view: Sequence[dict[str, Any]]) -> None:
    """The newest ``configuration_update`` of the view sets what the request left unset."""
    effort: str | None = None
    form: dict[str, Any] | None = None
    for item in view:
        if item.get("type") != "configuration_update":
            continue
        reasoning = item.get("reasoning")
        if isinstance(reasoning, dict) and "effort" in reasoning:
            effort = reasoning["effort"]
        text = item.get("text")
        if isinstance(text, dict) and isinstance(text.get("format"), dict):
            form = text["format"]
    if effort is not None and req.effort is None:
        req.effort = effort
    if form is not None and req.text.get("format") == {"type": "text"}:
        req.text = {**req.text, "format": form}
