"""Identifier formats (CONTRACT.md §3, D6, D20).

Every id convostore makes is ``<prefix>_`` + 48 lowercase hex characters, like the ids
OpenAI's items API makes (``conv_6ab66ff7…``). Clients treat them as opaque.

Like OpenAI's, the first 8 hex characters are the creation time in seconds and the other
40 are random (160 bits). Ids made close in time sort close together, so the indexes on
ids take new entries at their right edge instead of on a random page each: a 20-item
append rewrites a few index pages rather than forty.
"""

from __future__ import annotations

import os
import threading
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
    "configuration_update": "cfgu",  # D23: not yet seen in OpenAI traffic [GUESS]
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


class RandomPool:
    """Bytes from the operating system's CSPRNG, fetched 4 KiB at a time.

    ``secrets.token_hex`` makes a ``getrandom`` system call per id; a 20-item append made
    20 of them, about a seventh of its server time. The bytes are the same kind (the
    kernel's), only fetched in bulk. The pool is emptied in a forked child, so two
    processes never hand out the same bytes.
    """

    SIZE = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._buffer, self._offset = b"", 0
        self._lock = threading.Lock()

    def hex(self, size: int) -> str:
        with self._lock:
            start = self._offset
            if start + size > len(self._buffer):
                self._buffer, start = os.urandom(max(self.SIZE, size)), 0
            self._offset = start + size
            return self._buffer[start : start + size].hex()


_random = RandomPool()


_RANDOM_BYTES = 20  # after the 8 hex digits of the time: 40 hex digits of randomness


def _stamp() -> str:
    return f"{int(time.time()) & 0xFFFFFFFF:08x}"


def new_id(prefix: str) -> str:
    return f"{prefix}_{_stamp()}{_random.hex(_RANDOM_BYTES)}"


def new_suffixes(count: int) -> list[str]:
    """What :func:`new_id` puts after ``<prefix>_``, for ``count`` ids made in one go: the
    clock read once, the pool's lock taken once."""
    stamp = _stamp()
    width = 2 * _RANDOM_BYTES
    random = _random.hex(_RANDOM_BYTES * count)
    return [stamp + random[start : start + width] for start in range(0, width * count, width)]


def new_conversation_id() -> str:
    return new_id(CONVERSATION_PREFIX)
