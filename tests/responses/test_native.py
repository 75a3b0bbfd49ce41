"""``--upstream-api responses`` (issue 17): the model server's own ``/v1/responses`` is
called with the history as ``input`` and ``store: false``; its output items (its
reasoning items included) are stored and given back on the next turn unchanged. With
truncation and compaction (issue 18) the items sent are chosen as on the chat path."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from openai import OpenAI

from convostore.service.responses.compaction import PROMPT
from tests.responses.fake_upstream import MODEL, FakeUpstream, Reply, fake_tokens
from tests.responses.test_background import until
from tests.responses.test_background_stream import cancelled_while_streamed, opened_then_left

pytestmark = pytest.mark.parametrize("settings_overrides", [{"upstream_api": "responses"}])


def answer(text: str, reasoning: str | None = None, n: int = 0) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if reasoning is not None:
        output.append(
            {
                "id": f"rs_up{n}",
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": reasoning}],
            }
        )
    output.append(
        {
            "id": f"msg_up{n}",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    )
    return {
        "id": f"resp_upstream{n}",
        "object": "response",
        "status": "completed",
        "output": output,
        "usage": {
            "input_tokens": 5,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 2,
            "output_tokens_details": {"reasoning_tokens": 1},
            "total_tokens": 7,
        },
    }


def test_turns_through_the_model_servers_responses(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    upstream.script(
        Reply(body=answer("Hi Ana", reasoning="greet her", n=1)),
        Reply(body=answer("Ana", n=2)),
        Reply(body=answer("Still Ana", n=3)),
    )
    conv = client.conversations.create()
    first = client.responses.create(
        model="qwen", conversation=conv.id, input="I'm Ana", instructions="Be kind."
    )
    assert upstream.paths == ["/v1/responses"]
    sent = upstream.last
    assert sent["store"] is False and sent["model"] == "qwen"
    assert sent["instructions"] == "Be kind."
    assert [i["type"] for i in sent["input"]] == ["message"]
    assert [i.type for i in first.output] == ["reasoning", "message"]
    assert first.output_text == "Hi Ana" and first.output[1].id == "msg_up1"
    assert first.usage is not None and first.usage.total_tokens == 7
    held = [
        i.model_dump(exclude_none=True)
        for i in client.conversations.items.list(conv.id, order="asc")
    ]
    assert held[1:] == [o.model_dump(exclude_none=True) for o in first.output]

    second = client.responses.create(model="qwen", conversation=conv.id, input="Who am I?")
    assert second.output_text == "Ana"
    # The whole history, reasoning item included, as the model server made it.
    sent = upstream.last["input"]
    assert [i["type"] for i in sent] == ["message", "reasoning", "message", "message"]
    assert sent[1]["content"] == [{"type": "reasoning_text", "text": "greet her"}]
    assert sent[1]["id"] == "rs_up1"

    # A previous_response_id chain works the same.
    third = client.responses.create(model="qwen", input="And now?", previous_response_id=second.id)
    assert third.output_text == "Still Ana"
    assert [i["type"] for i in upstream.last["input"]] == ["message", "message", "message"]
    assert client.responses.retrieve(third.id).output_text == "Still Ana"


def events(text: list[str], n: int = 0, final: str = "response.completed") -> list[Any]:
    """The events a Responses model server streams (vLLM's shapes, abridged)."""
    item = answer("".join(text), n=n)["output"][0]
    opened = {**item, "status": "in_progress", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    out: list[Any] = [
        {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_up", "status": "in_progress", "output": []}},
        {"type": "response.in_progress", "sequence_number": 1, "response": {"id": "resp_up", "status": "in_progress", "output": []}},
        {"type": "response.output_item.added", "sequence_number": 2, "output_index": 0, "item": opened},
        {"type": "response.content_part.added", "sequence_number": 3, "item_id": item["id"], "output_index": 0, "content_index": 0, "part": part},
    ]
    out += [
        {"type": "response.output_text.delta", "sequence_number": 4 + k, "item_id": item["id"], "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}
        for k, piece in enumerate(text)
    ]
    done_text = "".join(text)
    out += [
        {"type": "response.output_text.done", "sequence_number": 90, "item_id": item["id"], "output_index": 0, "content_index": 0, "text": done_text, "logprobs": []},
        {"type": "response.content_part.done", "sequence_number": 91, "item_id": item["id"], "output_index": 0, "content_index": 0, "part": {**part, "text": done_text}},
        {"type": "response.output_item.done", "sequence_number": 92, "output_index": 0, "item": item},
        {"type": final, "sequence_number": 93, "response": answer(done_text, n=n)},
    ]
    return out


def test_streamed_turns_pass_the_events_through(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    upstream.script(Reply(chunks=events(["Hi ", "Ana"], n=1), done=False))
    conv = client.conversations.create()
    with client.responses.stream(model="qwen", conversation=conv.id, input="I'm Ana") as stream:
        seen = list(stream)
        final = stream.get_final_response()
    assert upstream.last["stream"] is True and upstream.last["store"] is False
    assert [e.sequence_number for e in seen] == list(range(len(seen)))
    assert seen[0].type == "response.created" and seen[0].response.id == final.id
    assert [e.delta for e in seen if e.type == "response.output_text.delta"] == ["Hi ", "Ana"]
    assert seen[-1].type == "response.completed"
    assert final.id.startswith("resp_") and final.id != "resp_up"
    assert final.output_text == "Hi Ana" and final.output[0].id == "msg_up1"
    assert final.conversation is not None and final.conversation.id == conv.id
    held = [i.model_dump(exclude_none=True) for i in client.conversations.items.list(conv.id, order="asc")]
    assert held[1] == final.output[0].model_dump(exclude_none=True)
    assert client.responses.retrieve(final.id).output_text == "Hi Ana"


def test_streamed_deltas_padded_as_the_request_asks(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    """The model server's deltas get this request's obfuscation: padded to 16 characters
    by default whatever the model server sent, none with include_obfuscation false."""
    theirs = events(["Hi ", "Ana"], n=1)
    for event in theirs:
        if event["type"].endswith(".delta"):
            event["obfuscation"] = "zz"
    upstream.script(Reply(chunks=theirs, done=False), Reply(chunks=theirs, done=False))
    padded = list(client.responses.create(model="qwen", input="I'm Ana", stream=True))
    plain = list(
        client.responses.create(
            model="qwen", input="I'm Ana", stream=True,
            stream_options={"include_obfuscation": False},
        )
    )  # fmt: skip
    deltas = [e for e in padded if e.type == "response.output_text.delta"]
    assert [len(e.obfuscation or "") for e in deltas] == [13, 13]
    assert all(e.obfuscation != "zz" and e.obfuscation.isalnum() for e in deltas)  # type: ignore[union-attr]
    plain_deltas = [e for e in plain if e.type == "response.output_text.delta"]
    assert [getattr(e, "obfuscation", None) for e in plain_deltas] == [None, None]


def test_a_stream_that_stops_stores_nothing(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    upstream.script(Reply(chunks=events(["Hi"], n=1)[:5], done=False))
    conv = client.conversations.create()
    with client.responses.stream(model="qwen", conversation=conv.id, input="x") as stream:
        kinds = [e.type for e in stream]
    assert kinds[-1] == "response.failed"
    assert list(client.conversations.items.list(conv.id)) == []


def test_background_in_this_mode(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    release = threading.Event()
    upstream.script(Reply(body=answer("Later, Ana", reasoning="think", n=1), release=release))
    conv = client.conversations.create()
    started = client.responses.create(
        model="qwen", input="I'm Ana", background=True, conversation=conv.id
    )
    assert started.status == "queued" and started.background is True
    until(lambda: upstream.requests, "the model server to be called")
    assert upstream.last["store"] is False and "background" not in upstream.last
    release.set()
    done = until(
        lambda: (r := client.responses.retrieve(started.id)).status == "completed" and r,
        "the background response to complete",
    )
    assert [o.type for o in done.output] == ["reasoning", "message"]
    assert done.output_text == "Later, Ana"
    held = [i.model_dump(exclude_none=True) for i in client.conversations.items.list(conv.id)]
    assert held[::-1][1:] == [o.model_dump(exclude_none=True) for o in done.output]


def test_background_stream_in_this_mode_resumes(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    """background and stream: the model server's events are recorded as the chat path's
    are; the client leaves, the run goes on, GET ?stream=true&starting_after=N resumes
    from any point, and the turn is written back as a native stream's is."""
    release = threading.Event()
    upstream.script(Reply(chunks=events(["Hi ", "Ana"], n=1), done=False, release=release))
    conv = client.conversations.create()
    response_id = opened_then_left(client, conv.id, "I'm Ana")
    until(lambda: upstream.requests, "the model server to be called")
    sent = upstream.last
    assert sent["stream"] is True and sent["store"] is False and "background" not in sent
    release.set()
    done = until(
        lambda: (r := client.responses.retrieve(response_id)).status == "completed" and r,
        "the response to complete without its client",
    )
    assert done.output_text == "Hi Ana" and done.output[0].id == "msg_up1"
    held = [i.model_dump(exclude_none=True) for i in client.conversations.items.list(conv.id)]
    assert [i["type"] for i in held] == ["message", "message"]
    assert held[0] == done.output[0].model_dump(exclude_none=True)

    rest = list(client.responses.retrieve(response_id, stream=True, starting_after=1))
    assert [e.sequence_number for e in rest] == list(range(2, 2 + len(rest)))
    assert rest[0].type == "response.in_progress"  # the model server's created is not repeated
    assert [e.type for e in rest].count("response.in_progress") == 1
    assert rest[-1].type == "response.completed" and rest[-1].response.id == response_id
    assert rest[-1].response.output[0].model_dump() == done.output[0].model_dump()
    deltas = [e for e in rest if e.type == "response.output_text.delta"]
    assert [e.delta for e in deltas] == ["Hi ", "Ana"]
    assert [len(e.obfuscation or "") for e in deltas] == [13, 13]  # the request's default
    # From the middle: exactly the events after N.
    middle = deltas[0].sequence_number
    tail = list(client.responses.retrieve(response_id, stream=True, starting_after=middle))
    assert [e.model_dump() for e in tail] == [
        e.model_dump() for e in rest if e.sequence_number > middle
    ]
    assert tail[0].type == "response.output_text.delta" and tail[0].delta == "Ana"
    with client.responses.stream(response_id=response_id) as again:
        assert again.get_final_response().output_text == "Hi Ana"
    assert len(upstream.requests) == 1


def test_background_stream_in_this_mode_follows_the_request_obfuscation(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    theirs = events(["Hi ", "Ana"], n=1)
    for event in theirs:
        if event["type"].endswith(".delta"):
            event["obfuscation"] = "zz"
    upstream.script(Reply(chunks=theirs, done=False))
    seen = list(
        client.responses.create(
            model="qwen", input="x", background=True, stream=True,
            stream_options={"include_obfuscation": False},
        )
    )  # fmt: skip
    assert [e.sequence_number for e in seen] == list(range(len(seen)))
    assert seen[-1].type == "response.completed"
    deltas = [e for e in seen if e.type == "response.output_text.delta"]
    assert [getattr(e, "obfuscation", None) for e in deltas] == [None, None]


def test_background_stream_in_this_mode_cancelled(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    held = Reply(chunks=events(["never"], n=1), done=False, release=threading.Event())
    cancelled_while_streamed(client, upstream, held)


def test_background_stream_in_this_mode_that_stops(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    """The model server's stream ends early, or it refuses the call: the response is
    stored failed, its stream ends with response.failed, nothing is appended to the
    conversation."""
    upstream.script(
        Reply(chunks=events(["Hi"], n=1)[:5], done=False),
        Reply(status=500, body={"error": {"message": "boom"}}),
    )
    conv = client.conversations.create()
    for _ in range(2):
        seen = list(
            client.responses.create(
                model="qwen", input="x", background=True, stream=True, conversation=conv.id
            )
        )
        assert [e.sequence_number for e in seen] == list(range(len(seen)))
        assert seen[-1].type == "response.failed" and seen[-1].response.status == "failed"
        assert client.responses.retrieve(seen[0].response.id).status == "failed"
        assert list(client.conversations.items.list(conv.id)) == []
    assert [e.type for e in seen] == ["response.created", "response.queued", "response.failed"]
    assert len(upstream.requests) == 2


# -- issue 18 through the model server's own /responses: the view context.py chooses ------

WINDOW = 2000
MAX_OUTPUT = 200
SHOWN_AS = "Summary of the earlier part of this conversation:\n\n"


def small_window(upstream: FakeUpstream) -> None:
    upstream.max_model_len = WINDOW
    upstream.tokenizer = True


def input_tokens(body: dict[str, Any]) -> int:
    """The tokens of a /responses request by the scripted tokenizer: every string of
    every input item (as convostore counts an item, its ids and tags aside)."""

    def texts(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            skip = ("id", "type", "status", "call_id", "role")
            return [s for k, v in value.items() if k not in skip for s in texts(v)]
        if isinstance(value, list):
            return [s for v in value for s in texts(v)]
        return []

    return sum(fake_tokens("\n".join(texts(item))) + 8 for item in body["input"])


def assert_calls_whole(items: list[dict[str, Any]]) -> None:
    called = [i["call_id"] for i in items if i["type"] == "function_call"]
    answered = [i["call_id"] for i in items if i["type"] == "function_call_output"]
    assert called == answered, items
    for call_id in called:
        kinds = [i["type"] for i in items if i.get("call_id") == call_id]
        assert kinds == ["function_call", "function_call_output"], items


def call(call_id: str, n: int) -> dict[str, Any]:
    reply = answer("", n=n)
    reply["output"] = [
        {
            "id": f"fc_up{n}",
            "type": "function_call",
            "call_id": call_id,
            "name": "lookup",
            "arguments": '{"q": "x"}',
            "status": "completed",
        }
    ]
    return reply


def text_of(item: dict[str, Any]) -> str:
    return "".join(part["text"] for part in item["content"])


def listed(client: OpenAI, conversation_id: str) -> list[dict[str, Any]]:
    return [
        i.model_dump(exclude_none=True)
        for i in client.conversations.items.list(conversation_id, order="asc")
    ]


def test_truncation_auto_through_the_model_servers_responses(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    small_window(upstream)
    conv = client.conversations.create()
    pending: str | None = None
    for turn in range(20):
        upstream.script(
            Reply(body=call(f"call_{turn}", turn))
            if turn % 5 == 2
            else Reply(body=answer(f"Answer {turn}: " + "words " * 60, n=turn))
        )
        given: Any = (
            [{"type": "function_call_output", "call_id": pending, "output": "found " * 40}]
            if pending is not None
            else f"Question {turn}: " + "tell me more " * 25
        )
        client.responses.create(
            model=MODEL,
            conversation=conv.id,
            input=given,
            truncation="auto",
            max_output_tokens=MAX_OUTPUT,
        )
        pending = f"call_{turn}" if turn % 5 == 2 else None
        sent = upstream.last
        assert upstream.paths[-1] == "/v1/responses" and sent["store"] is False
        assert input_tokens(sent) <= WINDOW - MAX_OUTPUT, turn
        assert_calls_whole(sent["input"])
        assert sent["input"][-1]["type"] in ("message", "function_call_output")
    # the model saw only the newest turns by the end; the whole transcript is kept
    assert "Question 0:" not in str(upstream.last["input"])
    assert "Question 19:" in str(upstream.last["input"])
    stored = listed(client, conv.id)
    assert len(stored) == 40 and "Question 0:" in str(stored[0])


def assert_starts_at_summary(body: dict[str, Any], summary: str) -> None:
    first = body["input"][0]
    assert first["type"] == "message" and first["role"] == "user"
    assert text_of(first) == SHOWN_AS + summary


def test_compaction_by_threshold_through_the_model_servers_responses(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    small_window(upstream)
    conv = client.conversations.create()
    management = [{"type": "compaction", "compact_threshold": 700}]
    made: Any = None
    for turn in range(8):
        upstream.script(
            Reply(body=answer(f"Reply {turn} " + "blah " * 50, n=turn)),
            Reply(body=answer(f"Answered {turn}", n=100 + turn)),
        )
        before = len(upstream.requests)
        response = client.responses.create(
            model=MODEL,
            conversation=conv.id,
            input=f"Turn {turn} " + "text " * 50,
            extra_body={"context_management": management},
        )
        if len(upstream.requests) - before == 2:  # a summary call, then the turn
            made = response
            break
        upstream.replies.clear()  # the second scripted answer was not asked for
        assert [item.type for item in response.output] == ["message"]
    assert made is not None and turn >= 1
    # the summary was written through /responses, covering the history and this input
    assert upstream.paths[-2:] == ["/v1/responses", "/v1/responses"]
    summary_call = upstream.requests[-2]
    assert summary_call["instructions"] == PROMPT and summary_call["store"] is False
    assert "Turn 0 " in str(summary_call["input"]) and f"Turn {turn} " in str(summary_call["input"])
    summary = (f"Reply {turn} " + "blah " * 50).strip()
    assert [item.type for item in made.output] == ["compaction", "message"]
    assert made.output[0].encrypted_content == "convostore-summary:v1\n" + summary
    assert made.output_text == f"Answered {turn}"
    # the model answered from the summary, then the input verbatim
    assert_starts_at_summary(upstream.last, summary)
    assert [text_of(i) for i in upstream.last["input"][1:]] == [f"Turn {turn} " + "text " * 50]
    items = listed(client, conv.id)
    assert [i["type"] for i in items[-3:]] == ["message", "compaction", "message"]
    assert items[-2] == made.output[0].model_dump(exclude_none=True)
    for later in range(3):
        upstream.script(Reply(body=answer(f"After {later}", n=200 + later)))
        client.responses.create(
            model=MODEL,
            conversation=conv.id,
            input=f"Later {later}",
            extra_body={"context_management": [{"type": "compaction", "compact_threshold": 5000}]},
        )
        assert_starts_at_summary(upstream.last, summary)
        sent = upstream.last["input"]
        assert text_of(sent[1]) == f"Answered {turn}"
        assert len(sent) == 2 + 2 * later + 1
        assert "Turn 0 " not in str(sent) and f"Turn {turn} " not in str(sent)
    everything = listed(client, conv.id)
    assert len(everything) == len(items) + 6
    assert "Turn 0 " in str(everything[0])
    assert [i["type"] for i in everything].count("compaction") == 1


def test_compaction_by_trigger_through_the_model_servers_responses(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    small_window(upstream)
    conv = client.conversations.create()
    for turn in range(3):
        upstream.script(Reply(body=answer(f"Early reply {turn}", n=turn)))
        client.responses.create(model=MODEL, conversation=conv.id, input=f"Early {turn}")
    upstream.script(
        Reply(body=answer("Three early things.", n=10)), Reply(body=answer("Sure.", n=11))
    )
    response = client.responses.create(
        model=MODEL,
        conversation=conv.id,
        input=[{"type": "compaction_trigger"}, {"role": "user", "content": "Go on"}],
    )
    assert [item.type for item in response.output] == ["compaction", "message"]
    assert response.output_text == "Sure."
    summarised = str(upstream.requests[-2]["input"])
    assert upstream.requests[-2]["instructions"] == PROMPT
    assert "Early 0" in summarised and "user: Go on" in summarised
    assert_starts_at_summary(upstream.last, "Three early things.")
    assert [text_of(i) for i in upstream.last["input"][1:]] == ["Go on"]
    for turn in range(3):
        upstream.script(Reply(body=answer(f"Late reply {turn}", n=20 + turn)))
        client.responses.create(model=MODEL, conversation=conv.id, input=f"Late {turn}")
        assert_starts_at_summary(upstream.last, "Three early things.")
        assert text_of(upstream.last["input"][1]) == "Sure."
        assert "Early 0" not in str(upstream.last["input"])
        assert len(upstream.last["input"]) == 2 + 2 * turn + 1
    everything = listed(client, conv.id)
    assert len(everything) == 6 + 3 + 6
    assert [i["type"] for i in everything[6:9]] == ["message", "compaction", "message"]
    assert everything[7]["id"] == response.output[0].id
    # POST /v1/responses/compact writes its summary through /responses too
    upstream.script(Reply(body=answer("Later turns too.", n=30)))
    compacted = client.responses.compact(model=MODEL, extra_body={"conversation": conv.id})
    assert upstream.paths[-1] == "/v1/responses"
    assert upstream.last["instructions"] == PROMPT
    assert compacted.output[-1].encrypted_content.endswith("Later turns too.")  # type: ignore[union-attr]
    assert listed(client, conv.id)[-1]["id"] == compacted.output[-1].id


def test_a_streamed_native_compaction_is_output_item_zero(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    small_window(upstream)
    conv = client.conversations.create()
    upstream.script(Reply(body=answer("Early reply", n=1)))
    client.responses.create(model=MODEL, conversation=conv.id, input="Early")
    upstream.script(
        Reply(body=answer("An early question.", n=2)),
        Reply(chunks=events(["Hi ", "again"], n=3), done=False),
    )
    with client.responses.stream(
        model=MODEL,
        conversation=conv.id,
        input=[{"type": "compaction_trigger"}, {"role": "user", "content": "Go on"}],
    ) as stream:
        seen = list(stream)
        final = stream.get_final_response()
    assert [e.sequence_number for e in seen] == list(range(len(seen)))
    assert upstream.last["stream"] is True
    assert_starts_at_summary(upstream.last, "An early question.")
    added = [e for e in seen if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.type) for e in added] == [(0, "compaction"), (1, "message")]
    assert all(
        e.output_index == 1  # type: ignore[union-attr]
        for e in seen
        if e.type.startswith("response.output_text") or e.type.startswith("response.content_part")
    )
    assert [item.type for item in final.output] == ["compaction", "message"]
    assert final.output_text == "Hi again"
    everything = listed(client, conv.id)
    assert [i["type"] for i in everything[2:]] == ["message", "compaction", "message"]
    assert everything[3] == final.output[0].model_dump(exclude_none=True)
    assert client.responses.retrieve(final.id).output[0].type == "compaction"


def test_a_background_native_compaction_is_its_first_output_item(
    client: OpenAI, upstream: FakeUpstream, settings_overrides: Any
) -> None:
    small_window(upstream)
    upstream.script(Reply(body=answer("First answer.", n=1)))
    previous = client.responses.create(model=MODEL, input="First question")
    upstream.script(
        Reply(body=answer("A first question.", n=2)), Reply(body=answer("Second answer.", n=3))
    )
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
    assert done.output[0].encrypted_content.endswith("A first question.")  # type: ignore[union-attr]
    assert done.output_text == "Second answer."
    # a previous_response_id chain goes on from the summary
    upstream.script(Reply(body=answer("Third answer.", n=4)))
    client.responses.create(model=MODEL, input="Third question", previous_response_id=done.id)
    assert [text_of(i) for i in upstream.last["input"]] == [
        SHOWN_AS + "A first question.",
        "Second answer.",
        "Third question",
    ]
