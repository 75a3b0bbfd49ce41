"""Conversation items → Chat Completions messages: what the model server sees.

The rules (docs/responses.md, "What the model sees"):

* ``message``: user, system and developer messages keep their role (``developer``
  becomes ``system``, which every chat template knows); ``input_text`` parts become the
  text, ``input_image`` parts with an ``image_url`` become ``image_url`` parts, and
  ``input_file`` parts with inline ``file_data`` become ``file`` parts. Assistant messages
  become assistant messages with their ``output_text`` (and ``refusal``) text.
* ``function_call`` items become ``tool_calls`` of an assistant message: the calls of
  one model turn, and the assistant text right before them, make one message.
  ``function_call_output`` items become ``tool`` messages (their text parts).
* ``reasoning`` items with readable text (``content`` or ``summary``) are given to the
  next assistant message of the same turn as ``reasoning_content`` (how vLLM, SGLang and
  llama.cpp take a model's earlier reasoning back); earlier turns' reasoning is left
  out, as chat templates do, unless ``reasoning.context`` is ``all_turns``. Reasoning with
  only ``encrypted_content`` (made by OpenAI) cannot be read by another model: left out.
* ``compaction`` items convostore made (:mod:`.compaction`) become a user message holding
  their summary. Those made by OpenAI hold encrypted summaries of what came before them;
  leaving them out would silently drop that context, so a conversation that holds one is
  refused (400) until the item is deleted.
* ``configuration_update`` items are settings, not content: not shown to the model
  (:func:`.compaction.apply_updates` reads them).
* Items that record OpenAI's hosted tools (web and file search, code interpreter, image
  generation, computer use, MCP, shell, apply_patch, tool search, programs, custom
  tools) have no Chat Completions form. In the conversation's history they are left
  out; sent as ``input`` of this request they are refused (400), since the caller means
  the model to see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from convostore import errors
from convostore.service.responses import compaction
from convostore.upstream.config import DEFAULT_IMAGE_PREFIXES

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Entry:
    """One item as the model will see it, and how to name it in an error."""

    item: dict[str, Any]
    param: str  # "input[2]" or "conversation"
    where: str  # "'input[2]'" or "conversation item 'msg_…'"

    @property
    def from_input(self) -> bool:
        return self.param != "conversation"


def _refuse(entry: Entry, why: str, suffix: str = "") -> errors.InvalidRequest:
    return errors.InvalidRequest(
        f"{entry.where[0].upper()}{entry.where[1:]} cannot be sent to the model server: {why}",
        param=entry.param + suffix if entry.from_input else entry.param,
        code="unsupported_item" if not entry.from_input else "invalid_value",
    )


def image_url_allowed(url: str, prefixes: Sequence[str]) -> bool:
    lowered = url.lstrip().lower()
    return any(lowered.startswith(prefix.lower()) for prefix in prefixes)


HOSTED = frozenset(
    (
        "additional_tools",
        "apply_patch_call",
        "apply_patch_call_output",
        "code_interpreter_call",
        "computer_call",
        "computer_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "file_search_call",
        "image_generation_call",
        "local_shell_call",
        "local_shell_call_output",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "mcp_list_tools",
        "program",
        "program_output",
        "shell_call",
        "shell_call_output",
        "tool_search_call",
        "tool_search_output",
        "web_search_call",
    )
)


def to_messages(
    entries: Sequence[Entry],
    *,
    instructions: str | None,
    all_reasoning: bool,
    image_prefixes: Sequence[str] = DEFAULT_IMAGE_PREFIXES,
) -> list[Message]:
    messages: list[Message] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    last_user = max(
        (i for i, e in enumerate(entries) if _is_user(e.item)),
        default=-1,
    )
    reasoning: list[str] = []
    merge = False  # the last message is the assistant's and this turn may add to it
    for index, entry in enumerate(entries):
        item = entry.item
        kind = item.get("type")
        if kind == "message":
            if item.get("role") == "assistant":
                message: Message = {"role": "assistant", "content": _assistant_text(item)}
                _give_reasoning(message, reasoning)
                messages.append(message)
                merge = True
            else:
                messages.append(_input_message(entry, image_prefixes))
                reasoning.clear()
                merge = False
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            if merge and not reasoning:
                messages[-1].setdefault("tool_calls", []).append(call)
            else:
                message = {"role": "assistant", "content": None, "tool_calls": [call]}
                _give_reasoning(message, reasoning)
                messages.append(message)
            merge = True
        elif kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": _tool_text(entry)}
            )
            merge = False
        elif kind == "reasoning":
            text = reasoning_text(item)
            if text and (all_reasoning or index > last_user):
                reasoning.append(text)
        elif kind == "compaction" and compaction.is_ours(item):
            messages.append(compaction.as_message(item))
            reasoning.clear()
            merge = False
        elif kind == "configuration_update":
            continue  # read by compaction.apply_updates, not shown to the model
        elif kind == "compaction":
            raise _refuse(
                entry,
                "it is a compaction, whose content only OpenAI can read. Delete it "
                "(DELETE /v1/conversations/{id}/items/{item_id}) to go on without it.",
            )
        elif kind in HOSTED:
            if entry.from_input:
                raise _refuse(
                    entry, f"items of type '{kind}' have no Chat Completions form.", ".type"
                )
        else:  # a type this server does not know how to show: never guess
            raise _refuse(entry, f"items of type '{kind}' have no Chat Completions form.", ".type")
    return messages


def reasoning_text(item: dict[str, Any]) -> str:
    parts = item.get("content") or item.get("summary") or []
    return "\n\n".join(p.get("text", "") for p in parts if isinstance(p, dict) and p.get("text"))


def _is_user(item: dict[str, Any]) -> bool:
    return item.get("type") == "message" and item.get("role") == "user"


def _give_reasoning(message: Message, reasoning: list[str]) -> None:
    if reasoning:
        message["reasoning_content"] = "\n\n".join(reasoning)
        reasoning.clear()


def _assistant_text(item: dict[str, Any]) -> str:
    out: list[str] = []
    for part in item.get("content") or ():
        if part.get("type") == "output_text":
            out.append(part.get("text", ""))
        elif part.get("type") == "refusal":
            out.append(part.get("refusal", ""))
    return "".join(out)


def _input_message(entry: Entry, image_prefixes: Sequence[str]) -> Message:
    item = entry.item
    role = "system" if item["role"] == "developer" else item["role"]
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(item.get("content") or ()):
        kind = part.get("type")
        suffix = f".content[{index}]"
        if kind == "input_text":
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "input_image" and part.get("image_url") and role == "user":
            if not image_url_allowed(part["image_url"], image_prefixes):
                raise _refuse(
                    entry,
                    "this server sends the model server only image URLs that begin with "
                    + ", ".join(f"'{p}'" for p in image_prefixes)
                    + " (--upstream-image-url-prefixes).",
                    suffix + ".image_url",
                )
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail") not in (None, "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file" and part.get("file_data") and role == "user":
            file = {"file_data": part["file_data"]}
            if part.get("filename"):
                file["filename"] = part["filename"]
            parts.append({"type": "file", "file": file})
        else:
            what = {
                "input_image": "an image must be given by image_url, in a user message",
                "input_file": "a file must be given inline (file_data), in a user message",
            }.get(kind or "", f"content parts of type '{kind}' have no Chat Completions form")
            raise _refuse(entry, what + ".", suffix)
    if all(p["type"] == "text" for p in parts):
        return {"role": role, "content": "\n".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _tool_text(entry: Entry) -> str:
    output = entry.item.get("output")
    if isinstance(output, str):
        return output
    texts: list[str] = []
    for index, part in enumerate(output or ()):
        if part.get("type") != "input_text":
            raise _refuse(
                entry,
                "a tool message of Chat Completions holds text only.",
                f".output[{index}]",
            )
        texts.append(part.get("text", ""))
    return "\n".join(texts)
