"""The agents SDK with ``conversation_id=``: a function tool round trip, run and streamed.

The conversation must end up holding user, function_call, function_call_output and
assistant, in that order, each once (the agents SDK sends only what the server does not
hold yet; a duplicate would be refused with OpenAI's "Duplicate item found").
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool
from openai import AsyncOpenAI, OpenAI

from tests.responses.fake_upstream import FakeUpstream, Reply, chunks, completion

CALL_ID = "chatcmpl-tool-7d1c0f4e9a2b4c55b0e3f1a2d3c4b5a6"


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def agent(base_url: str) -> Agent[Any]:
    client = AsyncOpenAI(base_url=base_url, api_key="anything", max_retries=0)
    return Agent(
        name="weather",
        instructions="Answer about the weather. Use the tool.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="qwen", openai_client=client),
    )


def stored(client: OpenAI, conversation_id: str) -> list[dict[str, Any]]:
    return [
        item.model_dump(exclude_none=True)
        for item in client.conversations.items.list(conversation_id, order="asc", limit=100)
    ]


def check_round_trip(client: OpenAI, upstream: FakeUpstream, conversation_id: str) -> None:
    items = stored(client, conversation_id)
    assert [i["type"] for i in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ], items
    assert [i.get("role") for i in items] == ["user", None, None, "assistant"]
    assert items[1]["call_id"] == items[2]["call_id"] == CALL_ID
    assert items[1]["id"].startswith("fc_") and items[1]["name"] == "get_weather"
    assert items[2]["output"] == "sunny in Paris"
    assert len({i["id"] for i in items}) == 4
    # What the model server saw on the second call: the whole tool round trip.
    second = upstream.requests[1]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][2]["tool_calls"] == [
        {
            "id": CALL_ID,
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert second["messages"][3] == {
        "role": "tool",
        "tool_call_id": CALL_ID,
        "content": "sunny in Paris",
    }
    assert second["tools"][0]["function"]["name"] == "get_weather"


def test_runner_run_with_a_function_tool(
    client: OpenAI, upstream: FakeUpstream, base_url: str
) -> None:
    upstream.script(
        Reply(body=completion(tool_calls=[(CALL_ID, "get_weather", '{"city": "Paris"}')])),
        Reply(body=completion("It is sunny in Paris.")),
    )
    conv = client.conversations.create()
    result = asyncio.run(
        Runner.run(
            agent(base_url),
            "What's the weather in Paris?",
            conversation_id=conv.id,
            run_config=RunConfig(tracing_disabled=True),
        )
    )
    assert result.final_output == "It is sunny in Paris."
    check_round_trip(client, upstream, conv.id)


def test_runner_run_streamed_with_a_function_tool(
    client: OpenAI, upstream: FakeUpstream, base_url: str
) -> None:
    upstream.script(
        Reply(
            chunks=chunks(
                reasoning=["The user wants ", "the weather."],
                tool_calls=[(CALL_ID, "get_weather", ['{"city": ', '"Paris"}'])],
            )
        ),
        Reply(chunks=chunks(["It is sunny ", "in Paris."])),
    )
    conv = client.conversations.create()

    async def run() -> Any:
        streamed = Runner.run_streamed(
            agent(base_url),
            "What's the weather in Paris?",
            conversation_id=conv.id,
            run_config=RunConfig(tracing_disabled=True),
        )
        kinds = [event.type async for event in streamed.stream_events()]
        return streamed.final_output, kinds

    final, kinds = asyncio.run(run())
    assert final == "It is sunny in Paris."
    assert "raw_response_event" in kinds
    items = stored(client, conv.id)
    # The reasoning the model server streamed is kept, before the call it led to.
    assert items[1]["type"] == "reasoning"
    assert items[1]["content"] == [
        {"type": "reasoning_text", "text": "The user wants the weather."}
    ]
    del items[1]
    assert [i["type"] for i in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    second = upstream.requests[1]
    assert second["messages"][2]["reasoning_content"] == "The user wants the weather."
    assert second["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'


def test_runner_run_with_previous_response_id(upstream: FakeUpstream, base_url: str) -> None:
    """Issue 17: ``Runner.run(…, previous_response_id=…)`` chains turns through stored
    responses; inside a run the SDK continues from its last response too, sending only
    the tool output."""
    upstream.script(
        Reply(body=completion(tool_calls=[(CALL_ID, "get_weather", '{"city": "Paris"}')])),
        Reply(body=completion("It is sunny in Paris.")),
        Reply(body=completion("You asked about Paris.")),
    )
    config = RunConfig(tracing_disabled=True)
    first = asyncio.run(
        Runner.run(agent(base_url), "What's the weather in Paris?", run_config=config)
    )
    assert first.final_output == "It is sunny in Paris."
    assert first.last_response_id is not None
    second = upstream.requests[1]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][3]["content"] == "sunny in Paris"
    later = asyncio.run(
        Runner.run(
            agent(base_url),
            "Which city did I ask about?",
            previous_response_id=first.last_response_id,
            run_config=config,
        )
    )
    assert later.final_output == "You asked about Paris."
    assert [m["role"] for m in upstream.last["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert upstream.last["messages"][4]["content"] == "It is sunny in Paris."
