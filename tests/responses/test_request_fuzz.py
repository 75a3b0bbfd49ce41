"""Issue 15, L3: the POST /v1/responses parser answers any JSON body with a result or a
clean 4xx (an ApiError), never an unexpected exception (a 500): hypothesis builds bodies
from the parser's own known keys with values of every JSON type, nested."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convostore import errors
from convostore.items.registry import Registry
from convostore.service.responses import request as responses_request

REGISTRY = Registry()

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from([*sorted(responses_request.TOOL_KEYS), "type", "x"]), inner, max_size=4
        )
    ),
    max_leaves=8,
)
tool = st.fixed_dictionaries(
    {"type": st.just("function"), "name": st.just("f")},
    optional={key: json_values for key in sorted(responses_request.TOOL_KEYS - {"type", "name"})},
)
bodies = st.fixed_dictionaries(
    {"model": st.just("m")},
    optional={
        **{key: json_values for key in sorted(responses_request.KNOWN) if key != "model"},
        "tools": st.lists(tool | json_values, max_size=2),
        "include": st.lists(
            json_values | st.sampled_from(["message.output_text.logprobs"]), max_size=2
        ),
        "tool_choice": json_values
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["function", "allowed_tools"])},
            optional={"name": json_values, "mode": json_values, "tools": json_values},
        ),
        "text": st.fixed_dictionaries(
            {},
            optional={
                "format": json_values
                | st.fixed_dictionaries(
                    {"type": st.sampled_from(["text", "json_schema", "json_object"])},
                    optional={"name": json_values, "schema": json_values, "strict": json_values},
                ),
                "verbosity": json_values,
            },
        ),
        "reasoning": st.fixed_dictionaries(
            {},
            optional={
                k: json_values for k in ("effort", "summary", "generate_summary", "context", "mode")
            },
        ),
    },
)


def parse_cleanly(body: Any) -> None:
    try:
        responses_request.parse(body, REGISTRY)
    except errors.ApiError as exc:
        assert 400 <= exc.status < 500, exc


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(bodies)
def test_the_parser_never_fails_unexpectedly(body: dict[str, Any]) -> None:
    parse_cleanly(body)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "tools": [{"type": "function", "name": "f", "allowed_callers": 5}]},
        {"model": "m", "tools": [{"type": "function", "name": "f", "allowed_callers": [[]]}]},
        {"model": "m", "include": [[]]},
        {"model": "m", "include": [{}]},
        {"model": "m", "reasoning": {"effort": []}},
        {"model": "m", "text": {"verbosity": {}}},
        {"model": "m", "truncation": []},
    ],
)
def test_the_findings_are_400s(body: dict[str, Any]) -> None:
    with pytest.raises(errors.ApiError) as caught:
        responses_request.parse(body, REGISTRY)
    assert caught.value.status == 400
