"""The body of ``POST /v1/responses``, checked: what convostore can honour, and a 400
naming every parameter it cannot (docs/responses.md lists both).

The shape of the body is a schema (``body.py``), compiled by the item compiler like every
other body: a missing ``model`` first, then unknown keys, then types and values field by
field, in OpenAI's wording. What remains here is what a schema cannot state: ``model:
null`` counts as missing, the input items are validated by the item registry exactly as
the Conversations API validates them (paths ``input[i]…``, so what is stored later is what
the Conversations API would have stored), the rules across fields, and the refusals of
what this server cannot honour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from convostore import errors
from convostore.items import include as includes
from convostore.items.registry import Reference, Registry
from convostore.service import bodies
from convostore.service.responses.body import (
    CREATE_RESPONSE,
    FORWARDED,
    KNOWN,
    REFUSED,
    TOOL_KEYS,
)

__all__ = ["KNOWN", "TOOL_KEYS", "ResponseRequest", "parse"]

REFUSAL = "is not supported by this server."
# Known to OpenAI, with no counterpart on a Chat Completions model server.
NOT_HONOURED = {
    **dict.fromkeys(REFUSED, REFUSAL),
    "prompt": "is not supported by this server: there are no stored prompts.",
}
_REFUSED = frozenset(NOT_HONOURED)
_FORWARDED = frozenset(FORWARDED)


@dataclass(slots=True)
class ResponseRequest:
    model: str
    input: list[dict[str, Any] | Reference]
    conversation_id: str | None = None
    previous_response_id: str | None = None
    instructions: str | None = None
    stream: bool = False
    store: bool = True
    background: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    allowed_tools: frozenset[str] | None = None  # tool_choice allowed_tools: the names
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    include: int = 0
    top_logprobs: int | None = None
    effort: str | None = None
    summary: str | None = None  # reasoning text is shown as a summary when asked for one
    reasoning_context: str = "auto"
    truncation: str = "disabled"
    compact_threshold: int | None = None  # context_management's compaction entry (issue 18)
    compact_at: int | None = None  # where a compaction_trigger input item stood
    obfuscate: bool = True
    forwarded: dict[str, Any] = field(default_factory=dict)

    @property
    def logprobs(self) -> bool:
        return bool(self.include & includes.BIT[includes.OUTPUT_TEXT_LOGPROBS]) or bool(
            self.top_logprobs
        )


def parse(body: Any, registry: Registry, shape: bodies.Body = CREATE_RESPONSE) -> ResponseRequest:
    """The request of ``body``, checked against ``shape`` (a compaction's body is a
    response's with fewer keys, ``body.COMPACT_RESPONSE``)."""
    if type(body) is dict and body.get("model") is None:
        raise errors.missing_parameter("model")  # null counts as missing, as for OpenAI
    get = shape.check(body).get
    items, compact_at = _input(get("input"), registry)
    request = ResponseRequest(model=body["model"], input=items, compact_at=compact_at)
    _state(get("conversation"), get("previous_response_id"), request)
    if not _REFUSED.isdisjoint(body):
        for key, why in NOT_HONOURED.items():
            value = get(key)
            if value is not None and value is not False and value != []:
                raise errors.unsupported_parameter(key, why)
    request.instructions = get("instructions")
    request.stream = get("stream") or False
    request.store = get("store") is not False
    request.background = get("background") or False
    if request.background and not request.store:
        raise errors.InvalidRequest(
            "Background responses are stored: 'background' needs 'store' true (the default).",
            param="store",
        )
    metadata = get("metadata")
    if metadata:
        request.metadata = dict(metadata)
    names = _tools(get("tools"), request)
    choice = get("tool_choice")
    if choice is not None:
        request.tool_choice = choice
        if type(choice) is dict:
            _tool_choice(choice, names, request)
    request.parallel_tool_calls = get("parallel_tool_calls") is not False
    request.max_tool_calls = get("max_tool_calls")
    temperature, top_p = get("temperature"), get("top_p")
    request.temperature = None if temperature is None else float(temperature)
    request.top_p = None if top_p is None else float(top_p)
    request.max_output_tokens = get("max_output_tokens")
    request.top_logprobs = get("top_logprobs")
    text = get("text")
    if text is not None:
        request.text = _text(text)
    reasoning = get("reasoning")
    if reasoning is not None:
        _reasoning(reasoning, request)
    request.include = includes.parse(get("include") or [])
    request.truncation = get("truncation") or "disabled"
    options = get("stream_options")
    if options is not None:
        request.obfuscate = options.get("include_obfuscation") is not False
    if not _FORWARDED.isdisjoint(body):
        request.forwarded = {key: body[key] for key in FORWARDED if get(key) is not None}
    management = get("context_management")
    if management:
        request.compact_threshold = _compact_threshold(management)
    return request


def _state(conversation: Any, previous: str | None, request: ResponseRequest) -> None:
    if conversation is not None:
        request.conversation_id = conversation["id"] if type(conversation) is dict else conversation
    if previous is not None:
        if request.conversation_id is not None:
            raise errors.InvalidRequest(
                "Mutually exclusive parameters: Ensure you are only providing one of: "
                "'previous_response_id' or 'conversation'.",
                code="mutually_exclusive_parameters",
            )
        request.previous_response_id = previous


def _input(value: Any, registry: Registry) -> tuple[list[dict[str, Any] | Reference], int | None]:
    """The input items, and where a ``compaction_trigger`` stood (it is not an item)."""
    if value is None:
        return [], None
    if type(value) is str:
        easy = {"type": "message", "role": "user", "content": value}
        return [registry.prepare(easy, "input")], None
    items: list[dict[str, Any] | Reference] = []
    compact_at: int | None = None
    for index, raw in enumerate(value):
        if type(raw) is dict and raw.get("type") == "compaction_trigger":
            for key in raw:
                if key not in ("type", "id"):
                    raise errors.unknown_parameter(f"input[{index}].{key}")
            compact_at = len(items)
            continue
        items.append(registry.prepare(raw, f"input[{index}]"))
    return items, compact_at


def _compact_threshold(management: list[dict[str, Any]]) -> int | None:
    """``[{"type": "compaction", "compact_threshold": N}]``: compact past N tokens; an entry
    without a threshold means 0 (the window decides: compaction.default_threshold)."""
    threshold: int | None = None
    for entry in management:
        given = entry.get("compact_threshold")
        if given is not None:
            threshold = given
        elif threshold is None:
            threshold = 0
    return threshold


def _tools(tools: list[dict[str, Any]] | None, request: ResponseRequest) -> list[str]:
    """The function tools' names; a hosted tool, or a function tool feature this server
    has no counterpart for, is refused."""
    names: list[str] = []
    for index, tool in enumerate(tools or ()):
        path = f"tools[{index}]"
        kind = tool["type"]
        if kind != "function":
            raise errors.unsupported_parameter(
                f"{path}.type",
                f"'{kind}' is not supported by this server: only function tools can be given "
                "to a Chat Completions model server.",
            )
        if tool.get("defer_loading"):
            raise errors.unsupported_parameter(
                f"{path}.defer_loading", "is not supported by this server: there is no tool search."
            )
        if tool.get("output_schema") is not None:
            raise errors.unsupported_parameter(f"{path}.output_schema", REFUSAL)
        if "programmatic" in (tool.get("allowed_callers") or ()):
            raise errors.unsupported_parameter(
                f"{path}.allowed_callers", "'programmatic' is not supported by this server."
            )
        names.append(tool["name"])
        request.tools.append(tool)
    return names


def _tool_choice(choice: dict[str, Any], names: list[str], request: ResponseRequest) -> None:
    kind = choice["type"]
    if kind == "function":
        if choice["name"] not in names:
            raise errors.InvalidRequest(
                f"Tool choice '{choice['name']}' not found in 'tools' parameter.",
                param="tool_choice",
            )
    elif kind == "allowed_tools":
        allowed: set[str] = set()
        for index, entry in enumerate(choice.get("tools") or ()):
            if entry["type"] != "function":
                raise errors.unsupported_parameter(
                    f"tool_choice.tools[{index}]",
                    "is not supported by this server: only function tools can be allowed.",
                )
            allowed.add(entry["name"])
        request.allowed_tools = frozenset(allowed)
    else:
        raise errors.unsupported_parameter(
            "tool_choice",
            f"of type '{kind}' is not supported by this server: use 'none', 'auto', "
            "'required', a function or allowed_tools.",
        )


def _text(text: dict[str, Any]) -> dict[str, Any]:
    """The ``text`` echoed on the response: the format (text by default), the verbosity."""
    echo: dict[str, Any] = {"format": text.get("format") or {"type": "text"}}
    verbosity = text.get("verbosity")
    if verbosity is not None:
        echo["verbosity"] = verbosity
    return echo


def _reasoning(reasoning: dict[str, Any], request: ResponseRequest) -> None:
    request.effort = reasoning.get("effort")
    for key in ("summary", "generate_summary"):
        summary = reasoning.get(key)
        if summary is not None:
            request.summary = summary
    request.reasoning_context = reasoning.get("context") or "auto"
    mode = reasoning.get("mode")
    if mode is not None and mode != "standard":
        raise errors.unsupported_parameter(
            "reasoning.mode", f"'{mode}' is not supported by this server."
        )
