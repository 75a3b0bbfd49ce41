"""History that fits the model (issue 18): truncation auto, compaction by threshold, by
trigger and by POST /v1/responses/compact, configuration_update items.

The scripted model server reports a 2,000-token window (GET /v1/models) and tokenizes
(POST /tokenize, 4 bytes a token). Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.responses.fake_upstream import MODEL, FakeUpstream, Reply, completion, fake_tokens

WINDOW = 2000
MAX_OUTPUT = 200
OVERHEAD = 8  # per message, as convostore counts it
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}}


@pytest.fixture(autouse=True)
def small_window(upstream: FakeUpstream) -> None:
    upstream.max_model_len = WINDOW
    upstream.tokenizer = True


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() if k not in ("role", "type", "id") for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def request_tokens(body: dict[str, Any]) -> int:
    """The tokens of a chat request by the scripted tokenizer, every string counted."""
    return sum(fake_tokens("\n".join(strings(message))) + OVERHEAD for message in body["messages"])


def assert_calls_whole(body: dict[str, Any]) -> None:
    """Every tool call has its tool message in the request, and every tool message its call."""
    called: set[str] = set()
    answered: set[str] = set()
    for message in body["messages"]:
        for call in message.get("tool_calls") or ():
            called.add(call["id"])
        if message["role"] == "tool":
            assert message["tool_call_id"] in called, body["messages"]
            answered.add(message["tool_call_id"])
    assert called == answered, body["messages"]


def all_items(client: OpenAI, conversation_id: str) -> list[dict[str, Any]]:
    return [
        item.model_dump(exclude_none=True)
        for item in client.conversations.items.list(conversation_id, order="asc")
    ]


def chat_requests(upstream: FakeUpstream) -> list[dict[str, Any]]:
    return [r for r, p in zip(upstream.requests, upstream.paths, strict=True) if "messages" in r]


def test_fifty_turns_with_truncation_never_exceed_the_window(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    conv = client.conversations.create()
    pending: str | None = None
    for turn in range(50):
        if turn % 5 == 2:
            upstream.script(
                Reply(body=completion(tool_calls=[(f"call_{turn}", "lookup", '{"q": "x"}')]))
            )
        else:
            upstream.script(Reply(body=completion(f"Answer {turn}: " + "words " * 60)))
        if pending is not None:
            given: Any = [
                {"type": "function_call_output", "call_id": pending, "output": "found " * 40}
            ]
        else:
            given = f"Question {turn}: " + "tell me more " * 25
        response = client.responses.create(
            model=MODEL,
            conversation=conv.id,
            input=given,
            truncation="auto",
            max_output_tokens=MAX_OUTPUT,
        )
        pending = f"call_{turn}" if turn % 5 == 2 else None
        assert response.truncation == "auto"
        sent = upstream.last
        assert request_tokens(sent) <= WINDOW - MAX_OUTPUT, turn
        assert_calls_whole(sent)
        assert sent["messages"][-1]["role"] in ("user", "tool")
    # the model saw only the newest turns by the end, and the whole transcript is kept
    first = chat_requests(upstream)[-1]["messages"][0]
    assert "Question 0:" not in str(first)
    stored = all_items(client, conv.id)
    assert len(stored) == 100
    assert "Question 0:" in str(stored[0])
    # counting is bounded: each text is tokenized once, the turn it is new (82 here)
    assert 0 < upstream.tokenized <= len(stored) + 1  # the 100 items, and instructions
    assert upstream.model_lists == 1


def test_input_that_cannot_fit_is_refused_like_openai(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    conv = client.conversations.create()
    before = len(upstream.requests)
    with httpx.Client() as http:
        answer = http.post(
            str(client.base_url) + "responses",
            json={
                "model": MODEL,
                "conversation": conv.id,
                "input": "far too long " * 2000,
                "truncation": "auto",
            },
        )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "input"
    assert error["message"].startswith("Your input exceeds the context window of this model.")
    assert len(upstream.requests) == before
    assert all_items(client, conv.id) == []


def test_unknown_window_is_a_clear_400(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.max_model_len = None
    with httpx.Client() as http:
        answer = http.post(
            str(client.base_url) + "responses",
            json={"model": MODEL, "input": "hi", "truncation": "auto"},
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "context_window_unknown"
    assert "--context-window" in answer.json()["error"]["message"]


def test_llama_cpp_props_give_the_window(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.max_model_len = None  # llama.cpp lists no max_model_len: /props says n_ctx
    upstream.n_ctx = 900
    conv = client.conversations.create()
    for turn in range(8):
        upstream.script(Reply(body=completion("ok " * 60)))
        client.responses.create(
            model=MODEL, conversation=conv.id, input=f"q{turn} " * 100, truncation="auto"
        )
        assert request_tokens(upstream.last) <= 900
    assert "q0 " not in str(upstream.last["messages"])


@pytest.mark.parametrize("settings_overrides", [{"context_window": f"{MODEL}=600,9999"}])
def test_the_setting_names_the_window(client: OpenAI, upstream: FakeUpstream) -> None:
    conv = client.conversations.create()
    for turn in range(6):
        upstream.script(Reply(body=completion("ok " * 40)))
        client.responses.create(
            model=MODEL, conversation=conv.id, input=f"q{turn} " * 40, truncation="auto"
        )
        assert request_tokens(upstream.last) <= 600
    assert upstream.model_lists == 0


def summary_reply(text: str) -> Reply:
    return Reply(body=completion(text))


def assert_starts_at_summary(body: dict[str, Any], summary: str) -> None:
    first = body["messages"][0]
    assert first["role"] == "user"
    assert summary in first["content"]
    assert first["content"].startswith("Summary of the earlier part")


def test_compaction_by_threshold(client: OpenAI, upstream: FakeUpstream) -> None:
    conv = client.conversations.create()
    management = [{"type": "compaction", "compact_threshold": 700}]
    compacted_at: int | None = None
    for turn in range(8):
        upstream.script(Reply(body=completion(f"Reply {turn} " + "blah " * 50)))
        before = len(upstream.requests)
        client.responses.create(
            model=MODEL,
            conversation=conv.id,
            input=f"Turn {turn} " + "text " * 50,
            extra_body={"context_management": management},
        )
        if len(upstream.requests) - before == 2:  # a summary call, then the turn
            compacted_at = turn
            break
        # the reply scripted above was used by the turn itself
    assert compacted_at is not None and compacted_at >= 1
    summary_call = upstream.requests[-2]
    assert "compact" in summary_call["messages"][0]["content"]
    assert "Turn 0 " in summary_call["messages"][1]["content"]
    # the scripted answer went to the summary; the turn got the default reply
    summary = f"Reply {compacted_at} " + "blah " * 50
    items = all_items(client, conv.id)
    kinds = [item["type"] for item in items]
    assert kinds.count("compaction") == 1
    compaction_item = items[kinds.index("compaction")]
    assert compaction_item["encrypted_content"].startswith("convostore-summary:v1\n")
    assert summary.strip() in compaction_item["encrypted_content"]
    assert_starts_at_summary(upstream.last, summary.strip())
    for turn in range(10):
        upstream.script(Reply(body=completion(f"After {turn}")))
        client.responses.create(
            model=MODEL,
            conversation=conv.id,
            input=f"Later {turn}",
            extra_body={"context_management": [{"type": "compaction", "compact_threshold": 5000}]},
        )
        assert_starts_at_summary(upstream.last, summary.strip())
        assert "Turn 0 " not in str(upstream.last["messages"])
    listed = all_items(client, conv.id)
    assert len(listed) == len(items) + 20
    assert "Turn 0 " in str(listed[0])


def test_compaction_by_trigger_then_ten_turns(client: OpenAI, upstream: FakeUpstream) -> None:
    conv = client.conversations.create()
    for turn in range(3):
        upstream.script(Reply(body=completion(f"Early reply {turn}")))
        client.responses.create(model=MODEL, conversation=conv.id, input=f"Early {turn}")
    upstream.script(
        summary_reply("The user asked three early things."), Reply(body=completion("Sure."))
    )
    response = client.responses.create(
        model=MODEL,
        conversation=conv.id,
        input=[{"type": "compaction_trigger"}, {"role": "user", "content": "Go on"}],
    )
    assert response.output_text == "Sure."
    assert upstream.last["messages"][0]["content"].endswith("The user asked three early things.")
    assert upstream.last["messages"][1] == {"role": "user", "content": "Go on"}
    assert len(upstream.last["messages"]) == 2
    for turn in range(10):
        upstream.script(Reply(body=completion(f"Late reply {turn}")))
        client.responses.create(model=MODEL, conversation=conv.id, input=f"Late {turn}")
        assert_starts_at_summary(upstream.last, "The user asked three early things.")
        assert "Early 0" not in str(upstream.last["messages"])
        assert len(upstream.last["messages"]) == 2 + 2 * turn + 2
    listed = all_items(client, conv.id)
    assert [i["type"] for i in listed].count("compaction") == 1
    assert len(listed) == 6 + 1 + 2 + 20
    # the compaction is the input item listed before "Go on"
    position = [i["type"] for i in listed].index("compaction")
    assert position == 6 and listed[7]["content"][0]["text"] == "Go on"


def test_compact_endpoint_on_a_conversation_and_as_openai(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    conv = client.conversations.create()
    for turn in range(3):
        upstream.script(Reply(body=completion(f"Reply {turn}")))
        client.responses.create(model=MODEL, conversation=conv.id, input=f"Ask {turn}")
    upstream.script(summary_reply("Three questions were asked."))
    compacted = client.responses.compact(model=MODEL, extra_body={"conversation": conv.id})
    assert compacted.object == "response.compaction"
    assert [item.type for item in compacted.output] == ["message"] * 3 + ["compaction"]
    item = compacted.output[-1]
    assert item.type == "compaction" and item.encrypted_content.endswith(
        "Three questions were asked."
    )
    listed = all_items(client, conv.id)
    assert listed[-1]["id"] == item.id
    for turn in range(10):
        upstream.script(Reply(body=completion(f"More {turn}")))
        client.responses.create(
            model=MODEL, conversation=conv.id, input=f"Next {turn}", truncation="auto"
        )
        assert_starts_at_summary(upstream.last, "Three questions were asked.")
        assert "Ask 0" not in str(upstream.last["messages"])
    assert len(all_items(client, conv.id)) == 6 + 1 + 20

    # OpenAI's way: compact the given input, then append the item to a conversation
    other = client.conversations.create()
    upstream.script(summary_reply("A stateless summary."))
    stateless = client.responses.compact(
        model=MODEL, input=[{"role": "user", "content": "Remember blue"}]
    )
    made = stateless.output[-1].model_dump(exclude_none=True)
    client.conversations.items.create(
        other.id,
        items=[
            {"role": "user", "content": "Remember blue"},
            {"type": "compaction", "encrypted_content": made["encrypted_content"]},
        ],
    )
    upstream.script(Reply(body=completion("Blue.")))
    client.responses.create(model=MODEL, conversation=other.id, input="Which colour?")
    assert_starts_at_summary(upstream.last, "A stateless summary.")
    assert len(upstream.last["messages"]) == 2

    # deleting the compaction item gives the model the whole history again
    client.conversations.items.delete(item.id, conversation_id=conv.id)
    upstream.script(Reply(body=completion("ok")))
    client.responses.create(
        model=MODEL, conversation=conv.id, input="All of it?", truncation="auto"
    )
    assert "Ask 0" in str(upstream.last["messages"])


def test_openai_compaction_items_keep_todays_rule(client: OpenAI, upstream: FakeUpstream) -> None:
    conv = client.conversations.create(
        items=[{"type": "compaction", "encrypted_content": "gAAAAABopaque"}]
    )
    with httpx.Client() as http:
        answer = http.post(
            str(client.base_url) + "responses",
            json={"model": MODEL, "conversation": conv.id, "input": "hi", "truncation": "auto"},
        )
    assert answer.status_code == 400
    assert "compaction" in answer.json()["error"]["message"]


def test_configuration_update_after_compaction_is_honoured(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    conv = client.conversations.create()
    upstream.script(Reply(body=completion("first")))
    client.responses.create(model=MODEL, conversation=conv.id, input="one")
    upstream.script(summary_reply("Summary."))
    client.responses.compact(model=MODEL, extra_body={"conversation": conv.id})
    client.conversations.items.create(
        conv.id,
        items=[
            {
                "type": "configuration_update",
                "reasoning": {"effort": "low"},
                "text": {"format": {"type": "json_schema", "name": "a", "schema": SCHEMA}},
            }
        ],
    )
    for mode in ("auto", "disabled"):
        upstream.script(Reply(body=completion('{"a": 1}')))
        response = client.responses.create(
            model=MODEL, conversation=conv.id, input="two", truncation=mode
        )
        assert upstream.last["reasoning_effort"] == "low"
        assert upstream.last["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": SCHEMA},
        }
        assert response.reasoning is not None and response.reasoning.effort == "low"
        assert all(m.get("content") != "" for m in upstream.last["messages"])
    # the request's own setting wins
    upstream.script(Reply(body=completion("x")))
    client.responses.create(
        model=MODEL, conversation=conv.id, input="three", reasoning={"effort": "high"}
    )
    assert upstream.last["reasoning_effort"] == "high"


def test_streamed_turns_are_truncated_too(client: OpenAI, upstream: FakeUpstream) -> None:
    from tests.responses.fake_upstream import chunks

    conv = client.conversations.create()
    for turn in range(12):
        upstream.script(Reply(chunks=chunks([f"Streamed {turn} ", "more " * 80])))
        with client.responses.stream(
            model=MODEL,
            conversation=conv.id,
            input=f"Ask {turn} " + "words " * 60,
            truncation="auto",
            max_output_tokens=MAX_OUTPUT,
        ) as stream:
            final = stream.get_final_response()
        assert final.status == "completed"
        assert request_tokens(upstream.last) <= WINDOW - MAX_OUTPUT
    assert "Ask 0 " not in str(upstream.last["messages"])
    assert len(all_items(client, conv.id)) == 24


def test_without_a_tokenizer_the_estimate_keeps_within(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    upstream.tokenizer = False
    conv = client.conversations.create()
    for turn in range(15):
        upstream.script(Reply(body=completion(f"R{turn} " + "ok " * 90)))
        client.responses.create(
            model=MODEL,
            conversation=conv.id,
            input=f"Q{turn} " + "please " * 50,
            truncation="auto",
            max_output_tokens=MAX_OUTPUT,
        )
        assert request_tokens(upstream.last) <= WINDOW - MAX_OUTPUT
    assert upstream.tokenized == 0
    assert "Q0 " not in str(upstream.last["messages"])


def test_disabled_sends_the_whole_history_as_before(client: OpenAI, upstream: FakeUpstream) -> None:
    conv = client.conversations.create()
    for turn in range(20):
        upstream.script(Reply(body=completion(f"R{turn} " + "ok " * 90)))
        client.responses.create(model=MODEL, conversation=conv.id, input=f"Q{turn} " + "x " * 99)
    assert request_tokens(upstream.last) > WINDOW
    assert upstream.last["messages"][0]["content"].startswith("Q0 ")
    assert upstream.tokenized == 0 and upstream.model_lists == 0


def test_a_compaction_given_as_input_starts_the_view(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    conv = client.conversations.create()
    upstream.script(Reply(body=completion("old answer")))
    client.responses.create(model=MODEL, conversation=conv.id, input="old question")
    upstream.script(summary_reply("Earlier: an old question."))
    made = client.responses.compact(model=MODEL, input="old question").output[-1]
    upstream.script(Reply(body=completion("new answer")))
    client.responses.create(
        model=MODEL,
        conversation=conv.id,
        input=[
            {"type": "compaction", "encrypted_content": made.encrypted_content},
            {"role": "user", "content": "new question"},
        ],
    )
    assert [m["content"] for m in upstream.last["messages"]] == [
        "Summary of the earlier part of this conversation:\n\nEarlier: an old question.",
        "new question",
    ]
    assert len(all_items(client, conv.id)) == 5


def test_a_refused_input_costs_no_summary(client: OpenAI, upstream: FakeUpstream) -> None:
    conv = client.conversations.create(items=[{"role": "user", "content": "earlier"}])
    before = len(upstream.requests)
    with httpx.Client() as http:
        answer = http.post(
            str(client.base_url) + "responses",
            json={
                "model": MODEL,
                "conversation": conv.id,
                "input": [
                    {"type": "compaction_trigger"},
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "input_image",
                                "image_url": "http://10.0.0.1/x.png",
                                "detail": "auto",
                            }
                        ],
                    },
                ],
            },
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "input[1].content[0].image_url"
    assert len(upstream.requests) == before
    assert len(all_items(client, conv.id)) == 1


def test_a_previous_response_chain_is_truncated_too(client: OpenAI, upstream: FakeUpstream) -> None:
    previous: str | None = None
    for turn in range(12):
        upstream.script(Reply(body=completion(f"C{turn} " + "fine " * 80)))
        response = client.responses.create(
            model=MODEL,
            input=f"P{turn} " + "again " * 60,
            truncation="auto",
            max_output_tokens=MAX_OUTPUT,
            **({"previous_response_id": previous} if previous else {}),
        )
        previous = response.id
        assert request_tokens(upstream.last) <= WINDOW - MAX_OUTPUT
    assert "P0 " not in str(upstream.last["messages"])
    assert "P11 " in upstream.last["messages"][-1]["content"]
