"""The Chat Completions request for a turn: messages, tools and sampling parameters.

Every parameter of the Responses request that the model server can honour is mapped here
(docs/responses.md, "Parameters"); :mod:`request` has already refused the rest.
"""

from __future__ import annotations

from typing import Any

from convostore.service.responses.request import ResponseRequest


def body(
    request: ResponseRequest, messages: list[dict[str, Any]], model: str, *, stream: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "messages": messages}
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    tools = [
        tool
        for tool in request.tools
        if request.allowed_tools is None or tool["name"] in request.allowed_tools
    ]
    if tools:
        out["tools"] = [_function(tool) for tool in tools]
        out["tool_choice"] = _tool_choice(request.tool_choice)
        out["parallel_tool_calls"] = request.parallel_tool_calls
    if request.temperature is not None:
        out["temperature"] = request.temperature
    if request.top_p is not None:
        out["top_p"] = request.top_p
    if request.max_output_tokens is not None:
        out["max_tokens"] = request.max_output_tokens
    form = request.text.get("format") or {}
    if form.get("type") == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif form.get("type") == "json_schema":
        schema = {"name": form["name"], "schema": form["schema"]}
        for key in ("description", "strict"):
            if form.get(key) is not None:
                schema[key] = form[key]
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    if "verbosity" in request.text:
        out["verbosity"] = request.text["verbosity"]
    if request.logprobs:
        out["logprobs"] = True
        if request.top_logprobs:
            out["top_logprobs"] = request.top_logprobs
    if request.effort is not None:
        out["reasoning_effort"] = request.effort
    out.update(request.forwarded)
    return out


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description") is not None:
        function["description"] = tool["description"]
    if tool.get("parameters") is not None:
        function["parameters"] = tool["parameters"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any]) -> Any:
    if isinstance(choice, str):
        return choice
    if choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice["name"]}}
    return choice.get("mode", "auto")  # allowed_tools: the tools list is already narrowed
