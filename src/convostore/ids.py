"""Identifier formats (CONTRACT.md §3, D6, D20).

Every id convostore makes is ``<prefix>_`` + 48 lowercase hex characters, like the ids
OpenAI's items API makes (``conv_6ab66ff7…``). Clients treat them as opaque.

Like OpenAI's, the first 8 hex characters are the creation time in seconds and the other
40 are random (160 bits). Ids made close in time sort close together, so the indexes on
ids take new entries at their right edge instead of on a random page each: a 20-item
append rewrites a few index pages rather than forty.
"""

from __future__ import annotations

import secrets
import time

CONVERSATION_PREFIX = "conv"

# Prefix of the ids generated for items of each type (CONTRACT.md §3).
ITEM_PREFIXES: dict[str, str] = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
    "web_search_call": "ws",
    "file_search_call": "fs",
    "code_interpreter_call": "ci",
    "mcp_list_tools": "mcpl",
    "mcp_call": "mcp",
    "mcp_approval_request": "mcpr",
    "mcp_approval_response": "mcpa",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "computer_call": "cu",
    "computer_call_output": "cuo",
    "image_generation_call": "ig",
    "local_shell_call": "lsh",
    "local_shell_call_output": "lsho",
    "shell_call": "sh",
    "shell_call_output": "sho",
    "apply_patch_call": "apc",
    "apply_patch_call_output": "apco",
    "tool_search_call": "tsc",
    "tool_search_output": "tso",
    "compaction": "cmp",
    "compaction_trigger": "cmpt",
    "additional_tools": "at",
    "program": "cm",
    "program_output": "cmo",
}

# The prefix a client-supplied id must start with, where OpenAI's check is known (D20).
# Compared as a plain string prefix, so `fco_…` passes the `fc` check.
REQUIRED_CLIENT_PREFIXES: dict[str, str] = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fc",
    "custom_tool_call": "ctc",
    "web_search_call": "ws",
}


def new_id(prefix: str) -> str:
    return f"{prefix}_{int(time.time()) & 0xFFFFFFFF:08x}{secrets.token_hex(20)}"


def new_conversation_id() -> str:
    return new_id(CONVERSATION_PREFIX)
