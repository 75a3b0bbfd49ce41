"""The body of ``POST /v1/responses`` as schemas (docs/responses.md), in the style of
``service/bodies.py``.

One declaration serves twice: :data:`SCHEMAS` is compiled once here, by the compiler that
checks the other bodies (``items/compiler.py`` in body mode: a missing key, then an
unknown one, then the values in the order declared below), and ``GET /openapi.json``
publishes it (``api/openapi.py``). The members of ``input`` are validated one by one by the
item registry afterwards (paths ``input[i]…``), as ``items`` are for the Conversations API.

What a schema cannot say stays in ``request.py``: ``model: null`` counts as missing, a
conversation excludes ``previous_response_id``, a ``tool_choice`` names a declared tool,
a ``compaction_trigger`` input is not an item, and the refusals of what this server cannot
honour. A hosted tool (``web_search``, ...) is declared with the shape OpenAI gives it, so
a malformed one gets the usual shape error and a well-formed one is refused by name; the
keys refused whatever their value (``prompt``, ...) are declared as any value.
"""

from __future__ import annotations

from typing import Any

from convostore.items.compiler import Compiler
from convostore.items.registry import load_schemas
from convostore.service import bodies

REF = bodies.REF
MIN_OUTPUT_TOKENS = 16
TOP_LOGPROBS_MAX = 20
TOOL_CHOICES = ("none", "auto", "required")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SUMMARIES = ("auto", "concise", "detailed")
CONTEXTS = ("auto", "current_turn", "all_turns")
VERBOSITIES = ("low", "medium", "high")
TRUNCATIONS = ("auto", "disabled")

# Known to OpenAI, refused by request.py whatever their value (no Chat Completions
# counterpart).
REFUSED = (
    "access_programs",
    "background_options",
    "image",
    "moderation",
    "prompt",
    "prompt_cache_options",
)
# Sent on to the model server's Chat Completions request under the same name.
FORWARDED = (
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
)


def _hosted_tool_types() -> list[str]:
    """OpenAI's tool types other than ``function``, from the spec's ``Tool`` union."""
    packaged = load_schemas()
    compiler = Compiler(packaged)
    found: list[str] = []
    for branch in packaged["Tool"]["oneOf"]:
        found += [v for v in compiler.discriminator_values(branch) if v != "function"]
    return sorted(found)


HOSTED_TOOL_TYPES = _hosted_tool_types()


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _enum(values: tuple[str, ...]) -> dict[str, Any]:
    return _nullable({"type": "string", "enum": list(values)})


_STRING = _nullable({"type": "string"})
_FLAG = _nullable({"type": "boolean"})
_OBJECT = _nullable({"type": "object"})
# A forwarded key with more than a string's rule: D22's limit, as for a conversation.
FORWARDED_SCHEMAS: dict[str, Any] = {"safety_identifier": bodies.SAFETY_IDENTIFIER}
_ANY: dict[str, Any] = {"description": "Refused by this server (docs/responses.md)."}
_HOSTED = {
    "type": "object",
    "description": "A hosted tool of OpenAI: refused by this server (docs/responses.md).",
    "required": ["type"],
    "properties": {"type": {"type": "string", "enum": HOSTED_TOOL_TYPES}},
    "additionalProperties": True,
}
# A function named by its type and name: both a tool_choice and an allowed tool.
_FUNCTION_NAMED = {
    "type": "object",
    "required": ["type", "name"],
    "properties": {
        "type": {"type": "string", "enum": ["function"]},
        "name": {"type": "string"},
    },
    "additionalProperties": True,
}

SCHEMAS: dict[str, Any] = {
    # Properties in the order their values are checked (today's order, OpenAI's for the
    # keys it shares): a body with two faults is answered with the first one here.
    "CreateResponseBody": {
        "type": "object",
        "additionalProperties": False,
        "required": ["model"],
        "properties": {
            "model": {"type": "string"},
            "input": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"$ref": REF + "InputItem"}},
                    {"type": "null"},
                ]
            },
            "conversation": {
                "anyOf": [
                    {"type": "string"},
                    {"$ref": REF + "CreateResponseConversation"},
                    {"type": "null"},
                ]
            },
            "previous_response_id": _STRING,
            **{key: _ANY for key in REFUSED},
            "instructions": _STRING,
            "stream": _FLAG,
            "store": _FLAG,
            "background": _FLAG,
            "metadata": _nullable({"$ref": REF + "Metadata"}),
            "tools": _nullable({"type": "array", "items": {"$ref": REF + "CreateResponseTool"}}),
            "tool_choice": {
                "anyOf": [
                    {"type": "string", "enum": list(TOOL_CHOICES)},
                    {"$ref": REF + "CreateResponseToolChoice"},
                    {"type": "null"},
                ]
            },
            "parallel_tool_calls": _FLAG,
            "max_tool_calls": _nullable({"type": "integer", "minimum": 1}),
            "temperature": _nullable({"type": "number", "minimum": 0, "maximum": 2}),
            "top_p": _nullable({"type": "number", "minimum": 0, "maximum": 1}),
            "max_output_tokens": _nullable({"type": "integer", "minimum": MIN_OUTPUT_TOKENS}),
            "top_logprobs": _nullable(
                {"type": "integer", "minimum": 0, "maximum": TOP_LOGPROBS_MAX}
            ),
            "text": _nullable({"$ref": REF + "CreateResponseText"}),
            "reasoning": _nullable({"$ref": REF + "CreateResponseReasoning"}),
            "include": _nullable({"type": "array", "items": {"type": "string"}}),
            "truncation": _enum(TRUNCATIONS),
            "context_management": _nullable(
                {"type": "array", "items": {"$ref": REF + "CreateResponseContextManagement"}}
            ),
            "stream_options": _nullable(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"include_obfuscation": _FLAG},
                }
            ),
            **{key: FORWARDED_SCHEMAS.get(key, _STRING) for key in FORWARDED},
        },
    },
    "CreateResponseConversation": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id"],
        "properties": {"id": {"type": "string"}},
    },
    "CreateResponseContextManagement": {
        "type": "object",
        "additionalProperties": False,
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": ["compaction"]},
            "compact_threshold": _nullable({"type": "integer", "minimum": 1}),
        },
    },
    "CreateResponseTool": {
        "oneOf": [
            {"$ref": REF + "CreateResponseFunctionTool"},
            {"$ref": REF + "CreateResponseHostedTool"},
        ],
        "discriminator": {"propertyName": "type"},
    },
    "CreateResponseFunctionTool": {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "name"],
        "properties": {
            "type": {"type": "string", "enum": ["function"]},
            "name": {"type": "string"},
            "description": _STRING,
            "parameters": _OBJECT,
            "output_schema": _OBJECT,
            "strict": _FLAG,
            "defer_loading": _FLAG,
            "allowed_callers": _nullable({"type": "array", "items": {"type": "string"}}),
        },
    },
    "CreateResponseHostedTool": _HOSTED,
    # Keys other than those named are ignored, as before the schema.
    "CreateResponseToolChoice": {
        "oneOf": [
            _FUNCTION_NAMED,
            {
                "type": "object",
                "required": ["type", "mode"],
                "properties": {
                    "type": {"type": "string", "enum": ["allowed_tools"]},
                    "mode": {"type": "string", "enum": ["auto", "required"]},
                    "tools": _nullable(
                        {"type": "array", "items": {"$ref": REF + "CreateResponseAllowedTool"}}
                    ),
                },
                "additionalProperties": True,
            },
            _HOSTED,
        ],
    },
    "CreateResponseAllowedTool": {
        "oneOf": [
            _FUNCTION_NAMED,
            _HOSTED,
        ],
    },
    "CreateResponseText": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "format": _nullable(
                {
                    "oneOf": [
                        {"$ref": REF + "CreateResponseFormatText"},
                        {"$ref": REF + "CreateResponseFormatJsonSchema"},
                        {"$ref": REF + "CreateResponseFormatJsonObject"},
                    ],
                    "discriminator": {"propertyName": "type"},
                }
            ),
            "verbosity": _enum(VERBOSITIES),
        },
    },
    "CreateResponseFormatText": {
        "type": "object",
        "additionalProperties": False,
        "required": ["type"],
        "properties": {"type": {"type": "string", "enum": ["text"]}},
    },
    "CreateResponseFormatJsonSchema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "name", "schema"],
        "properties": {
            "type": {"type": "string", "enum": ["json_schema"]},
            "name": {"type": "string"},
            "schema": {"type": "object"},
            "description": _STRING,
            "strict": _FLAG,
        },
    },
    "CreateResponseFormatJsonObject": {
        "type": "object",
        "additionalProperties": False,
        "required": ["type"],
        "properties": {"type": {"type": "string", "enum": ["json_object"]}},
    },
    "CreateResponseReasoning": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "effort": _enum(EFFORTS),
            "summary": _enum(SUMMARIES),
            "generate_summary": _enum(SUMMARIES),
            "context": _enum(CONTEXTS),
            "mode": _STRING,
        },
    },
}

# POST /v1/responses/compact (issue 18): OpenAI's keys for a compaction (the SDK's
# ``responses.compact``) plus the ``conversation`` extension, each declared as for a
# response and checked in the same order; request.py then reads it as a response's body.
COMPACT_KEYS = frozenset(
    (
        "model",
        "input",
        "instructions",
        "previous_response_id",
        "conversation",
        "image",
        "prompt_cache_options",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "service_tier",
    )
)
_CREATE = SCHEMAS["CreateResponseBody"]
SCHEMAS["CompactResponseBody"] = {
    **_CREATE,
    "properties": {k: v for k, v in _CREATE["properties"].items() if k in COMPACT_KEYS},
}

_COMPILED = bodies.compile_bodies(SCHEMAS)
CREATE_RESPONSE = bodies.Body("CreateResponseBody", _COMPILED["CreateResponseBody"])
COMPACT_RESPONSE = bodies.Body("CompactResponseBody", _COMPILED["CompactResponseBody"])
KNOWN = frozenset(SCHEMAS["CreateResponseBody"]["properties"])
TOOL_KEYS = frozenset(SCHEMAS["CreateResponseFunctionTool"]["properties"])
