"""The body of ``POST /v1/responses``, checked: what convostore can honour, and a 400
naming every parameter it cannot (docs/responses.md lists both).

Checks run in OpenAI's order: a missing ``model`` first, then unknown keys, then types
and values, field by field. Input items are validated by the item registry exactly as
the Conversations API validates them (paths ``input[i]…``), so what is stored later is
what the Conversations API would have stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from convostore import errors
from convostore.items import include as includes
from convostore.items.registry import Reference, Registry
from convostore.service import bodies

KNOWN = frozenset(
    (
        "access_programs",
        "background",
        "background_options",
        "context_management",
        "conversation",
        "image",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "moderation",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    )
)

# Known to OpenAI, with no counterpart on a Chat Completions model server.
NOT_HONOURED = {
    "access_programs": "is not supported by this server.",
    "background_options": "is not supported by this server.",
    "image": "is not supported by this server.",
    "moderation": "is not supported by this server.",
    "prompt": "is not supported by this server: there are no stored prompts.",
    "prompt_cache_options": "is not supported by this server.",
}

# Sent on to the model server's Chat Completions request under the same name.
FORWARDED = (
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
)

TOOL_KEYS = frozenset(
    (
        "type",
        "name",
        "parameters",
        "strict",
        "description",
        "defer_loading",
        "allowed_callers",
        "output_schema",
    )
)
TOOL_CHOICES = ("none", "auto", "required")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SUMMARIES = ("auto", "concise", "detailed")
CONTEXTS = ("auto", "current_turn", "all_turns")
VERBOSITIES = ("low", "medium", "high")
FORMAT_KEYS = {
    "text": frozenset(("type",)),
    "json_schema": frozenset(("type", "name", "schema", "description", "strict")),
    "json_object": frozenset(("type",)),
}
MIN_OUTPUT_TOKENS = 16
TOP_LOGPROBS_MAX = 20


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
    obfuscate: bool = False
    forwarded: dict[str, Any] = field(default_factory=dict)

    @property
    def logprobs(self) -> bool:
        return bool(self.include & includes.BIT[includes.OUTPUT_TEXT_LOGPROBS]) or bool(
            self.top_logprobs
        )


def parse(body: Any, registry: Registry) -> ResponseRequest:
    if type(body) is not dict:
        kind = errors.described_type(errors.json_type_of(body))
        raise errors.InvalidRequest(
            f"Invalid body: expected a JSON object, but got {kind} instead.", code="invalid_type"
        )
    if body.get("model") is None:
        raise errors.missing_parameter("model")
    for key in body:
        if key not in KNOWN:
            raise errors.unknown_parameter(key)
    model = _string(body, "model")
    items, request_compact_at = _input(body.get("input"), registry)
    request = ResponseRequest(model=model, input=items, compact_at=request_compact_at)
    _state(body, request)
    for key, why in NOT_HONOURED.items():
        value = body.get(key)
        if value is not None and value is not False and value != []:
            raise errors.unsupported_parameter(key, why)
    request.instructions = _optional_string(body, "instructions")
    request.stream = _flag(body, "stream", False)
    request.store = _flag(body, "store", True)
    request.background = _flag(body, "background", False)
    if request.background and not request.store:
        raise errors.InvalidRequest(
            "Background responses are stored: 'background' needs 'store' true (the default).",
            param="store",
        )
    if body.get("metadata") is not None:
        request.metadata = orjson.loads(bodies.metadata_json(body["metadata"]))
    _tools(body, request)
    _sampling(body, request)
    _text(body, request)
    _reasoning(body, request)
    request.include = includes.parse(_strings(body, "include"))
    truncation = body.get("truncation")
    if truncation is not None:
        if truncation not in ("auto", "disabled"):
            raise errors.invalid_value("truncation", truncation, ("auto", "disabled"))
        request.truncation = truncation
    _context_management(body, request)
    options = body.get("stream_options")
    if options is not None:
        if type(options) is not dict:
            raise errors.invalid_type("stream_options", ["object"], options)
        for key in options:
            if key != "include_obfuscation":
                raise errors.unknown_parameter(f"stream_options.{key}")
        request.obfuscate = _flag(options, "include_obfuscation", False, "stream_options.")
    for key in FORWARDED:
        value = body.get(key)
        if value is not None:
            request.forwarded[key] = _string(body, key)
    return request


def _state(body: dict[str, Any], request: ResponseRequest) -> None:
    conversation = body.get("conversation")
    if conversation is not None:
        if isinstance(conversation, dict):
            for key in conversation:
                if key != "id":
                    raise errors.unknown_parameter(f"conversation.{key}")
            if "id" not in conversation:
                raise errors.missing_parameter("conversation.id")
            conversation = conversation["id"]
            if type(conversation) is not str:
                raise errors.invalid_type("conversation.id", ["string"], conversation)
        elif type(conversation) is not str:
            raise errors.invalid_type("conversation", ["string", "object"], conversation)
        request.conversation_id = conversation
    previous = body.get("previous_response_id")
    if previous is not None:
        if request.conversation_id is not None:
            raise errors.InvalidRequest(
                "Mutually exclusive parameters: Ensure you are only providing one of: "
                "'previous_response_id' or 'conversation'.",
                code="mutually_exclusive_parameters",
            )
        request.previous_response_id = _string(body, "previous_response_id")


def _input(value: Any, registry: Registry) -> tuple[list[dict[str, Any] | Reference], int | None]:
    """The input items, and where a ``compaction_trigger`` stood (it is not an item)."""
    if value is None:
        return [], None
    if type(value) is str:
        easy = {"type": "message", "role": "user", "content": value}
        return [registry.prepare(easy, "input")], None
    if type(value) is not list:
        raise errors.invalid_type("input", ["string", "array"], value)
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


def _context_management(body: dict[str, Any], request: ResponseRequest) -> None:
    """``[{"type": "compaction", "compact_threshold": N}]``: compact past N tokens."""
    for index, entry in enumerate(_list(body, "context_management")):
        path = f"context_management[{index}]"
        if type(entry) is not dict:
            raise errors.invalid_type(path, ["object"], entry)
        for key in entry:
            if key not in ("type", "compact_threshold"):
                raise errors.unknown_parameter(f"{path}.{key}")
        if entry.get("type") != "compaction":
            raise errors.invalid_value(f"{path}.type", entry.get("type"), ("compaction",))
        threshold = entry.get("compact_threshold")
        if threshold is not None:
            request.compact_threshold = _integer(entry, "compact_threshold", 1, None)
        elif request.compact_threshold is None:
            request.compact_threshold = 0  # 0: the window decides (compaction.default_threshold)


def _tools(body: dict[str, Any], request: ResponseRequest) -> None:
    names: list[str] = []
    for index, tool in enumerate(_list(body, "tools")):
        path = f"tools[{index}]"
        if type(tool) is not dict:
            raise errors.invalid_type(path, ["object"], tool)
        kind = tool.get("type")
        if kind is None:
            raise errors.missing_parameter(f"{path}.type")
        if kind != "function":
            raise errors.unsupported_parameter(
                f"{path}.type",
                f"'{kind}' is not supported by this server: only function tools can be given "
                "to a Chat Completions model server.",
            )
        if "name" not in tool:
            raise errors.missing_parameter(f"{path}.name")
        for key in tool:
            if key not in TOOL_KEYS:
                raise errors.unknown_parameter(f"{path}.{key}")
        _string(tool, "name", f"{path}.")
        _optional_string(tool, "description", f"{path}.")
        for key in ("parameters", "output_schema"):
            if tool.get(key) is not None and type(tool[key]) is not dict:
                raise errors.invalid_type(f"{path}.{key}", ["object"], tool[key])
        _flag(tool, "strict", False, f"{path}.")
        if _flag(tool, "defer_loading", False, f"{path}."):
            raise errors.unsupported_parameter(
                f"{path}.defer_loading", "is not supported by this server: there is no tool search."
            )
        if tool.get("output_schema") is not None:
            raise errors.unsupported_parameter(
                f"{path}.output_schema", "is not supported by this server."
            )
        if "programmatic" in _strings(tool, "allowed_callers", f"{path}."):
            raise errors.unsupported_parameter(
                f"{path}.allowed_callers", "'programmatic' is not supported by this server."
            )
        names.append(tool["name"])
        request.tools.append(tool)
    choice = body.get("tool_choice")
    if choice is not None:
        request.tool_choice = choice
        if isinstance(choice, str):
            if choice not in TOOL_CHOICES:
                raise errors.invalid_value("tool_choice", choice, TOOL_CHOICES)
        elif isinstance(choice, dict):
            _tool_choice(choice, names, request)
        else:
            raise errors.invalid_type("tool_choice", ["string", "object"], choice)
    request.parallel_tool_calls = _flag(body, "parallel_tool_calls", True)
    calls = body.get("max_tool_calls")
    if calls is not None:
        request.max_tool_calls = _integer(body, "max_tool_calls", 1, None)


def _tool_choice(choice: dict[str, Any], names: list[str], request: ResponseRequest) -> None:
    kind = choice.get("type")
    if kind == "function":
        name = _string(choice, "name", "tool_choice.")
        if name not in names:
            raise errors.InvalidRequest(
                f"Tool choice '{name}' not found in 'tools' parameter.", param="tool_choice"
            )
    elif kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise errors.invalid_value("tool_choice.mode", mode, ("auto", "required"))
        allowed: set[str] = set()
        for index, entry in enumerate(_list(choice, "tools", "tool_choice.")):
            if type(entry) is not dict or entry.get("type") != "function":
                raise errors.unsupported_parameter(
                    f"tool_choice.tools[{index}]",
                    "is not supported by this server: only function tools can be allowed.",
                )
            allowed.add(_string(entry, "name", f"tool_choice.tools[{index}]."))
        request.allowed_tools = frozenset(allowed)
    else:
        raise errors.unsupported_parameter(
            "tool_choice",
            f"of type '{kind}' is not supported by this server: use 'none', 'auto', "
            "'required', a function or allowed_tools.",
        )


def _sampling(body: dict[str, Any], request: ResponseRequest) -> None:
    request.temperature = _number(body, "temperature", 0, 2)
    request.top_p = _number(body, "top_p", 0, 1)
    if body.get("max_output_tokens") is not None:
        request.max_output_tokens = _integer(body, "max_output_tokens", MIN_OUTPUT_TOKENS, None)
    if body.get("top_logprobs") is not None:
        request.top_logprobs = _integer(body, "top_logprobs", 0, TOP_LOGPROBS_MAX)


def _text(body: dict[str, Any], request: ResponseRequest) -> None:
    text = body.get("text")
    if text is None:
        return
    if type(text) is not dict:
        raise errors.invalid_type("text", ["object"], text)
    for key in text:
        if key not in ("format", "verbosity"):
            raise errors.unknown_parameter(f"text.{key}")
    echo: dict[str, Any] = {"format": {"type": "text"}}
    form = text.get("format")
    if form is not None:
        if type(form) is not dict:
            raise errors.invalid_type("text.format", ["object"], form)
        kind = form.get("type")
        if not isinstance(kind, str) or kind not in FORMAT_KEYS:
            raise errors.invalid_value("text.format.type", kind, tuple(FORMAT_KEYS))
        for key in form:
            if key not in FORMAT_KEYS[kind]:
                raise errors.unknown_parameter(f"text.format.{key}")
        if kind == "json_schema":
            for key in ("name", "schema"):
                if key not in form:
                    raise errors.missing_parameter(f"text.format.{key}")
            _string(form, "name", "text.format.")
            if type(form["schema"]) is not dict:
                raise errors.invalid_type("text.format.schema", ["object"], form["schema"])
            _optional_string(form, "description", "text.format.")
            _flag(form, "strict", False, "text.format.")
        echo["format"] = form
    verbosity = text.get("verbosity")
    if verbosity is not None:
        if verbosity not in VERBOSITIES:
            raise errors.invalid_value("text.verbosity", verbosity, VERBOSITIES)
        echo["verbosity"] = verbosity
    request.text = echo


def _reasoning(body: dict[str, Any], request: ResponseRequest) -> None:
    reasoning = body.get("reasoning")
    if reasoning is None:
        return
    if type(reasoning) is not dict:
        raise errors.invalid_type("reasoning", ["object"], reasoning)
    for key in reasoning:
        if key not in ("effort", "summary", "generate_summary", "context", "mode"):
            raise errors.unknown_parameter(f"reasoning.{key}")
    effort = reasoning.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise errors.invalid_value("reasoning.effort", effort, EFFORTS)
    request.effort = effort
    for key in ("summary", "generate_summary"):
        summary = reasoning.get(key)
        if summary is not None:
            if summary not in SUMMARIES:
                raise errors.invalid_value(f"reasoning.{key}", summary, SUMMARIES)
            request.summary = summary
    context = reasoning.get("context")
    if context is not None:
        if context not in CONTEXTS:
            raise errors.invalid_value("reasoning.context", context, CONTEXTS)
        request.reasoning_context = context
    mode = reasoning.get("mode")
    if mode is not None and mode != "standard":
        raise errors.unsupported_parameter(
            "reasoning.mode", f"'{mode}' is not supported by this server."
        )


# -- field helpers ----------------------------------------------------------------------------


def _string(body: dict[str, Any], key: str, prefix: str = "") -> str:
    value = body.get(key)
    if type(value) is not str:
        if key not in body:
            raise errors.missing_parameter(prefix + key)
        raise errors.invalid_type(prefix + key, ["string"], value)
    return value


def _optional_string(body: dict[str, Any], key: str, prefix: str = "") -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise errors.invalid_type(prefix + key, ["string"], value)
    return value


def _flag(body: dict[str, Any], key: str, default: bool, prefix: str = "") -> bool:
    value = body.get(key)
    if value is None:
        return default
    if type(value) is not bool:
        raise errors.invalid_type(prefix + key, ["boolean"], value)
    return value


def _list(body: dict[str, Any], key: str, prefix: str = "") -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if type(value) is not list:
        raise errors.invalid_type(prefix + key, ["array"], value)
    return value


def _strings(body: dict[str, Any], key: str, prefix: str = "") -> list[str]:
    """A list of strings (null: none): anything else is a 400, never a TypeError later."""
    values = _list(body, key, prefix)
    for index, value in enumerate(values):
        if type(value) is not str:
            raise errors.invalid_type(f"{prefix}{key}[{index}]", ["string"], value)
    return values


def _number(body: dict[str, Any], key: str, minimum: float, maximum: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if type(value) not in (int, float):
        raise errors.invalid_type(key, ["number"], value)
    if not minimum <= value <= maximum:
        above = value > maximum
        raise errors.InvalidRequest(
            f"Invalid '{key}': decimal {'above maximum' if above else 'below minimum'} value. "
            f"Expected a value {'<=' if above else '>='} {maximum if above else minimum}, "
            f"but got {value} instead.",
            param=key,
            code="decimal_above_max_value" if above else "decimal_below_min_value",
        )
    return float(value)


def _integer(body: dict[str, Any], key: str, minimum: int, maximum: int | None) -> int:
    value = body.get(key)
    if type(value) is not int:
        raise errors.invalid_type(key, ["integer"], value)
    if value < minimum or (maximum is not None and value > maximum):
        raise errors.integer_out_of_range(key, value, minimum=minimum, maximum=maximum)
    return value
