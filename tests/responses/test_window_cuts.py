"""Where truncation may start the model's view (issue 18): never between a function call
and its output, never after a reasoning item, never before an output whose call was not
read; and the oldest such place that fits, at a user message when one fits."""

from __future__ import annotations

from typing import Any

import pytest

from convostore import errors
from convostore.service.responses.window import answered_from, fit, valid_cuts


def user(text: str = "u") -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def assistant() -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": []}


def call(call_id: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": "f", "arguments": "{}"}


def output(call_id: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": "x"}


REASONING = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hm"}]}


def test_calls_and_reasoning_are_never_parted() -> None:
    history = [user(), REASONING, call("a"), output("a"), assistant(), user(), assistant()]
    ok = valid_cuts(history, [], complete=True)
    #        0     1      2      3      4     5     6     7 (none)
    assert ok == [True, True, False, False, True, True, True, True]


def test_an_output_in_the_input_keeps_its_call() -> None:
    history = [user(), call("a")]
    assert valid_cuts(history, [output("a")], complete=True) == [True, True, False]


def test_an_output_whose_call_was_not_read_is_never_first() -> None:
    history = [output("old"), assistant(), user(), assistant()]
    assert valid_cuts(history, [], complete=False) == [False, True, True, True, True]


def test_the_oldest_fitting_cut_at_a_user_message() -> None:
    history = [user(), assistant(), user(), assistant(), user(), assistant()]
    tokens = [10] * 6
    assert fit(history, tokens, [], fixed=0, budget=60, complete=True) == 0
    # 45 tokens: items 2.. take 40 and item 2 is a user message; cut 1 would fit 50 > 45
    assert fit(history, tokens, [], fixed=0, budget=45, complete=True) == 2
    assert fit(history, tokens, [], fixed=0, budget=35, complete=True) == 4
    # no user message fits: the finer cut
    assert fit(history, tokens, [], fixed=0, budget=15, complete=True) == 5
    assert fit(history, tokens, [], fixed=5, budget=5, complete=True) == 6
    with pytest.raises(errors.InvalidRequest) as refused:
        fit(history, tokens, [], fixed=6, budget=5, complete=True)
    assert refused.value.code == "context_length_exceeded"


def test_after_a_compaction_the_calls_the_input_answers_are_kept() -> None:
    history = [user(), assistant(), user(), REASONING, call("a"), call("b")]
    # both answered: from the reasoning item that belongs to the first call
    assert answered_from(history, [output("a"), output("b")], complete=True) == 3
    assert answered_from(history, [output("b")], complete=True) == 5
    assert answered_from(history, [user()], complete=True) == 6  # none needed
    # a call given in the input too is not looked for in the history
    assert answered_from(history, [call("a"), output("a")], complete=True) == 6
    # an output in the history whose call is older holds the cut before that call
    held = [user(), call("x"), call("y"), output("x"), assistant()]
    assert answered_from(held, [output("y")], complete=True) == 1
