"""The translation both ways: Responses parameters and items → the Chat Completions request,
and the model server's answer (JSON or chunks) → output items and events."""

from __future__ import annotations

from typing import Any

import pytest
from openai import OpenAI

from tests.responses.fake_upstream import FakeUpstream, Reply, chunks, completion

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": True,
}
TIME = {
    "type": "function",
    "name": "get_time",
    "parameters": {"type": "object", "properties": {}},
    "strict": None,
}


def test_parameters_reach_the_model_server(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion('{"answer": 4}')))
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    response = client.responses.create(
        model="m",
        input=[
            {"role": "developer", "content": "Be terse."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in this picture?"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,iVBORw0KGgo=",
                        "detail": "low",
                    },
                ],
            },
        ],
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        text={
            "format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}
        },
        reasoning={"effort": "low"},
        user="u-1",
        safety_identifier="s-1",
    )
    assert response.output_text == '{"answer": 4}'
    sent = upstream.last
    assert sent["messages"] == [
        {"role": "system", "content": "Be terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                },
            ],
        },
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": WEATHER["parameters"],
                "strict": True,
            },
        },
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert sent["reasoning_effort"] == "low"
    assert (sent["user"], sent["safety_identifier"]) == ("u-1", "s-1")
    # The echo of the request in the response.
    assert response.tool_choice.type == "function"  # type: ignore[union-attr]
    assert [t.name for t in response.tools] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert response.parallel_tool_calls is False
    assert response.reasoning is not None and response.reasoning.effort == "low"


def test_allowed_tools_narrow_the_tools(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("ok")))
    client.responses.create(
        model="m",
        input="hi",
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "function", "name": "get_time"}],
        },
    )
    assert [t["function"]["name"] for t in upstream.last["tools"]] == ["get_time"]
    assert upstream.last["tool_choice"] == "required"


def test_parallel_calls_and_their_ids(client: OpenAI, upstream: FakeUpstream) -> None:
    calls = [
        ("call_a", "get_weather", '{"city": "Oslo"}'),
        ("call_b", "get_weather", '{"city": "Rome"}'),
    ]
    upstream.script(
        Reply(body=completion(tool_calls=calls)), Reply(body=completion(tool_calls=calls))
    )
    both = client.responses.create(model="m", input="weather?", tools=[WEATHER])  # type: ignore[list-item]
    assert [(o.type, o.call_id, o.arguments) for o in both.output] == [  # type: ignore[union-attr]
        ("function_call", "call_a", '{"city": "Oslo"}'),
        ("function_call", "call_b", '{"city": "Rome"}'),
    ]
    assert all(o.id.startswith("fc_") and o.status == "completed" for o in both.output)  # type: ignore[union-attr]
    one = client.responses.create(
        model="m",
        input="weather?",
        tools=[WEATHER],
        parallel_tool_calls=False,  # type: ignore[list-item]
    )
    assert [o.call_id for o in one.output] == ["call_a"]  # type: ignore[union-attr]


def test_reasoning_as_content_or_summary(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(
        Reply(body=completion("42", reasoning="Six times seven.")),
        Reply(body=completion("42", reasoning="Six times seven.")),
    )
    plain = client.responses.create(model="m", input="6*7?")
    reasoning = plain.output[0].model_dump(exclude_none=True)
    assert reasoning["type"] == "reasoning" and reasoning["id"].startswith("rs_")
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "Six times seven."}]
    assert reasoning["summary"] == []
    summarised = client.responses.create(model="m", input="6*7?", reasoning={"summary": "auto"})
    item = summarised.output[0].model_dump(exclude_none=True)
    assert item["summary"] == [{"type": "summary_text", "text": "Six times seven."}]
    assert "content" not in item
    assert summarised.output_text == "42"


def test_streamed_reasoning_summary_events(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(chunks=chunks(["42"], reasoning=["Six ", "times seven."])))
    events = list(
        client.responses.create(model="m", input="6*7?", reasoning={"summary": "auto"}, stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[:9] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output[0].summary[0].text == "Six times seven."  # type: ignore[union-attr]
    assert final.output_text == "42"


def test_streamed_tool_calls_events(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(
        Reply(
            chunks=chunks(
                ["Let me check."],
                tool_calls=[
                    ("call_a", "get_weather", ['{"city"', ': "Oslo"}']),
                    ("call_b", "get_time", ["{}"]),
                ],
            )
        )
    )
    with client.responses.stream(
        model="m", input="weather and time?", tools=[WEATHER, TIME]
    ) as stream:  # type: ignore[list-item]
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds.count("response.output_item.added") == 3
    assert kinds.count("response.function_call_arguments.done") == 2
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [d.arguments for d in done] == ['{"city": "Oslo"}', "{}"]  # type: ignore[union-attr]
    assert [o.type for o in final.output] == ["message", "function_call", "function_call"]
    assert final.output[1].call_id == "call_a"  # type: ignore[union-attr]
    assert final.output[2].name == "get_time"  # type: ignore[union-attr]


@pytest.mark.parametrize("stream", [False, True])
def test_length_makes_an_incomplete_response_that_is_stored(
    client: OpenAI, upstream: FakeUpstream, stream: bool
) -> None:
    if stream:
        upstream.script(Reply(chunks=chunks(["Once upon"], finish="length")))
    else:
        upstream.script(Reply(body=completion("Once upon", finish="length")))
    conv = client.conversations.create()
    if stream:
        events = list(
            client.responses.create(model="m", conversation=conv.id, input="story", stream=True)
        )
        assert events[-1].type == "response.incomplete"
        response = events[-1].response  # type: ignore[union-attr]
    else:
        response = client.responses.create(
            model="m", conversation=conv.id, input="story", max_output_tokens=16
        )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete"  # type: ignore[union-attr]
    stored = list(client.conversations.items.list(conv.id, order="asc"))
    assert [i.type for i in stored] == ["message", "message"]
    assert stored[1].status == "incomplete"  # type: ignore[union-attr]


def test_logprobs_when_included(client: OpenAI, upstream: FakeUpstream) -> None:
    completion_body = completion("Hi")
    token = {
        "token": "Hi",
        "logprob": -0.1,
        "bytes": [72, 105],
        "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]}],
    }
    completion_body["choices"][0]["logprobs"] = {"content": [token]}
    upstream.script(Reply(body=completion_body))
    response = client.responses.create(
        model="m", input="hi", include=["message.output_text.logprobs"], top_logprobs=1
    )
    assert upstream.last["logprobs"] is True and upstream.last["top_logprobs"] == 1
    part: Any = response.output[0].content[0]  # type: ignore[union-attr]
    assert part.logprobs[0].token == "Hi" and part.logprobs[0].top_logprobs[0].logprob == -0.1


def test_refusal(client: OpenAI, upstream: FakeUpstream) -> None:
    body = completion(None)
    body["choices"][0]["message"]["refusal"] = "I can't help with that."
    upstream.script(Reply(body=body))
    response = client.responses.create(model="m", input="something bad")
    assert response.output[0].content[0].type == "refusal"  # type: ignore[union-attr]


def test_obfuscation_by_default(client: OpenAI, upstream: FakeUpstream) -> None:
    """Every delta is padded to a multiple of 16 characters unless the request turns it
    off (stream_options.include_obfuscation, true by default as in OpenAI's API); reasoning,
    text and tool call arguments alike."""
    stream = chunks(
        ["Paris", "x" * 16, "y" * 17],
        reasoning=["think"],
        tool_calls=[("call_1", "f", ['{"a":', "1}"])],
    )
    upstream.script(Reply(chunks=stream), Reply(chunks=stream))
    padded = [e.model_dump() for e in client.responses.create(model="m", input="x", stream=True)]
    plain = list(
        client.responses.create(
            model="m", input="x", stream=True, stream_options={"include_obfuscation": False}
        )
    )
    deltas = [e for e in padded if e["type"].endswith(".delta")]
    assert {e["type"] for e in deltas} == {
        "response.reasoning_text.delta",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
    }
    for event in deltas:
        assert (len(event["delta"]) + len(event["obfuscation"])) % 16 == 0, event
        assert event["obfuscation"].isalnum() or event["obfuscation"] == ""
    assert [len(e["obfuscation"]) for e in deltas if "output_text" in e["type"]] == [11, 0, 15]
    assert all(getattr(e, "obfuscation", None) is None for e in plain)
    assert all("obfuscation" not in e for e in padded if not e["type"].endswith(".delta"))


def test_other_servers_shapes(client: OpenAI, upstream: FakeUpstream) -> None:
    """Ollama and newer vLLM name reasoning `reasoning`; some servers send no call id, or
    the arguments as an object."""
    body = completion("done")
    message = body["choices"][0]["message"]
    message["reasoning"] = "thinking"
    message["tool_calls"] = [
        {"type": "function", "function": {"name": "get_time", "arguments": {"tz": "UTC"}}}
    ]
    upstream.script(Reply(body=body))
    response = client.responses.create(model="m", input="x", tools=[TIME])  # type: ignore[list-item]
    kinds = [o.type for o in response.output]
    assert kinds == ["reasoning", "message", "function_call"]
    call: Any = response.output[2]
    assert call.call_id.startswith("call_") and call.arguments == '{"tz":"UTC"}'


def test_a_late_tool_delta_fails_the_stream(client: OpenAI, upstream: FakeUpstream) -> None:
    stream = chunks(tool_calls=[("call_a", "get_time", ["{"]), ("call_b", "get_time", ["{}"])])
    late = {
        **stream[-3],
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]},
                "finish_reason": None,
            }
        ],
    }  # type: ignore[dict-item]
    upstream.script(Reply(chunks=[*stream[:-2], late, *stream[-2:]]))
    events = list(client.responses.create(model="m", input="x", tools=[TIME], stream=True))  # type: ignore[list-item]
    assert events[-1].type == "response.failed"
    assert "out of order" in events[-1].response.error.message  # type: ignore[union-attr]
