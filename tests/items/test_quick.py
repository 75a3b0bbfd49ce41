"""The plain-message shortcut of the registry (issue 21) makes exactly what the general
path makes, and declines everything else, valid or not, so errors stay the general path's."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest

from convostore import errors
from convostore.items.registry import Registry

ROLES: list[Any] = ["user", "assistant", "system", "developer", "bogus", None, 5, ["user"]]
CONTENTS: list[Any] = [
    "hello",
    "",
    [],
    [{"type": "input_text", "text": "a"}],
    [{"text": "a", "type": "input_text"}, {"type": "input_text", "text": "b"}],
    [{"type": "output_text", "text": "a"}],
    [{"type": "output_text", "text": "a"}, {"type": "output_text", "text": "é\x00"}],
    [{"type": "input_text", "text": "a", "extra": 1}],
    [{"type": "input_text", "text": 5}],
    [{"type": "input_text", "texte": "a"}],
    [{"type": "output_text", "text": "a", "annotations": []}],
    [{"type": "refusal", "refusal": "no"}],
    [{"type": "input_image", "image_url": "https://x/y.png"}],
    ["a"],
    {"type": "input_text", "text": "a"},
    None,
    5,
]
EXTRAS: list[dict[str, Any]] = [
    {},
    {"id": "msg_1"},
    {"status": "completed"},
    {"phase": None},
    {"unknown": 1},
]


def items() -> list[dict[str, Any]]:
    out = []
    for role, content, extra in itertools.product(ROLES, CONTENTS, EXTRAS):
        out.append({"type": "message", "role": role, "content": content, **extra})
        out.append({"role": role, "content": content, "type": "message", **extra})
    out.append({"type": "message", "role": "user"})
    out.append({"type": "message", "content": "x", "status": "completed"})
    out.append({"type": "function_call", "call_id": "c", "name": "f"})
    out.append({"role": "user", "content": "x"})  # no type: the general path's
    return out


def general(registry: Registry, raw: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "item", registry._prepare(raw, "items[0]")
    except errors.ApiError as exc:
        return "error", (exc.message, exc.param, exc.code)


@pytest.mark.parametrize("keep_unknown", [True, False])
def test_the_shortcut_makes_what_the_general_path_makes(keep_unknown: bool) -> None:
    registry = Registry(keep_unknown=keep_unknown)
    taken = 0
    for raw in items():
        sent, again = copy.deepcopy(raw), copy.deepcopy(raw)
        quick = registry.quick(sent, 1000)
        kind, expected = general(registry, again)
        if quick is None:
            continue
        taken += 1
        assert kind == "item", raw
        assert json.dumps(quick) == json.dumps(expected), raw  # the same keys, in order
        assert json.dumps(sent) == json.dumps(again), raw  # and the same to what was sent
        assert registry.prepare(copy.deepcopy(raw), "items[0]") == expected
    # Every plain message took the shortcut: 4 roles, each with two strings, an empty list
    # and two lists of its own text parts, in two key orders.
    assert taken == 4 * 5 * 2


def test_the_shortcut_leaves_long_content_to_the_bounds() -> None:
    registry = Registry()
    raw = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}] * 3}
    assert registry.quick(raw, 2) is None
    assert registry.quick(raw, 3) is not None
