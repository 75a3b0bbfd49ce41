"""Issue 16: the body of POST /v1/responses is one declaration (service/responses/body.py),
compiled by the body compiler and published in /openapi.json; request.py keeps only the
rules a schema cannot state. The wording is OpenAI's (CONTRACT.md §6 templates)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from convostore import errors
from convostore.api import openapi
from convostore.api.app import build_router
from convostore.items.registry import Registry
from convostore.service import bodies as body_schemas
from convostore.service.responses import body as response_body
from convostore.service.responses import request
from tests.responses.test_request_fuzz import bodies

REGISTRY = Registry()
FUNCTION = {"type": "function", "name": "f", "parameters": {"type": "object"}}


def refused(body: dict[str, Any]) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        request.parse(body, REGISTRY)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize(
    ("extra", "param", "code", "message"),
    [
        ({"model": None}, "model", "missing_required_parameter", None),
        (
            {"model": 5},
            "model",
            "invalid_type",
            "Invalid type for 'model': expected a string, but got an integer instead.",
        ),
        (
            {"top_p": -0.5},
            "top_p",
            "decimal_below_min_value",
            "Invalid 'top_p': decimal below minimum value. Expected a value >= 0, "
            "but got -0.5 instead.",
        ),
        (
            {"temperature": True},
            "temperature",
            "invalid_type",
            "Invalid type for 'temperature': expected a number, but got a boolean instead.",
        ),
        (
            {"top_logprobs": 21},
            "top_logprobs",
            "integer_above_max_value",
            "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, "
            "but got 21 instead.",
        ),
        (
            {"input": 5},
            "input",
            "invalid_type",
            "Invalid type for 'input': expected one of a string or an array, "
            "but got an integer instead.",
        ),
        (
            {"text": {"format": {"type": "bogus"}}},
            "text.format.type",
            "invalid_value",
            "Invalid value: 'bogus'. Supported values are: 'json_object', 'json_schema', "
            "and 'text'.",
        ),
        ({"text": {"format": {}}}, "text.format.type", "missing_required_parameter", None),
        (
            {"text": {"format": {"type": "text", "name": "x"}}},
            "text.format.name",
            "unknown_parameter",
            None,
        ),
        ({"tools": [{"type": "function"}]}, "tools[0].name", "missing_required_parameter", None),
        ({"tools": [{**FUNCTION, "x": 1}]}, "tools[0].x", "unknown_parameter", None),
        ({"tools": [{**FUNCTION, "parameters": []}]}, "tools[0].parameters", "invalid_type", None),
        ({"tools": [{"type": "bogus", "name": "f"}]}, "tools[0].type", "invalid_value", None),
        (
            {"tools": [{"type": "web_search", "x": 1}]},
            "tools[0].type",
            "unsupported_parameter",
            None,
        ),
        (
            {"tools": [{**FUNCTION, "defer_loading": True}]},
            "tools[0].defer_loading",
            "unsupported_parameter",
            None,
        ),
        ({"tool_choice": "sometimes"}, "tool_choice", "invalid_value", None),
        ({"tool_choice": 5}, "tool_choice", "invalid_type", None),
        ({"tool_choice": {"name": "f"}}, "tool_choice.type", "missing_required_parameter", None),
        (
            {"tool_choice": {"type": "allowed_tools", "tools": []}},
            "tool_choice.mode",
            "missing_required_parameter",
            None,
        ),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice", "unsupported_parameter", None),
        (
            {"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "mcp"}]}},
            "tool_choice.tools[0]",
            "unsupported_parameter",
            None,
        ),
        ({"conversation": {"x": 1}}, "conversation.id", "missing_required_parameter", None),
        ({"conversation": {"id": "conv_1", "x": 1}}, "conversation.x", "unknown_parameter", None),
        ({"conversation": 5}, "conversation", "invalid_type", None),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort", "invalid_value", None),
        ({"reasoning": {"mode": "pro"}}, "reasoning.mode", "unsupported_parameter", None),
        ({"stream_options": {"x": True}}, "stream_options.x", "unknown_parameter", None),
        ({"metadata": {"k": 5}}, "metadata.k", "invalid_type", None),
        ({"truncation": "sometimes"}, "truncation", "invalid_value", None),
        ({"context_management": {}}, "context_management", "invalid_type", None),
        (
            {"context_management": [{"type": "x"}]},
            "context_management[0].type",
            "invalid_value",
            None,
        ),
        (
            {"context_management": [{"type": "compaction", "compact_threshold": "big"}]},
            "context_management[0].compact_threshold",
            "invalid_type",
            None,
        ),
        (
            {"context_management": [{"type": "compaction", "compact_threshold": 0}]},
            "context_management[0].compact_threshold",
            "integer_below_min_value",
            None,
        ),
        ({"prompt": {"id": "pmpt_1"}}, "prompt", "unsupported_parameter", None),
        ({"background": True, "store": False}, "store", None, None),
    ],
)
def test_one_fault(
    extra: dict[str, Any], param: str, code: str | None, message: str | None
) -> None:
    error = refused({"model": "m", "input": "hi", **extra})
    assert (error.param, error.code) == (param, code)
    if message is not None:
        assert error.message == message


def test_the_first_fault_is_the_first_in_openai_order_whatever_the_key_order() -> None:
    """Missing, then unknown, then values in declared order; refusals after the shape."""
    assert refused({"top_p": "x", "temperature": "y", "model": "m"}).param == "temperature"
    assert refused({"temperature": "y", "model": "m", "zzz": 1}).param == "zzz"
    assert refused({"zzz": 1, "temperature": "y"}).param == "model"
    assert refused({"model": "m", "prompt": {"id": "p"}, "user": 5}).param == "user"
    tools = [{"type": "web_search"}, {"type": "function"}]
    assert refused({"model": "m", "tools": tools}).param == "tools[1].name"


def outcome(body: dict[str, Any]) -> tuple[str | None, str | None] | None:
    try:
        response_body.CREATE_RESPONSE.check(body)
    except errors.ApiError as error:
        return (error.param, error.code)
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(bodies)
def test_the_answer_does_not_depend_on_the_order_of_the_keys(body: dict[str, Any]) -> None:
    """The compiled check takes one pass over a valid body and looks for the first problem
    in declared order otherwise: the same body with its keys reversed gets the same answer."""
    assert outcome(body) == outcome(dict(reversed(body.items())))


def test_truncation_and_context_management_are_carried() -> None:
    """Their shapes are the schema's; their values reach the request (issue 18's work)."""
    compaction = {"type": "compaction", "compact_threshold": 1000}
    parsed = request.parse(
        {"model": "m", "truncation": "auto", "context_management": [compaction]}, REGISTRY
    )
    assert (parsed.truncation, parsed.compact_threshold) == ("auto", 1000)
    parsed = request.parse({"model": "m", "context_management": [{"type": "compaction"}]}, REGISTRY)
    assert parsed.compact_threshold == 0  # the window decides
    trigger = [{"type": "compaction_trigger"}, {"role": "user", "content": "go on"}]
    parsed = request.parse({"model": "m", "input": trigger}, REGISTRY)
    assert (parsed.compact_at, len(parsed.input)) == (0, 1)


def test_the_request_carries_the_values() -> None:
    body = {
        "model": "m",
        "input": [{"role": "user", "content": "hi"}],
        "conversation": {"id": "conv_1"},
        "instructions": "Be brief.",
        "stream": True,
        "metadata": {"k": "v"},
        "tools": [FUNCTION],
        "tool_choice": {
            "type": "allowed_tools",
            "mode": "auto",
            "tools": [{"type": "function", "name": "f"}],
        },
        "parallel_tool_calls": False,
        "max_tool_calls": 3,
        "temperature": 1,
        "top_p": None,
        "max_output_tokens": 64,
        "top_logprobs": 2,
        "text": {"verbosity": "low"},
        "reasoning": {"effort": "low", "generate_summary": "concise", "context": "all_turns"},
        "include": ["message.output_text.logprobs"],
        "truncation": "disabled",
        "context_management": [],
        "stream_options": {"include_obfuscation": True},
        "user": "u1",
        "service_tier": None,
    }
    parsed = request.parse(body, REGISTRY)
    assert parsed.conversation_id == "conv_1" and parsed.previous_response_id is None
    assert (parsed.instructions, parsed.stream, parsed.store, parsed.background) == (
        "Be brief.", True, True, False,
    )  # fmt: skip
    assert parsed.metadata == {"k": "v"} and parsed.tools == [FUNCTION]
    assert parsed.allowed_tools == frozenset({"f"}) and parsed.parallel_tool_calls is False
    assert (parsed.max_tool_calls, parsed.max_output_tokens, parsed.top_logprobs) == (3, 64, 2)
    assert parsed.temperature == 1.0 and type(parsed.temperature) is float
    assert parsed.top_p is None
    assert parsed.text == {"format": {"type": "text"}, "verbosity": "low"}
    assert (parsed.effort, parsed.summary, parsed.reasoning_context) == (
        "low",
        "concise",
        "all_turns",
    )
    assert parsed.logprobs and parsed.obfuscate
    assert (parsed.truncation, parsed.compact_threshold, parsed.compact_at) == (
        "disabled",
        None,
        None,
    )
    assert parsed.forwarded == {"user": "u1"}
    assert len(parsed.input) == 1


def test_the_published_body_is_the_checked_body() -> None:
    document = openapi.build(build_router())
    operation = document["paths"]["/v1/responses"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateResponseBody"
    }
    published = document["components"]["schemas"]
    for name, schema in response_body.SCHEMAS.items():  # the document adds mappings only
        assert without_mappings(published[name]) == without_mappings(schema), name
    assert set(published["CreateResponseBody"]["properties"]) == request.KNOWN


def without_mappings(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_mappings(v) for k, v in node.items() if k != "mapping"}
    if isinstance(node, list):
        return [without_mappings(v) for v in node]
    return node


def refused_compaction(body: dict[str, Any]) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        request.parse(body, REGISTRY, response_body.COMPACT_RESPONSE)
    assert caught.value.status == 400
    return caught.value


def test_a_compaction_body_has_its_own_keys_in_openai_order() -> None:
    """POST /v1/responses/compact: a response's key outside OpenAI's compaction is unknown;
    missing, then unknown, then type, whatever the order of the keys."""
    error = refused_compaction({"model": "m", "input": "hi", "temperature": 1})
    assert (error.param, error.code) == ("temperature", "unknown_parameter")
    error = refused_compaction({"model": "m", "instructions": 5})
    assert (error.param, error.code) == ("instructions", "invalid_type")
    assert error.message == (
        "Invalid type for 'instructions': expected a string, but got an integer instead."
    )
    assert refused_compaction({"instructions": 5, "stream": True}).param == "model"
    assert refused_compaction({"instructions": 5, "model": "m", "stream": True}).param == "stream"
    assert refused_compaction({"model": None, "zzz": 1}).code == "missing_required_parameter"
    # known to OpenAI's compaction, refused by name as for a response
    error = refused_compaction({"model": "m", "prompt_cache_options": {"mode": "implicit"}})
    assert (error.param, error.code) == ("prompt_cache_options", "unsupported_parameter")
    parsed = request.parse(
        {"model": "m", "input": "hi", "conversation": "conv_1", "service_tier": "auto"},
        REGISTRY,
        response_body.COMPACT_RESPONSE,
    )
    assert parsed.conversation_id == "conv_1" and parsed.forwarded == {"service_tier": "auto"}


def test_the_published_compaction_body_is_the_checked_body() -> None:
    document = openapi.build(build_router())
    operation = document["paths"]["/v1/responses/compact"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CompactResponseBody"
    }
    published = document["components"]["schemas"]["CompactResponseBody"]
    assert without_mappings(published) == without_mappings(
        response_body.SCHEMAS["CompactResponseBody"]
    )
    assert set(published["properties"]) == response_body.COMPACT_KEYS


@pytest.mark.parametrize("shape", [response_body.CREATE_RESPONSE, response_body.COMPACT_RESPONSE])
def test_safety_identifier_has_the_conversations_limit(shape: Any) -> None:
    """D22: at most 64 characters, one declaration for conversations and responses."""
    assert request.parse(
        {"model": "m", "safety_identifier": "s" * 64}, REGISTRY, shape
    ).forwarded == {"safety_identifier": "s" * 64}
    with pytest.raises(errors.ApiError) as caught:
        request.parse({"model": "m", "safety_identifier": "s" * 65}, REGISTRY, shape)
    error = caught.value
    assert (error.status, error.param, error.code) == (
        400,
        "safety_identifier",
        "string_above_max_length",
    )
    assert error.message == (
        "Invalid 'safety_identifier': string too long. Expected a string with maximum length 64, "
        "but got a string with length 65 instead."
    )
    schemas = response_body.SCHEMAS["CreateResponseBody"]["properties"]
    conversation = body_schemas.SCHEMAS["CreateConversationBody"]["properties"]
    assert schemas["safety_identifier"] is conversation["safety_identifier"]
