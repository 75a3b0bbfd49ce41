"""Table-driven item payloads for the create-items and create-conversation tests.

Pure data, no tests. Everything here is what a client would put in the ``items`` array
of ``POST /v1/conversations`` or ``POST /v1/conversations/{id}/items``.

- :data:`VALID`: one or more accepted payloads for every ``type`` of the spec's
  ``InputItem`` union except ``item_reference`` (see :data:`ITEM_REFERENCE_NOTE`).
  :data:`INPUT_SCHEMA` names the spec schema each one was written against.
- :data:`INVALID`: one bad item each, sent alone at ``items[0]``, with the expected
  ``param`` and ``code`` of the 400 answer (CONTRACT.md §6 templates, D9, D20, §4.1).
- :data:`INCLUDE_FIELDS`: for each ``include`` value (CONTRACT.md §5, D10), the VALID
  case that carries the gated field and where it sits in the returned item.
- :data:`SERVER_FILLS`: what the returned item must carry that the input did not have to.

Item ids that are present follow CONTRACT.md §3 (prefix + ``_`` + 48 lowercase hex) and
D20, and no id appears twice in VALID, so all of VALID can be posted to one conversation
(in batches of at most 20, D14/§2) without tripping D21.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Payload = dict[str, Any]

# Call ids shared by a call and its output, as a model would produce them.
_CALL_WEATHER = "call_Cnb9S9YXDG0MtTaQinO3fGHr"
_CALL_COMPUTER = "call_bxJXbtqeKjxc3WZKhAgv5PW8"
_CALL_SHELL = "call_Jo5gdxLUCyJJ7MhVjOUNeat9"
_CALL_PATCH = "call_if9StPYvRcHrW1MU3jC4BcC8"
_CALL_CUSTOM = "call_xzyGI9IGWY1Tl0adkKYZAWEJ"
_CALL_LOCAL_SHELL = "call_k4HS4SiJWuJbAYHyuQZbcqvo"
_CALL_TOOL_SEARCH = "call_ozage9JYBvjzQJGkuBRHrFhi"
_CALL_PROGRAM = "call_5hEoZk5g21zuO80B1E8RrrzB"

_WEATHER_ARGS = '{"city":"Paris","unit":"celsius"}'
_WEATHER_RESULT = '{"city":"Paris","temperature":18,"unit":"celsius","conditions":"sunny"}'

# A 1x1 PNG, small enough for any body cap.
_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9Q"
    "DwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
_PNG_DATA_URL = "data:image/png;base64," + _PNG_B64
_PDF_DATA_URL = (
    "data:application/pdf;base64,"
    "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8PC9Sb290IDEgMCBSPj4KJSVFT0YK"
)

# Opaque blobs of the kind OpenAI hands out (Fernet-like tokens).
_REASONING_BLOB = (
    "gAAAAABpQ3xW1b8cVZ0yJk2mP4tX9rL6nD0sA7hE5gT2qY8uW3oI1vB6zC4xN9jM0kR7fH2lS5dG8pU3yE1wQ6tZ"
    "9aV4bX7cF0gK2hJ5mN8rP1sT4uW7yA0dG3jL6oR9uX2zC5fI8lO1rU4xA7dG0jM3pS6vY9bE2hK5nQ8tW1zC4fI7l"
)
_COMPACTION_BLOB = (
    "gAAAAABpQ3yA7mK2vX9pL4tR1sW8nD5qB0cF3hJ6kM9oP2rU5wY8zA1dG4iL7nQ0tV3xA6cE9gJ2lN5pS8uX1zB4e"
)

_WEATHER_TOOL: Payload = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
    "strict": True,
}

_FORECAST_TOOL: Payload = {
    "type": "function",
    "name": "get_forecast",
    "description": "Daily forecast for the next few days.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
        "additionalProperties": False,
    },
    "strict": True,
}


# --- accepted payloads -------------------------------------------------------------------

VALID: list[tuple[str, Payload]] = [
    # Easy messages with string content, one per role (D5).
    (
        "easy_user_string",
        {"type": "message", "role": "user", "content": "What's the weather like in Paris today?"},
    ),
    (
        "easy_assistant_string",
        {"type": "message", "role": "assistant", "content": "It is 18°C and sunny in Paris."},
    ),
    (
        "easy_system_string",
        {"type": "message", "role": "system", "content": "You are a concise travel assistant."},
    ),
    (
        "easy_developer_string",
        {
            "type": "message",
            "role": "developer",
            "content": "Answer in metric units unless the user asks otherwise.",
        },
    ),
    # `type` left out: stored as a message all the same (D5, §4.1).
    ("easy_without_type", {"role": "user", "content": "And tomorrow?"}),
    # Easy assistant message in the commentary phase.
    (
        "easy_assistant_phase",
        {
            "type": "message",
            "role": "assistant",
            "content": "Let me check the forecast service.",
            "phase": "commentary",
        },
    ),
    # Input message with a content list: text, an image by URL, a file by data.
    (
        "input_message_content_list",
        {
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [
                {"type": "input_text", "text": "Does this receipt match the attached invoice?"},
                {
                    "type": "input_image",
                    "image_url": "https://images.example.com/receipts/2026-03-18-lunch.jpg",
                    "detail": "high",
                },
                {
                    "type": "input_file",
                    "filename": "invoice-2026-0318.pdf",
                    "file_data": _PDF_DATA_URL,
                },
            ],
        },
    ),
    (
        "input_message_developer_list",
        {
            "type": "message",
            "role": "developer",
            "content": [
                {"type": "input_text", "text": "Policy document for expense checks:"},
                {"type": "input_file", "file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"},
                {"type": "input_image", "file_id": "file-Qm3Lr8sTzX1bNc4VdPe7Hy", "detail": "low"},
            ],
        },
    ),
    # A user message read back from a list and sent again with its id (D6, D20, D21).
    # Neither EasyInputMessage nor InputMessage declares `id` (see UNDECLARED_KEYS).
    (
        "input_message_with_id",
        {
            "id": "msg_32c3cd8ccfcef11bbad05cc834ad35abcaed5425a06a6ab0",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_text", "text": "Book the 9:40 train to Lyon, please."}],
        },
    ),
    # A full assistant output message as /v1/responses returns it.
    (
        "output_message_full",
        {
            "id": "msg_c871b9b47f8bda7c47f00d571fe82b0106e373c136cd46a4",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "phase": "final_answer",
            "content": [
                {
                    "type": "output_text",
                    "text": "Paris is sunny at 18°C today, per Météo-France and your travel notes.",
                    "annotations": [
                        {
                            "type": "url_citation",
                            "url": "https://meteofrance.com/previsions-meteo-france/paris/75000",
                            "title": "Prévisions météo Paris - Météo-France",
                            "start_index": 36,
                            "end_index": 48,
                        },
                        {
                            "type": "file_citation",
                            "file_id": "file-2xLpQ9mWc7RkTn3VbHs8Ad",
                            "filename": "travel-notes.md",
                            "index": 68,
                        },
                    ],
                    "logprobs": [
                        {
                            "token": "Paris",
                            "logprob": -0.0012,
                            "bytes": [80, 97, 114, 105, 115],
                            "top_logprobs": [
                                {
                                    "token": "Paris",
                                    "logprob": -0.0012,
                                    "bytes": [80, 97, 114, 105, 115],
                                },
                                {"token": "The", "logprob": -6.91, "bytes": [84, 104, 101]},
                            ],
                        },
                        {
                            "token": " is",
                            "logprob": -0.0448,
                            "bytes": [32, 105, 115],
                            "top_logprobs": [
                                {"token": " is", "logprob": -0.0448, "bytes": [32, 105, 115]},
                            ],
                        },
                    ],
                }
            ],
        },
    ),
    (
        "output_message_refusal",
        {
            "id": "msg_4359ded12bdda46f254ce7585a034d8eac7bc12baece02fe",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "refusal", "refusal": "I can't help with bypassing the paywall."}],
        },
    ),
    # The agents SDK's way (D18): no id, no status, output_text without annotations and
    # logprobs. Not valid against any spec input schema (see NOT_SPEC_VALID).
    (
        "agents_sdk_assistant_message",
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Your train to Lyon leaves at 9:40."}],
        },
    ),
    (
        "function_call",
        {
            "id": "fc_6f725fbb2d8433e36f1ceccdf348f2868a75c8858826667f",
            "type": "function_call",
            "call_id": _CALL_WEATHER,
            "name": "get_weather",
            "arguments": _WEATHER_ARGS,
            "status": "completed",
        },
    ),
    # The agents SDK strips ids from function calls before saving (D18).
    (
        "function_call_without_id",
        {
            "type": "function_call",
            "call_id": "call_Hq2wX8vLr5TnK3pYc7MzB1dA",
            "name": "get_forecast",
            "arguments": '{"city":"Paris","days":3}',
        },
    ),
    (
        "function_call_output",
        {
            "type": "function_call_output",
            "call_id": _CALL_WEATHER,
            "output": _WEATHER_RESULT,
        },
    ),
    # `fco_` passes D20's `fc` prefix check.
    (
        "function_call_output_parts",
        {
            "id": "fco_d39704bc18bfb124968c18a6a9e170acdd23c5ff1862415d",
            "type": "function_call_output",
            "call_id": "call_Hq2wX8vLr5TnK3pYc7MzB1dA",
            "output": [
                {"type": "input_text", "text": "3-day forecast chart for Paris:"},
                {"type": "input_image", "image_url": _PNG_DATA_URL},
            ],
            "status": "completed",
        },
    ),
    (
        "file_search_call",
        {
            "id": "fs_4c8f9528a1ab32b150972636a65e57170d231bdc1810e105",
            "type": "file_search_call",
            "status": "completed",
            "queries": ["expense policy meal limit", "per diem Paris"],
            "results": [
                {
                    "file_id": "file-6F2ksmvXxt4VdoqmHRw6kL",
                    "filename": "expense-policy-2026.pdf",
                    "score": 0.8731,
                    "text": "Business meals are reimbursed up to 45 EUR per day in Paris.",
                    "attributes": {"department": "finance", "year": 2026, "current": True},
                }
            ],
        },
    ),
    (
        "computer_call",
        {
            "id": "cu_34bbfb926f7aca414a7f97139fc433df6b322d2bb68e8968",
            "type": "computer_call",
            "call_id": _CALL_COMPUTER,
            "action": {"type": "click", "button": "left", "x": 412, "y": 288},
            "pending_safety_checks": [],
            "status": "completed",
        },
    ),
    (
        "computer_call_output",
        {
            "id": "cuo_fc822cd211d1582cc349ee59fa6dbf74444180ea60e3bbc8",
            "type": "computer_call_output",
            "call_id": _CALL_COMPUTER,
            "output": {"type": "computer_screenshot", "image_url": _PNG_DATA_URL},
            "acknowledged_safety_checks": [
                {
                    "id": "cu_sc_4b7f1e9a",
                    "code": "malicious_instructions",
                    "message": "The page asks the agent to ignore its instructions.",
                }
            ],
        },
    ),
    (
        "web_search_call",
        {
            "id": "ws_bfd79242ae7ae7a947b720a8bce643fbb02ba071b2bb6664",
            "type": "web_search_call",
            "status": "completed",
            "action": {
                "type": "search",
                "query": "paris weather today",
                "queries": ["paris weather today", "météo paris aujourd'hui"],
                "sources": [
                    {
                        "type": "url",
                        "url": "https://meteofrance.com/previsions-meteo-france/paris/75000",
                    },
                    {"type": "url", "url": "https://www.bbc.com/weather/2988507"},
                ],
            },
        },
    ),
    (
        "web_search_call_open_page",
        {
            "id": "ws_df3e9e142c116e9705ae10209ab871142a1b7bb8b30874bf",
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "open_page", "url": "https://www.bbc.com/weather/2988507"},
        },
    ),
    # `arguments` is EmptyModelParam, a free-form object in practice (FunctionToolParam's
    # `parameters` uses the same schema for a whole JSON Schema).
    (
        "tool_search_call",
        {
            "type": "tool_search_call",
            "call_id": _CALL_TOOL_SEARCH,
            "execution": "client",
            "arguments": {"query": "weather forecast tools"},
            "status": "completed",
        },
    ),
    (
        "tool_search_output",
        {
            "type": "tool_search_output",
            "call_id": _CALL_TOOL_SEARCH,
            "execution": "client",
            "tools": [_FORECAST_TOOL],
            "status": "completed",
        },
    ),
    (
        "additional_tools",
        {
            "type": "additional_tools",
            "role": "developer",
            "tools": [_WEATHER_TOOL, {"type": "web_search", "search_context_size": "low"}],
        },
    ),
    (
        "reasoning",
        {
            "id": "rs_e20e9a420a58d1443b5aa91c06f39b5ffa39f50c9d59c468",
            "type": "reasoning",
            "summary": [
                {
                    "type": "summary_text",
                    "text": "**Checking the weather**\n\nThe user wants today's Paris weather; "
                    "I should call get_weather with celsius.",
                }
            ],
            "encrypted_content": _REASONING_BLOB,
            "status": "completed",
        },
    ),
    # Reasoning with no id is accepted when it has encrypted_content (§4.1), though the
    # spec's ReasoningItem requires `id` (see NOT_SPEC_VALID).
    (
        "reasoning_without_id",
        {
            "type": "reasoning",
            "summary": [],
            "encrypted_content": _REASONING_BLOB[::-1],
        },
    ),
    ("compaction", {"type": "compaction", "encrypted_content": _COMPACTION_BLOB}),
    (
        "image_generation_call",
        {
            "id": "ig_6d0a829f9fc139dd849dc46a62ad58a7378eb119a8ee798d",
            "type": "image_generation_call",
            "status": "completed",
            "result": _PNG_B64,
        },
    ),
    (
        "code_interpreter_call",
        {
            "id": "ci_c0356de0f01d0967ab6f5d07f2c5772953d06b9901b476ae",
            "type": "code_interpreter_call",
            "status": "completed",
            "container_id": "cntr_6ab66ff7ec6481938f4c8d63a5998cba",
            "code": "import statistics\nprint(statistics.mean([18, 21, 17]))",
            "outputs": [
                {"type": "logs", "logs": "18.666666666666668\n"},
                {
                    "type": "image",
                    "url": "https://files.example.com/containers/cntr_6ab66ff7/chart.png",
                },
            ],
        },
    ),
    (
        "local_shell_call",
        {
            "id": "lsh_b6749b8e2032a7c22ed479d2ef389be488a5d43fb1c55e34",
            "type": "local_shell_call",
            "call_id": _CALL_LOCAL_SHELL,
            "action": {
                "type": "exec",
                "command": ["ls", "-la", "/srv/reports"],
                "timeout_ms": 10000,
                "working_directory": "/srv",
                "env": {"LANG": "C.UTF-8"},
                "user": "reports",
            },
            "status": "completed",
        },
    ),
    # No `call_id`: the spec lists it as required but never declares it (spec quirk).
    (
        "local_shell_call_output",
        {
            "id": "lsho_0590bbc31bb9fc397b5334e79a2a430c5866dd4dcea0c2f3",
            "type": "local_shell_call_output",
            "output": "total 8\ndrwxr-xr-x 2 reports reports 4096 Mar 18 09:12 .\n",
            "status": "completed",
        },
    ),
    (
        "shell_call",
        {
            "id": "sh_81ae5ab19b5fa144cb59d7d0a51402690c66faea281e459d",
            "type": "shell_call",
            "call_id": _CALL_SHELL,
            "action": {"commands": ["python -m pytest -q tests/unit"], "timeout_ms": 120000},
            "status": "completed",
            "environment": {"type": "local"},
        },
    ),
    (
        "shell_call_output",
        {
            "type": "shell_call_output",
            "call_id": _CALL_SHELL,
            "output": [
                {
                    "stdout": "42 passed in 3.18s\n",
                    "stderr": "",
                    "outcome": {"type": "exit", "exit_code": 0},
                }
            ],
            "max_output_length": 4096,
        },
    ),
    (
        "apply_patch_call",
        {
            "type": "apply_patch_call",
            "call_id": _CALL_PATCH,
            "status": "completed",
            "operation": {
                "type": "update_file",
                "path": "src/app/config.py",
                "diff": "@@ -1,3 +1,3 @@\n-TIMEOUT = 30\n+TIMEOUT = 60\n DEBUG = False\n",
            },
        },
    ),
    (
        "apply_patch_call_output",
        {
            "type": "apply_patch_call_output",
            "call_id": _CALL_PATCH,
            "status": "completed",
            "output": "Updated src/app/config.py",
        },
    ),
    (
        "mcp_list_tools",
        {
            "id": "mcpl_77316a479370697f19306e4a4ae95a9a53db497ed1fb040a",
            "type": "mcp_list_tools",
            "server_label": "deepwiki",
            "tools": [
                {
                    "name": "ask_question",
                    "description": "Ask a question about a GitHub repository.",
                    "input_schema": {
                        "type": "object",
                        "properties": {
                            "repoName": {"type": "string"},
                            "question": {"type": "string"},
                        },
                        "required": ["repoName", "question"],
                    },
                    "annotations": {"readOnlyHint": True},
                }
            ],
        },
    ),
    (
        "mcp_approval_request",
        {
            "id": "mcpr_c02fbec12034dab5ef3b4fe01a372d9a0b910dbfd81a2ae2",
            "type": "mcp_approval_request",
            "server_label": "deepwiki",
            "name": "ask_question",
            "arguments": '{"repoName":"openai/openai-python","question":"How is pagination done?"}',
        },
    ),
    # No `request_id`: the spec lists it as required but never declares it (spec quirk).
    (
        "mcp_approval_response",
        {
            "type": "mcp_approval_response",
            "approval_request_id": "mcpr_c02fbec12034dab5ef3b4fe01a372d9a0b910dbfd81a2ae2",
            "approve": True,
            "reason": "Read-only question, fine to run.",
        },
    ),
    (
        "mcp_call",
        {
            "id": "mcp_af67e8d103bbeed35a3221963b1101c760ee29fc8ba3effd",
            "type": "mcp_call",
            "server_label": "deepwiki",
            "name": "ask_question",
            "arguments": '{"repoName":"openai/openai-python","question":"How is pagination done?"}',
            "output": "Pagination uses cursor pages: the client passes after=<last_id>.",
            "status": "completed",
            "approval_request_id": "mcpr_c02fbec12034dab5ef3b4fe01a372d9a0b910dbfd81a2ae2",
        },
    ),
    (
        "custom_tool_call",
        {
            "id": "ctc_565566df26f3e49e5eb03d7ac8cba71dc044074f7fedc7cc",
            "type": "custom_tool_call",
            "call_id": _CALL_CUSTOM,
            "name": "run_sql",
            "input": "SELECT city, avg(temp_c) FROM readings WHERE day = '2026-03-18' GROUP BY 1;",
        },
    ),
    # D20 checks no prefix for this type; `ctco_` is the one seen in the wild (§3).
    (
        "custom_tool_call_output",
        {
            "id": "ctco_52fc1101e09a9d4ac38c75d64d5dde5eed4fdb68ce78c866",
            "type": "custom_tool_call_output",
            "call_id": _CALL_CUSTOM,
            "output": "city|avg\nParis|18.4\nLyon|20.1\n",
        },
    ),
    (
        "program",
        {
            "id": "cm_1c984810d7be2c442162c62f62db4c6f606ee08e39ae78b5",
            "type": "program",
            "call_id": _CALL_PROGRAM,
            "code": (
                "const w = await tools.get_weather({city: 'Paris', unit: 'celsius'});\n"
                "return w.temperature;"
            ),
            "fingerprint": "fp_v1:3f9a0c2e7b6d4158a2c9e0f1d3b5a7c9",
        },
    ),
    (
        "program_output",
        {
            "id": "cmo_b2e1b0cb895fdbc7537bf772913f79db92e254d1fce8bd6b",
            "type": "program_output",
            "call_id": _CALL_PROGRAM,
            "result": "18",
            "status": "completed",
        },
    ),
]

# Spec schema each VALID case was written against (all in #/components/schemas).
INPUT_SCHEMA: dict[str, str] = {
    "easy_user_string": "EasyInputMessage",
    "easy_assistant_string": "EasyInputMessage",
    "easy_system_string": "EasyInputMessage",
    "easy_developer_string": "EasyInputMessage",
    "easy_without_type": "EasyInputMessage",
    "easy_assistant_phase": "EasyInputMessage",
    "input_message_content_list": "InputMessage",
    "input_message_developer_list": "InputMessage",
    "input_message_with_id": "InputMessage",
    "output_message_full": "OutputMessage",
    "output_message_refusal": "OutputMessage",
    "agents_sdk_assistant_message": "OutputMessage",
    "function_call": "FunctionToolCall",
    "function_call_without_id": "FunctionToolCall",
    "function_call_output": "FunctionCallOutputItemParam",
    "function_call_output_parts": "FunctionCallOutputItemParam",
    "file_search_call": "FileSearchToolCall",
    "computer_call": "ComputerToolCall",
    "computer_call_output": "ComputerCallOutputItemParam",
    "web_search_call": "WebSearchToolCall",
    "web_search_call_open_page": "WebSearchToolCall",
    "tool_search_call": "ToolSearchCallItemParam",
    "tool_search_output": "ToolSearchOutputItemParam",
    "additional_tools": "AdditionalToolsItemParam",
    "reasoning": "ReasoningItem",
    "reasoning_without_id": "ReasoningItem",
    "compaction": "CompactionSummaryItemParam",
    "image_generation_call": "ImageGenToolCall",
    "code_interpreter_call": "CodeInterpreterToolCall",
    "local_shell_call": "LocalShellToolCall",
    "local_shell_call_output": "LocalShellToolCallOutput",
    "shell_call": "FunctionShellCallItemParam",
    "shell_call_output": "FunctionShellCallOutputItemParam",
    "apply_patch_call": "ApplyPatchToolCallItemParam",
    "apply_patch_call_output": "ApplyPatchToolCallOutputItemParam",
    "mcp_list_tools": "MCPListTools",
    "mcp_approval_request": "MCPApprovalRequest",
    "mcp_approval_response": "MCPApprovalResponse",
    "mcp_call": "MCPToolCall",
    "custom_tool_call": "CustomToolCall",
    "custom_tool_call_output": "CustomToolCallOutput",
    "compaction_trigger": "CompactionTriggerItemParam",
    "program": "ProgramItemParam",
    "program_output": "ProgramOutputItemParam",
}

# VALID cases that fail their INPUT_SCHEMA and are accepted by the contract anyway.
# (The phantom required keys of LocalShellToolCallOutput/MCPApprovalResponse are not
# listed: validate with spec_schema.validate(..., relax_quirks=True).)
NOT_SPEC_VALID: dict[str, str] = {
    "agents_sdk_assistant_message": "D18: no id/status, output_text without annotations/logprobs",
    "reasoning_without_id": "§4.1: reasoning may omit id when it has encrypted_content",
}

# VALID cases carrying keys their INPUT_SCHEMA does not declare, accepted anyway.
UNDECLARED_KEYS: dict[str, tuple[str, ...]] = {
    # Messages carry ids in practice: D20 checks them for 'msg', D21 matches them.
    "input_message_with_id": ("id",),
}

# Input types with no ConversationItem member: nothing valid could be returned for them,
# so the server validates and then refuses them (see INVALID).
NO_OUTPUT_SCHEMA: frozenset[str] = frozenset({"compaction_trigger"})

# item_reference is left out of VALID: it needs an id that already exists (D7).
ITEM_REFERENCE_NOTE = (
    "item_reference: {'type': 'item_reference', 'id': <id of an item the caller can read>} "
    "(type may be omitted or null). It is stored and returned as a copy of the referenced "
    "item (its own type, fields and id), an unknown id gives 404 "
    "\"Item with id '<id>' not found.\", and an id the target already holds gives 400 "
    "item_already_in_conversation (D7, D21)."
)


# --- rejected payloads -------------------------------------------------------------------

# (case, payload sent alone as items[0], expected error.param, expected error.code)
INVALID: list[tuple[str, Payload, str, str]] = [
    # Valid input, but no ConversationItem form exists for it (NO_OUTPUT_SCHEMA): refused.
    ("compaction_trigger_not_storable", {"type": "compaction_trigger"}, "items[0].type", "invalid_value"),
    # Missing required fields.
    (
        "function_call_missing_call_id",
        {"type": "function_call", "name": "get_weather", "arguments": _WEATHER_ARGS},
        "items[0].call_id",
        "missing_required_parameter",
    ),
    (
        "function_call_missing_name",
        {"type": "function_call", "call_id": _CALL_WEATHER, "arguments": _WEATHER_ARGS},
        "items[0].name",
        "missing_required_parameter",
    ),
    (
        "function_call_missing_arguments",
        {"type": "function_call", "call_id": _CALL_WEATHER, "name": "get_weather"},
        "items[0].arguments",
        "missing_required_parameter",
    ),
    (
        "easy_message_missing_content",
        {"type": "message", "role": "user"},
        "items[0].content",
        "missing_required_parameter",
    ),
    (
        "function_call_output_missing_output",
        {"type": "function_call_output", "call_id": _CALL_WEATHER},
        "items[0].output",
        "missing_required_parameter",
    ),
    (
        "computer_call_output_missing_output",
        {"type": "computer_call_output", "call_id": _CALL_COMPUTER},
        "items[0].output",
        "missing_required_parameter",
    ),
    (
        "custom_tool_call_missing_input",
        {"type": "custom_tool_call", "call_id": _CALL_CUSTOM, "name": "run_sql"},
        "items[0].input",
        "missing_required_parameter",
    ),
    (
        "mcp_approval_response_missing_approve",
        {
            "type": "mcp_approval_response",
            "approval_request_id": "mcpr_c02fbec12034dab5ef3b4fe01a372d9a0b910dbfd81a2ae2",
        },
        "items[0].approve",
        "missing_required_parameter",
    ),
    (
        "reasoning_missing_summary",
        {
            "id": "rs_27cd857ac9b07aa93f4fd288c1edcaaf4dec1f5985f751e7",
            "type": "reasoning",
            "encrypted_content": _REASONING_BLOB,
        },
        "items[0].summary",
        "missing_required_parameter",
    ),
    (
        "shell_call_missing_action",
        {"type": "shell_call", "call_id": _CALL_SHELL},
        "items[0].action",
        "missing_required_parameter",
    ),
    (
        "shell_call_action_missing_commands",
        {"type": "shell_call", "call_id": _CALL_SHELL, "action": {"timeout_ms": 120000}},
        "items[0].action.commands",
        "missing_required_parameter",
    ),
    (
        "input_text_part_missing_text",
        {"type": "message", "role": "user", "content": [{"type": "input_text"}]},
        "items[0].content[0].text",
        "missing_required_parameter",
    ),
    (
        "url_citation_missing_url",
        {
            "id": "msg_9d6f2608ff8ef8b8b0d6ba9c5dee06b835e5b890a991ccef",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {
                    "type": "output_text",
                    "text": "Sunny, 18°C.",
                    "annotations": [
                        {"type": "url_citation", "title": "Météo", "start_index": 0, "end_index": 5}
                    ],
                    "logprobs": [],
                }
            ],
        },
        "items[0].content[0].annotations[0].url",
        "missing_required_parameter",
    ),
    (
        "apply_patch_call_output_missing_status",
        {"type": "apply_patch_call_output", "call_id": _CALL_PATCH, "output": "done"},
        "items[0].status",
        "missing_required_parameter",
    ),
    (
        "program_output_missing_result",
        {
            "id": "cmo_090c6d912f4ef47e39ee7850c3963b50b6f0b15a764a798f",
            "type": "program_output",
            "call_id": _CALL_PROGRAM,
            "status": "completed",
        },
        "items[0].result",
        "missing_required_parameter",
    ),
    # Types that need an id (§4.1), sent without one.
    (
        "web_search_call_missing_id",
        {
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "queries": ["paris weather today"]},
        },
        "items[0].id",
        "missing_required_parameter",
    ),
    (
        "file_search_call_missing_id",
        {"type": "file_search_call", "status": "completed", "queries": ["meal limit"]},
        "items[0].id",
        "missing_required_parameter",
    ),
    (
        "code_interpreter_call_missing_id",
        {
            "type": "code_interpreter_call",
            "status": "completed",
            "container_id": "cntr_6ab66ff7ec6481938f4c8d63a5998cba",
            "code": "print(1 + 1)",
            "outputs": None,
        },
        "items[0].id",
        "missing_required_parameter",
    ),
    (
        "mcp_call_missing_id",
        {
            "type": "mcp_call",
            "server_label": "deepwiki",
            "name": "ask_question",
            "arguments": "{}",
        },
        "items[0].id",
        "missing_required_parameter",
    ),
    (
        "image_generation_call_missing_id",
        {"type": "image_generation_call", "status": "completed", "result": _PNG_B64},
        "items[0].id",
        "missing_required_parameter",
    ),
    (
        "local_shell_call_output_missing_id",
        {"type": "local_shell_call_output", "output": "ok\n"},
        "items[0].id",
        "missing_required_parameter",
    ),
    (
        "program_missing_id",
        {
            "type": "program",
            "call_id": _CALL_PROGRAM,
            "code": "return 1;",
            "fingerprint": "fp_v1:00",
        },
        "items[0].id",
        "missing_required_parameter",
    ),
    # Reasoning with neither id nor encrypted_content (§4.1, openai-agents-python#1709).
    (
        "reasoning_without_id_or_encrypted_content",
        {"type": "reasoning", "summary": []},
        "item",
        "invalid_item",
    ),
    # Wrong JSON types.
    (
        "function_call_arguments_object",
        {
            "type": "function_call",
            "call_id": _CALL_WEATHER,
            "name": "get_weather",
            "arguments": {"city": "Paris", "unit": "celsius"},
        },
        "items[0].arguments",
        "invalid_type",
    ),
    (
        "easy_message_content_number",
        {"type": "message", "role": "user", "content": 42},
        "items[0].content",
        "invalid_type",
    ),
    (
        "function_call_output_call_id_integer",
        {"type": "function_call_output", "call_id": 12345, "output": "ok"},
        "items[0].call_id",
        "invalid_type",
    ),
    (
        "mcp_approval_response_approve_string",
        {
            "type": "mcp_approval_response",
            "approval_request_id": "mcpr_c02fbec12034dab5ef3b4fe01a372d9a0b910dbfd81a2ae2",
            "approve": "yes",
        },
        "items[0].approve",
        "invalid_type",
    ),
    (
        "second_content_part_text_integer",
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Two numbers:"},
                {"type": "input_text", "text": 1234},
            ],
        },
        "items[0].content[1].text",
        "invalid_type",
    ),
    (
        "reasoning_summary_string",
        {
            "id": "rs_266595f25fb15176a2f8b3193e0cd140fca58bea7bd0943a",
            "type": "reasoning",
            "summary": "thinking about the weather",
        },
        "items[0].summary",
        "invalid_type",
    ),
    (
        "file_search_call_queries_string",
        {
            "id": "fs_ef2b3f8033188e751a6e7d2757dd643bd4dd549642c5b56f",
            "type": "file_search_call",
            "status": "completed",
            "queries": "meal limit",
        },
        "items[0].queries",
        "invalid_type",
    ),
    (
        "code_interpreter_logs_integer",
        {
            "id": "ci_a7005994eccd2131e9ed0417e742171aac3bd6af2ddbfff6",
            "type": "code_interpreter_call",
            "status": "completed",
            "container_id": "cntr_6ab66ff7ec6481938f4c8d63a5998cba",
            "code": "print(2)",
            "outputs": [{"type": "logs", "logs": 2}],
        },
        "items[0].outputs[0].logs",
        "invalid_type",
    ),
    (
        "shell_call_output_exit_code_string",
        {
            "type": "shell_call_output",
            "call_id": _CALL_SHELL,
            "output": [
                {"stdout": "", "stderr": "boom\n", "outcome": {"type": "exit", "exit_code": "1"}}
            ],
        },
        "items[0].output[0].outcome.exit_code",
        "invalid_type",
    ),
    (
        "computer_call_action_x_string",
        {
            "id": "cu_0f0343f5e6d63278e6f3e3cce98b5e5db81c74a6dd5f9a1b",
            "type": "computer_call",
            "call_id": _CALL_COMPUTER,
            "action": {"type": "click", "button": "left", "x": "412", "y": 288},
            "pending_safety_checks": [],
            "status": "completed",
        },
        "items[0].action.x",
        "invalid_type",
    ),
    # Bad enum values.
    (
        "easy_message_bad_role",
        {"type": "message", "role": "robot", "content": "beep"},
        "items[0].role",
        "invalid_value",
    ),
    (
        "function_call_bad_status",
        {
            "type": "function_call",
            "call_id": _CALL_WEATHER,
            "name": "get_weather",
            "arguments": _WEATHER_ARGS,
            "status": "done",
        },
        "items[0].status",
        "invalid_value",
    ),
    (
        "easy_message_bad_phase",
        {"type": "message", "role": "assistant", "content": "Checking.", "phase": "draft"},
        "items[0].phase",
        "invalid_value",
    ),
    (
        "input_image_bad_detail",
        {
            "type": "message",
            "role": "user",
            "content": [
                {
                    "type": "input_image",
                    "image_url": "https://images.example.com/a.png",
                    "detail": "ultra",
                }
            ],
        },
        "items[0].content[0].detail",
        "invalid_value",
    ),
    (
        "apply_patch_call_output_bad_status",
        {"type": "apply_patch_call_output", "call_id": _CALL_PATCH, "status": "in_progress"},
        "items[0].status",
        "invalid_value",
    ),
    (
        "program_output_bad_status",
        {
            "id": "cmo_d668098292588d194421229b34c9bdf5e0680edce1275333",
            "type": "program_output",
            "call_id": _CALL_PROGRAM,
            "result": "18",
            "status": "failed",
        },
        "items[0].status",
        "invalid_value",
    ),
    (
        "additional_tools_bad_role",
        {"type": "additional_tools", "role": "user", "tools": [_WEATHER_TOOL]},
        "items[0].role",
        "invalid_value",
    ),
    (
        "tool_search_call_bad_execution",
        {"type": "tool_search_call", "execution": "remote", "arguments": {}},
        "items[0].execution",
        "invalid_value",
    ),
    # Unknown type of a content part: the param names the part, as for an unknown item
    # type at items[0] (live Responses errors for a bad part type report `input[N].content[0]`).
    (
        "content_part_unknown_type",
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_video", "video_url": "https://videos.example.com/a.mp4"}],
        },
        "items[0].content[0]",
        "invalid_value",
    ),
    (
        "unknown_item_type",
        {"type": "bogus_call", "call_id": _CALL_WEATHER},
        "items[0]",
        "invalid_value",
    ),
    ("neither_type_nor_role", {"content": "Hello there"}, "items[0]", "invalid_value"),
    # Strings over maxLength.
    (
        "function_call_output_call_id_too_long",
        {"type": "function_call_output", "call_id": "call_" + "x" * 60, "output": "ok"},
        "items[0].call_id",
        "string_above_max_length",
    ),
    (
        "function_call_output_name_too_long",
        {
            "type": "function_call_output",
            "call_id": _CALL_WEATHER,
            "output": "ok",
            "name": "get_weather_" + "x" * 117,
        },
        "items[0].name",
        "string_above_max_length",
    ),
    (
        "shell_call_call_id_too_long",
        {"type": "shell_call", "call_id": "call_" + "y" * 60, "action": {"commands": ["ls"]}},
        "items[0].call_id",
        "string_above_max_length",
    ),
    (
        "program_call_id_too_long",
        {
            "id": "cm_0d3c63f38cccfb562331846c9c7287cb67466bd31ff26091",
            "type": "program",
            "call_id": "call_" + "z" * 60,
            "code": "return 1;",
            "fingerprint": "fp_v1:00",
        },
        "items[0].call_id",
        "string_above_max_length",
    ),
    # Unknown fields (D9), at item level and deeper.
    (
        "easy_message_unknown_field",
        {"type": "message", "role": "user", "content": "Hi", "foo": "bar"},
        "items[0].foo",
        "unknown_parameter",
    ),
    (
        "function_call_unknown_created_at",
        {
            "type": "function_call",
            "call_id": _CALL_WEATHER,
            "name": "get_weather",
            "arguments": _WEATHER_ARGS,
            "created_at": 1790341111,
        },
        "items[0].created_at",
        "unknown_parameter",
    ),
    (
        "content_part_unknown_field",
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hi", "foo": 1}],
        },
        "items[0].content[0].foo",
        "unknown_parameter",
    ),
    (
        "web_search_action_unknown_field",
        {
            "id": "ws_c2153e53c35ed179d1162261615afbab32439203f527b207",
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "queries": ["paris weather"], "engine": "bing"},
        },
        "items[0].action.engine",
        "unknown_parameter",
    ),
    (
        "annotation_unknown_field",
        {
            "id": "msg_cfdbb2c1adfe9ea1647c4588d622e10fbb2743d863591049",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {
                    "type": "output_text",
                    "text": "See the policy.",
                    "annotations": [
                        {
                            "type": "file_citation",
                            "file_id": "file-6F2ksmvXxt4VdoqmHRw6kL",
                            "filename": "expense-policy-2026.pdf",
                            "index": 8,
                            "page": 3,
                        }
                    ],
                    "logprobs": [],
                }
            ],
        },
        "items[0].content[0].annotations[0].page",
        "unknown_parameter",
    ),
    (
        "summary_part_unknown_field",
        {
            "id": "rs_9c5df504381bea011d21a4c8ef78f676646b3dc01f6bb77b",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Plan.", "lang": "en"}],
        },
        "items[0].summary[0].lang",
        "unknown_parameter",
    ),
    # Client ids with the wrong prefix (D20).
    (
        "message_id_wrong_prefix",
        {
            "id": "item_wrongprefix_56195f6721fb44ea",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Hi.", "annotations": [], "logprobs": []}],
        },
        "items[0].id",
        "invalid_value",
    ),
    (
        "function_call_id_wrong_prefix",
        {
            "id": "call_db8ad5f4064fa835f704da65dd76a382d988553d1f3e7ad1",
            "type": "function_call",
            "call_id": _CALL_WEATHER,
            "name": "get_weather",
            "arguments": _WEATHER_ARGS,
        },
        "items[0].id",
        "invalid_value",
    ),
    (
        "function_call_output_id_wrong_prefix",
        {
            "id": "out_824ca05b1a16a5088c6dfdedb4a24f77cac72b5f2392ff66",
            "type": "function_call_output",
            "call_id": _CALL_WEATHER,
            "output": _WEATHER_RESULT,
        },
        "items[0].id",
        "invalid_value",
    ),
    (
        "custom_tool_call_id_wrong_prefix",
        {
            "id": "tool_facded637336ffd5b414aab27f6d7e8986930daeb9091bbb",
            "type": "custom_tool_call",
            "call_id": _CALL_CUSTOM,
            "name": "run_sql",
            "input": "SELECT 1;",
        },
        "items[0].id",
        "invalid_value",
    ),
    (
        "web_search_call_id_wrong_prefix",
        {
            "id": "search_b4462e1f22b13889875d759858aa0e34551c88529c8efa16",
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "queries": ["paris weather"]},
        },
        "items[0].id",
        "invalid_value",
    ),
]


# --- include values ----------------------------------------------------------------------


class IncludeField(TypedDict):
    """Where one ``include`` value shows up in a returned item.

    ``path`` is relative to the item, in the param notation (``content[1].image_url``);
    ``None`` when the spec has no place for the data. ``when_excluded`` is what the item
    shows without the include: ``"absent"`` (key left out, D10), ``"null"`` or ``"[]"``.
    """

    case: str
    path: str | None
    when_excluded: Literal["absent", "null", "[]"]
    note: str


INCLUDE_FIELDS: dict[str, IncludeField] = {
    "file_search_call.results": {
        "case": "file_search_call",
        "path": "results",
        "when_excluded": "absent",
        "note": "optional and nullable in FileSearchToolCall, so leaving it out is valid",
    },
    "web_search_call.results": {
        "case": "web_search_call",
        "path": None,
        "when_excluded": "absent",
        "note": "WebSearchToolCall has no results field: the value must be accepted, and "
        "the item comes back the same with or without it",
    },
    "web_search_call.action.sources": {
        "case": "web_search_call",
        "path": "action.sources",
        "when_excluded": "absent",
        "note": "optional in WebSearchActionSearch",
    },
    "message.input_image.image_url": {
        "case": "input_message_content_list",
        "path": "content[1].image_url",
        "when_excluded": "absent",
        "note": "optional in InputImageContent; the part keeps type and detail",
    },
    "computer_call_output.output.image_url": {
        "case": "computer_call_output",
        "path": "output.image_url",
        "when_excluded": "absent",
        "note": "optional in ComputerScreenshotImage; output keeps its type",
    },
    "code_interpreter_call.outputs": {
        "case": "code_interpreter_call",
        "path": "outputs",
        "when_excluded": "null",
        "note": "CodeInterpreterToolCall requires outputs (array or null), so leaving it out "
        "would make the item invalid; null is the schema-valid form (§5 table says null; "
        "D10's wording says left out, same reasoning as its logprobs exception)",
    },
    "reasoning.encrypted_content": {
        "case": "reasoning",
        "path": "encrypted_content",
        "when_excluded": "absent",
        "note": "optional and nullable in ReasoningItem",
    },
    "message.output_text.logprobs": {
        "case": "output_message_full",
        "path": "content[0].logprobs",
        "when_excluded": "[]",
        "note": "required by OutputTextContent, so [] without the include (D10, live)",
    },
}


# --- what the server must add ------------------------------------------------------------

# Per input schema: paths the returned item's schema requires that the input schema does
# not (computed from the spec, content parts included; quirk keys left out).
# Beyond these, a few input fields accept null where the output does not (see the notes).
SERVER_FILLS: dict[str, tuple[str, ...]] = {
    "EasyInputMessage": (
        "type",
        "id",
        "status",
        "content: string -> [input_text|output_text part]",
    ),
    "InputMessage": ("type", "id", "status"),
    "OutputMessage": (),  # but D18 input also lacks id, status, annotations, logprobs
    "FunctionToolCall": ("id", "status"),
    "FunctionCallOutputItemParam": ("id", "status", "output[].detail (input_image parts)"),
    "ComputerCallOutputItemParam": ("id", "status"),
    "ToolSearchCallItemParam": ("id", "call_id", "execution", "status"),
    "ToolSearchOutputItemParam": ("id", "call_id", "execution", "status"),
    "AdditionalToolsItemParam": ("id",),
    "ReasoningItem": (),  # but §4.1 input may lack id (then the server fills it)
    "CompactionSummaryItemParam": ("id",),
    "FunctionShellCallItemParam": (
        "id",
        "status",
        "environment",
        "action.timeout_ms",
        "action.max_output_length",
    ),
    "FunctionShellCallOutputItemParam": ("id", "status", "max_output_length"),
    "ApplyPatchToolCallItemParam": ("id",),
    "ApplyPatchToolCallOutputItemParam": ("id",),
    "MCPApprovalResponse": ("id",),
    "FileSearchToolCall": (),
    "ComputerToolCall": (),
    "WebSearchToolCall": (),
    "ImageGenToolCall": (),
    "CodeInterpreterToolCall": (),
    "LocalShellToolCall": (),
    "LocalShellToolCallOutput": (),
    "MCPListTools": (),
    "MCPApprovalRequest": (),
    "MCPToolCall": (),
    "CustomToolCall": (),
    "CustomToolCallOutput": (),
    "ProgramItemParam": (),
    "ProgramOutputItemParam": (),
    "CompactionTriggerItemParam": (),  # no output schema at all (NO_OUTPUT_SCHEMA)
}
