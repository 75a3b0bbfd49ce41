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

from convostore.service.responses.compaction import PROMPT
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


def summary_calls(upstream: FakeUpstream) -> list[dict[str, Any]]:
    return [r for r in chat_requests(upstream) if r["messages"][0]["content"] == PROMPT]


def test_compaction_by_threshold(client: OpenAI, upstream: FakeUpstream) -> None:
    conv = client.conversations.create()
    management = [{"type": "compaction", "compact_threshold": 700}]
    compacted: Any = None
    for turn in range(8):
        upstream.script(Reply(body=completion(f"Reply {turn} " + "blah " * 50)))
        before = len(upstream.requests)
        response = client.responses.create(
            model=MODEL,
            conversation=conv.id,
            input=f"Turn {turn} " + "text " * 50,
            extra_body={"context_management": management},
        )
        if len(upstream.requests) - before == 2:  # a summary call, then the turn
            compacted = response
            break
        assert [item.type for item in response.output] == ["message"]
        # the reply scripted above was used by the turn itself
    assert compacted is not None and turn >= 1
    # the summary covers the history and this turn's input
    summary_call = upstream.requests[-2]
    assert summary_call["messages"][0]["content"] == PROMPT
    assert "Turn 0 " in summary_call["messages"][1]["content"]
    assert f"Turn {turn} " in summary_call["messages"][1]["content"]
    # the scripted answer went to the summary; the turn got the default reply
    summary = (f"Reply {turn} " + "blah " * 50).strip()
    # the compaction is the response's first output item, the answer after it
    assert [item.type for item in compacted.output] == ["compaction", "message"]
    made = compacted.output[0]
    assert made.encrypted_content == "convostore-summary:v1\n" + summary
    assert compacted.output_text == "(no script)"
    # the model answered this turn from the summary and the input verbatim
    assert_starts_at_summary(upstream.last, summary)
    assert upstream.last["messages"][1:] == [
        {"role": "user", "content": f"Turn {turn} " + "text " * 50}
    ]
    # stored after the turn's input, before the answer: a response's output order
    items = all_items(client, conv.id)
    assert [i["type"] for i in items[-3:]] == ["message", "compaction", "message"]
    assert items[-3]["content"][0]["text"].startswith(f"Turn {turn} ")
    assert items[-2] == made.model_dump(exclude_none=True)
    assert items[-1]["id"] == compacted.output[1].id
    for later in range(10):
        upstream.script(Reply(body=completion(f"After {later}")))
        client.responses.create(
            model=MODEL,
            conversation=conv.id,
            input=f"Later {later}",
            extra_body={"context_management": [{"type": "compaction", "compact_threshold": 5000}]},
        )
        assert_starts_at_summary(upstream.last, summary)
        sent = upstream.last["messages"]
        assert sent[1] == {"role": "assistant", "content": "(no script)"}
        assert len(sent) == 2 + 2 * later + 1
        assert "Turn 0 " not in str(sent) and f"Turn {turn} " not in str(sent)
    listed = all_items(client, conv.id)
    assert len(listed) == len(items) + 20
    assert "Turn 0 " in str(listed[0])
    assert [i["type"] for i in listed].count("compaction") == 1


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
    assert [item.type for item in response.output] == ["compaction", "message"]
    assert response.output[0].encrypted_content.endswith("The user asked three early things.")
    summarised = summary_calls(upstream)[-1]["messages"][1]["content"]
    assert "Early 0" in summarised and "user: Go on" in summarised
    assert upstream.last["messages"][0]["content"].endswith("The user asked three early things.")
    assert upstream.last["messages"][1] == {"role": "user", "content": "Go on"}
    assert len(upstream.last["messages"]) == 2
    for turn in range(10):
        upstream.script(Reply(body=completion(f"Late reply {turn}")))
        client.responses.create(model=MODEL, conversation=conv.id, input=f"Late {turn}")
        assert_starts_at_summary(upstream.last, "The user asked three early things.")
        assert upstream.last["messages"][1] == {"role": "assistant", "content": "Sure."}
        assert "Early 0" not in str(upstream.last["messages"])
        assert "Go on" not in str(upstream.last["messages"])
        assert len(upstream.last["messages"]) == 2 + 2 * turn + 1
    listed = all_items(client, conv.id)
    assert [i["type"] for i in listed].count("compaction") == 1
    assert len(listed) == 6 + 3 + 20
    # the turn's input, then its output: the compaction, then the answer
    assert [i["type"] for i in listed[6:9]] == ["message", "compaction", "message"]
    assert listed[6]["content"][0]["text"] == "Go on"
    assert listed[7]["id"] == response.output[0].id
    assert listed[8]["content"][0]["text"] == "Sure."
    # stored: the response holds it in its output, not among its input items
    stored = client.responses.retrieve(response.id)
    assert [item.model_dump() for item in stored.output] == [
        item.model_dump() for item in response.output
    ]
    inputs = list(client.responses.input_items.list(response.id))
    assert [i.type for i in inputs] == ["message"]


def text_of(item: dict[str, Any]) -> str:
    if item.get("type") == "compaction":
        return str(item["encrypted_content"]).split("\n", 1)[1]
    content = item["content"]
    return content if isinstance(content, str) else "".join(p["text"] for p in content)


def test_stateless_chaining_keeps_working_in_a_tiny_window(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    """OpenAI's stateless recipe: append each output to the input, and drop the items
    before the latest compaction item. Nothing is lost: each summary is made from the
    previous one, everything after it, and this turn's input."""
    upstream.max_model_len = 700
    management = [{"type": "compaction", "compact_threshold": 300}]
    kept: list[dict[str, Any]] = []
    compactions = 0
    for turn in range(14):
        upstream.script(Reply(body=completion(f"Said {turn} " + "so " * 40)))
        asked = {"role": "user", "content": f"Q{turn} " + "word " * 40}
        before = len(upstream.requests)
        response = client.responses.create(
            model=MODEL,
            input=[*kept, asked],  # type: ignore[list-item]
            store=False,
            max_output_tokens=100,
            extra_body={"context_management": management},
        )
        produced = [item.model_dump(exclude_none=True) for item in response.output]
        sent = upstream.last["messages"]
        assert request_tokens(upstream.last) <= 700 - 100, turn
        assert sent[-1]["content"] == asked["content"]
        if len(upstream.requests) - before == 2:
            compactions += 1
            assert produced[0]["type"] == "compaction"
            summarised = upstream.requests[-2]["messages"][1]["content"]
            # all the client will drop is in the summary: the previous one and what
            # followed it, or everything from the start, and this turn's question
            for item in [*kept, asked]:
                assert text_of(item).strip() in summarised, (turn, item)
            assert ("Q0 " in summarised) == (compactions == 1)
            assert sent[0]["content"].endswith(produced[0]["encrypted_content"].split("\n", 1)[1])
        else:
            assert [item["type"] for item in produced] == ["message"]
        history = [*kept, asked, *produced]
        latest = max(
            (i for i, item in enumerate(history) if item.get("type") == "compaction"), default=0
        )
        kept = history[latest:]
    assert compactions >= 3


def test_a_compaction_is_streamed_as_the_first_output_item(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    from openai.types.responses import (
        ResponseCompactionItem,
        ResponseOutputItemAddedEvent,
        ResponseOutputItemDoneEvent,
        ResponseOutputMessage,
    )

    from tests.responses.fake_upstream import chunks

    conv = client.conversations.create()
    upstream.script(Reply(body=completion("Early reply")))
    client.responses.create(model=MODEL, conversation=conv.id, input="Early")
    upstream.script(summary_reply("Streamed summary."), Reply(chunks=chunks(["Str", "eamed."])))
    events = list(
        client.responses.create(
            model=MODEL,
            conversation=conv.id,
            input=[{"role": "user", "content": "Now"}, {"type": "compaction_trigger"}],
            stream=True,
        )
    )
    assert [event.sequence_number for event in events] == list(range(len(events)))
    added, done = events[2], events[3]
    assert isinstance(added, ResponseOutputItemAddedEvent) and added.output_index == 0
    assert isinstance(done, ResponseOutputItemDoneEvent) and done.output_index == 0
    assert isinstance(done.item, ResponseCompactionItem)
    assert done.item.encrypted_content == "convostore-summary:v1\nStreamed summary."
    assert added.item == done.item
    message_events = [e for e in events[4:] if hasattr(e, "output_index")]
    assert message_events and all(e.output_index == 1 for e in message_events)
    assert isinstance(events[-2], ResponseOutputItemDoneEvent)
    assert isinstance(events[-2].item, ResponseOutputMessage)
    final = events[-1]
    assert final.type == "response.completed"
    assert [item.type for item in final.response.output] == ["compaction", "message"]
    assert final.response.output[0] == done.item and final.response.output_text == "Streamed."
    listed = all_items(client, conv.id)
    assert [i["type"] for i in listed] == ["message"] * 3 + ["compaction", "message"]
    assert listed[3] == done.item.model_dump(exclude_none=True)
    assert [m["content"] for m in upstream.last["messages"]] == [
        "Summary of the earlier part of this conversation:\n\nStreamed summary.",
        "Now",
    ]
    # the SDK's stream helper gathers the same output
    upstream.script(summary_reply("Again."), Reply(chunks=chunks(["Fine."])))
    with client.responses.stream(
        model=MODEL,
        conversation=conv.id,
        input=[{"type": "compaction_trigger"}, {"role": "user", "content": "More"}],
    ) as stream:
        gathered = stream.get_final_response()
    assert [item.type for item in gathered.output] == ["compaction", "message"]
    assert gathered.output_text == "Fine."
    upstream.script(Reply(body=completion("ok")))
    client.responses.create(model=MODEL, conversation=conv.id, input="Then")
    assert [m["content"] for m in upstream.last["messages"]] == [
        "Summary of the earlier part of this conversation:\n\nAgain.",
        "Fine.",
        "Then",
    ]


def test_a_background_compaction_is_its_first_output_item(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    from tests.responses.test_background import until

    previous = client.responses.create(model=MODEL, input="First question")
    upstream.script(summary_reply("A first question."), Reply(body=completion("Second answer.")))
    started = client.responses.create(
        model=MODEL,
        input=[{"type": "compaction_trigger"}, {"role": "user", "content": "Second question"}],
        previous_response_id=previous.id,
        background=True,
    )
    done = until(
        lambda: (r := client.responses.retrieve(started.id)).status == "completed" and r,
        "the background response to complete",
    )
    assert [item.type for item in done.output] == ["compaction", "message"]
    assert done.output[0].encrypted_content.endswith("A first question.")
    assert done.output_text == "Second answer."
    assert [i.type for i in client.responses.input_items.list(done.id)] == ["message"]
    # a previous_response_id chain goes on from the summary
    upstream.script(Reply(body=completion("Third answer.")))
    client.responses.create(model=MODEL, input="Third question", previous_response_id=done.id)
    assert [m["content"] for m in upstream.last["messages"]] == [
        "Summary of the earlier part of this conversation:\n\nA first question.",
        "Second answer.",
        "Third question",
    ]


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


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"stream": True}, "stream", "unknown_parameter"),
        ({"instructions": ["not", "text"]}, "instructions", "invalid_type"),
    ],
)
def test_a_compaction_body_is_refused_before_anything_happens(
    client: OpenAI, upstream: FakeUpstream, extra: dict[str, Any], param: str, code: str
) -> None:
    """A key of a response that is not a compaction's, or a value of the wrong type: a 400
    from the compaction's own schema; no summary is asked for, nothing is appended."""
    conv = client.conversations.create(items=[{"role": "user", "content": "earlier"}])
    before = len(upstream.requests)
    with httpx.Client() as http:
        answer = http.post(
            str(client.base_url) + "responses/compact",
            json={"model": MODEL, "conversation": conv.id, "input": "now", **extra},
        )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert len(upstream.requests) == before
    assert len(all_items(client, conv.id)) == 1


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


def test_a_streamed_background_compaction_is_recorded_first(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    from openai.types.responses import ResponseCompactionItem

    from tests.responses.fake_upstream import chunks

    conv = client.conversations.create(items=[{"role": "user", "content": "Before"}])
    upstream.script(summary_reply("Before, then After."), Reply(chunks=chunks(["Done."])))
    events = list(
        client.responses.create(
            model=MODEL,
            conversation=conv.id,
            input=[{"role": "user", "content": "After"}, {"type": "compaction_trigger"}],
            background=True,
            stream=True,
        )
    )
    assert [event.sequence_number for event in events] == list(range(len(events)))
    kinds = [event.type for event in events]
    assert kinds[:5] == [
        "response.created",
        "response.queued",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
    ]
    added, done = events[3], events[4]
    assert added.output_index == 0 and done.output_index == 0  # type: ignore[union-attr]
    assert isinstance(done.item, ResponseCompactionItem)  # type: ignore[union-attr]
    assert all(getattr(e, "output_index", 1) == 1 for e in events[5:])
    assert events[-1].type == "response.completed"
    # replayed from the database, the same events
    response_id = events[0].response.id  # type: ignore[union-attr]
    replayed = list(client.responses.retrieve(response_id, stream=True))
    assert [e.model_dump() for e in replayed] == [e.model_dump() for e in events]
    stored = client.responses.retrieve(response_id)
    assert [item.type for item in stored.output] == ["compaction", "message"]
    assert stored.output[0] == done.item  # type: ignore[union-attr]
    listed = all_items(client, conv.id)
    assert [i["type"] for i in listed] == ["message", "message", "compaction", "message"]
    assert [i.type for i in client.responses.input_items.list(response_id)] == ["message"]


@pytest.mark.parametrize("trigger_first", [True, False])
def test_compacting_a_turn_that_answers_a_tool_call(
    client: OpenAI, upstream: FakeUpstream, trigger_first: bool
) -> None:
    """The model is sent the summary, then the call this turn's output answers (it came
    before the compaction), then the output: never an output without its call."""
    conv = client.conversations.create()
    upstream.script(Reply(body=completion(tool_calls=[("call_1", "lookup", '{"q": "x"}')])))
    client.responses.create(model=MODEL, conversation=conv.id, input="Look it up")
    answer = {"type": "function_call_output", "call_id": "call_1", "output": "42"}
    trigger = {"type": "compaction_trigger"}
    upstream.script(summary_reply("A lookup was asked for."), Reply(body=completion("It is 42.")))
    response = client.responses.create(
        model=MODEL,
        conversation=conv.id,
        input=[trigger, answer] if trigger_first else [answer, trigger],  # type: ignore[list-item]
    )
    assert [item.type for item in response.output] == ["compaction", "message"]
    sent = upstream.last["messages"]
    assert sent[0]["content"].endswith("A lookup was asked for.")
    assert sent[1]["role"] == "assistant" and sent[1]["tool_calls"][0]["id"] == "call_1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "42"}
    assert len(sent) == 3
    assert "tool result for call_1: 42" in summary_calls(upstream)[-1]["messages"][1]["content"]
    listed = all_items(client, conv.id)
    assert [i["type"] for i in listed] == [
        "message",
        "function_call",
        "function_call_output",
        "compaction",
        "message",
    ]
    upstream.script(Reply(body=completion("ok")))
    client.responses.create(model=MODEL, conversation=conv.id, input="Thanks", truncation="auto")
    assert [m["content"] for m in upstream.last["messages"]][1:] == ["It is 42.", "Thanks"]
