"""Stateful turns with the official SDK: the conversation is the model's memory.

Each test runs on SQLite and PostgreSQL, with convostore serving over a socket in front of
the scripted model server.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.responses.fake_upstream import USAGE, FakeUpstream, Reply, chunks, completion
from tests.support import running_server


def items_of(client: OpenAI, conversation_id: str) -> list[dict[str, Any]]:
    return [
        item.model_dump(exclude_none=True)
        for item in client.conversations.items.list(conversation_id, order="asc", limit=100)
    ]


def text(item: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in item["content"])


def test_two_turns_remember(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(
        Reply(body=completion("Nice to meet you, Ana!")),
        Reply(body=completion("Your name is Ana.")),
    )
    conv = client.conversations.create()
    first = client.responses.create(model="qwen", conversation=conv.id, input="Hi, I'm Ana")
    assert first.status == "completed"
    assert first.output_text == "Nice to meet you, Ana!"
    assert first.conversation is not None and first.conversation.id == conv.id
    assert first.id.startswith("resp_")
    assert first.usage is not None
    assert (first.usage.input_tokens, first.usage.output_tokens) == (
        USAGE["prompt_tokens"],
        USAGE["completion_tokens"],
    )

    second = client.responses.create(model="qwen", conversation=conv.id, input="What's my name?")
    assert second.output_text == "Your name is Ana."
    assert upstream.last["messages"] == [
        {"role": "user", "content": "Hi, I'm Ana"},
        {"role": "assistant", "content": "Nice to meet you, Ana!"},
        {"role": "user", "content": "What's my name?"},
    ]
    assert upstream.last["model"] == "qwen"
    assert "stream" not in upstream.last

    stored = items_of(client, conv.id)
    assert [(i["role"], text(i)) for i in stored] == [
        ("user", "Hi, I'm Ana"),
        ("assistant", "Nice to meet you, Ana!"),
        ("user", "What's my name?"),
        ("assistant", "Your name is Ana."),
    ]
    # The output items are stored as the client saw them, ids included.
    assert stored[1] == first.output[0].model_dump(exclude_none=True)
    assert stored[3] == second.output[0].model_dump(exclude_none=True)
    assert stored[1]["id"].startswith("msg_") and stored[0]["id"].startswith("msg_")


def test_two_turns_streaming(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(
        Reply(chunks=chunks(["Nice ", "to meet ", "you, Ana!"])),
        Reply(chunks=chunks(["Your name ", "is Ana."])),
    )
    conv = client.conversations.create()
    with client.responses.stream(model="qwen", conversation=conv.id, input="Hi, I'm Ana") as stream:
        events = list(stream)
        first = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert first.output_text == "Nice to meet you, Ana!"
    assert first.usage is not None and first.usage.total_tokens == USAGE["total_tokens"]
    assert upstream.last["stream"] is True
    assert upstream.last["stream_options"] == {"include_usage": True}

    raw = client.responses.create(
        model="qwen", conversation=conv.id, input="What's my name?", stream=True
    )
    second_events = list(raw)
    assert second_events[-1].type == "response.completed"
    second = second_events[-1].response
    assert second.output_text == "Your name is Ana."
    assert [m["role"] for m in upstream.last["messages"]] == ["user", "assistant", "user"]

    stored = items_of(client, conv.id)
    assert [text(i) for i in stored] == [
        "Hi, I'm Ana",
        "Nice to meet you, Ana!",
        "What's my name?",
        "Your name is Ana.",
    ]
    # The ids the client saw in the stream are the stored ones.
    added = next(e for e in events if e.type == "response.output_item.added")
    assert stored[1]["id"] == added.item.id == first.output[0].id
    assert stored[3] == second.output[0].model_dump(exclude_none=True)


def test_an_edit_between_turns_reaches_the_model(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("Hello Ana.")), Reply(body=completion("Bob, right?")))
    conv = client.conversations.create()
    first = client.responses.create(model="qwen", conversation=conv.id, input="I'm Ana")
    # Through the Conversations API: the answer goes, a correction comes.
    client.conversations.items.delete(first.output[0].id, conversation_id=conv.id)
    client.conversations.items.create(
        conv.id, items=[{"role": "user", "content": "Sorry, my name is Bob."}]
    )
    client.responses.create(model="qwen", conversation=conv.id, input="Who am I?")
    assert upstream.last["messages"] == [
        {"role": "user", "content": "I'm Ana"},
        {"role": "user", "content": "Sorry, my name is Bob."},
        {"role": "user", "content": "Who am I?"},
    ]


def test_history_is_read_across_pages(client: OpenAI, upstream: FakeUpstream) -> None:
    conv = client.conversations.create()
    for start in range(0, 230, 20):
        client.conversations.items.create(
            conv.id,
            items=[
                {"role": "user", "content": f"note {n}"} for n in range(start, min(start + 20, 230))
            ],
        )
    upstream.script(Reply(body=completion("ok")))
    client.responses.create(model="qwen", conversation=conv.id, input="last")
    sent = [m["content"] for m in upstream.last["messages"]]
    assert sent == [f"note {n}" for n in range(230)] + ["last"]


def test_stateless_without_conversation(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("4")))
    response = client.responses.create(
        model="gpt-4o",
        input=[{"role": "user", "content": "2+2?"}],
        instructions="Answer with a number.",
        temperature=0.2,
        top_p=0.9,
        max_output_tokens=64,
        metadata={"run": "1"},
    )
    assert response.output_text == "4"
    assert response.conversation is None
    assert response.metadata == {"run": "1"}
    assert response.instructions == "Answer with a number."
    assert upstream.last == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Answer with a number."},
            {"role": "user", "content": "2+2?"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 64,
    }
    assert upstream.headers[-1]["authorization"] == "Bearer sk-upstream-secret"


@pytest.mark.parametrize("settings_overrides", [{"model_map": "gpt-4o=qwen2.5-7b"}])
def test_model_map(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("hi")))
    response = client.responses.create(model="gpt-4o", input="hello")
    assert upstream.last["model"] == "qwen2.5-7b"
    assert response.model == "gpt-4o"  # the name the client asked for


def test_store_false_with_conversation_appends_the_turn(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    """OpenAI appends a store: false turn to its conversation (recorded live traffic,
    agentic-api conv-store-false-followup-gpt-4o-nonstreaming.yaml): the turn is in the
    conversation, the response itself is not kept."""
    conv = client.conversations.create(items=[{"role": "user", "content": "I'm Ana"}])
    upstream.script(Reply(body=completion("Ana.")), Reply(chunks=chunks(["Still ", "Ana."])))
    response = client.responses.create(
        model="qwen", conversation=conv.id, input="Who am I?", store=False
    )
    assert response.output_text == "Ana." and response.store is False
    assert [m["content"] for m in upstream.last["messages"]] == ["I'm Ana", "Who am I?"]
    stored = items_of(client, conv.id)
    assert [text(i) for i in stored] == ["I'm Ana", "Who am I?", "Ana."]
    assert stored[2] == response.output[0].model_dump(exclude_none=True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with client.responses.stream(
        model="qwen", conversation=conv.id, input="And now?", store=False
    ) as stream:
        final = stream.get_final_response()
    assert [text(i) for i in items_of(client, conv.id)][3:] == ["And now?", "Still Ana."]
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(final.id)


def test_conversation_as_object(client: OpenAI, upstream: FakeUpstream) -> None:
    conv = client.conversations.create()
    upstream.script(Reply(body=completion("ok")))
    response = client.responses.create(model="qwen", conversation={"id": conv.id}, input="x")
    assert response.conversation is not None and response.conversation.id == conv.id
    assert len(items_of(client, conv.id)) == 2


def test_convostore_serve_with_upstream_flags(upstream: FakeUpstream, tmp_path: Any) -> None:
    """`convostore serve --upstream … --upstream-key … --model-map …`, as a user runs it."""
    args = (
        "--upstream",
        upstream.url,
        "--upstream-key",
        "sk-flag-key",
        "--model-map",
        "gpt-4o=qwen2.5-7b",
    )
    upstream.script(Reply(body=completion("Hello Ana")), Reply(chunks=chunks(["Ana", "."])))
    with running_server(tmp_path / "cli.db", *args) as url:
        sdk = OpenAI(base_url=url, api_key="anything", max_retries=0)
        conv = sdk.conversations.create()
        sdk.responses.create(model="gpt-4o", conversation=conv.id, input="Hi, I'm Ana")
        with sdk.responses.stream(model="gpt-4o", conversation=conv.id, input="My name?") as stream:
            final = stream.get_final_response()
        assert final.output_text == "Ana."
        assert len(items_of(sdk, conv.id)) == 4
        sdk.close()
    assert upstream.last["model"] == "qwen2.5-7b"
    assert upstream.headers[-1]["authorization"] == "Bearer sk-flag-key"
    assert len(upstream.last["messages"]) == 3
