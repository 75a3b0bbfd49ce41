"""The conversation turns vllm-project/agentic-api recorded against OpenAI (issue 17),
replayed against convostore's gateway with the scripted model server.

Source: that repository's recording script for its ``text_only`` cassettes (the prompts,
the order of the turns, which turn continues which, and the answers OpenAI gave) and its
replay tests of them. Each test names its cassette. The model server is scripted with
OpenAI's recorded answers; what is checked is what the client gets (status codes, the
Response object's shape, ids, the text) and what convostore sends the model server for
each turn (the history OpenAI's answer shows it saw).
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from openai.types.responses import Response

from tests.responses.fake_upstream import FakeUpstream, Reply, chunks, completion

# Every field of the Response object OpenAI answers (openai 3.63's Response, required
# and optional alike), which convostore's answers carry too.
RESPONSE_FIELDS = set(Response.model_fields)


def post(base_url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    with httpx.Client(timeout=30) as http:
        answer = http.post(base_url + "/responses", json={"model": "gpt-4o", **body})
    return answer.status_code, answer.json()


def streamed(base_url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST", base_url + "/responses", json={"model": "gpt-4o", "stream": True, **body}
        ) as answer,
    ):
        assert answer.status_code == 200
        for line in answer.iter_lines():
            if line.startswith("data: "):
                events.append(orjson.loads(line[6:]))
    return events


def new_conversation(base_url: str) -> str:
    with httpx.Client(timeout=30) as http:
        answer = http.post(base_url + "/conversations", json={})
    assert answer.status_code == 200
    conversation_id: str = answer.json()["id"]
    return conversation_id


def text_of(response: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def completed(response: dict[str, Any], text: str) -> None:
    """OpenAI's shape of a completed text turn."""
    assert response["object"] == "response" and response["id"].startswith("resp_")
    assert response["status"] == "completed" and response["error"] is None
    assert set(response) | _OPTIONAL_ABSENT >= RESPONSE_FIELDS, RESPONSE_FIELDS - set(response)
    assert [item["type"] for item in response["output"]] == ["message"]
    message = response["output"][0]
    assert message["id"].startswith("msg_") and message["role"] == "assistant"
    assert message["status"] == "completed"
    assert text_of(response) == text


# Fields of OpenAI's Response that its answers leave out unless asked for.
_OPTIONAL_ABSENT = {
    "access_programs",
    "background_options",
    "context_management",
    "conversation",  # when the response is in none
    "image",
    "input_transformations",
    "moderation",
    "output_text",  # the SDK's property, not a field of the wire format
    "prompt",
    "prompt_cache_diagnostics",
    "prompt_cache_options",
    "tool_usage",
}


def seen(upstream: FakeUpstream, index: int) -> list[str]:
    """The texts the model server was sent for turn ``index``, in order."""
    return [m["content"] for m in upstream.requests[index]["messages"]]


def test_conv_two_turn_gpt_4o_nonstreaming(base_url: str, upstream: FakeUpstream) -> None:
    """Cassette conv-two-turn-gpt-4o-nonstreaming.yaml."""
    upstream.script(Reply(body=completion("OK")), Reply(body=completion("CHERRY")))
    conv = new_conversation(base_url)
    status, first = post(
        base_url, {"input": "Remember the word CHERRY. Just say: OK", "conversation": conv}
    )
    assert status == 200
    completed(first, "OK")
    assert first["conversation"] == {"id": conv}
    status, second = post(
        base_url, {"input": "What word did I ask you to remember?", "conversation": conv}
    )
    assert status == 200
    completed(second, "CHERRY")
    assert second["id"] != first["id"] and second["previous_response_id"] is None
    assert seen(upstream, 1) == [
        "Remember the word CHERRY. Just say: OK",
        "OK",
        "What word did I ask you to remember?",
    ]


def test_conv_two_turn_gpt_4o_streaming(base_url: str, upstream: FakeUpstream) -> None:
    """Cassette conv-two-turn-gpt-4o-streaming.yaml."""
    upstream.script(
        Reply(chunks=chunks(text=["O", "K"], finish="stop")),
        Reply(chunks=chunks(text=["MAN", "GO"], finish="stop")),
    )
    conv = new_conversation(base_url)
    first = streamed(
        base_url, {"input": "Remember the word MANGO. Just say: OK", "conversation": conv}
    )
    second = streamed(
        base_url, {"input": "What word did I ask you to remember?", "conversation": conv}
    )
    for events, text in ((first, "OK"), (second, "MANGO")):
        kinds = [e["type"] for e in events]
        assert kinds[:2] == ["response.created", "response.in_progress"]
        assert kinds[-1] == "response.completed"
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert (
            "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == text
        )
        completed(events[-1]["response"], text)
        for event in events:
            if "response" in event:
                assert event["response"]["conversation"] == {"id": conv}
    assert second[-1]["response"]["id"] != first[-1]["response"]["id"]
    assert seen(upstream, 1)[-2:] == ["OK", "What word did I ask you to remember?"]


def test_conv_isolation_gpt_4o_nonstreaming(base_url: str, upstream: FakeUpstream) -> None:
    """Cassette conv-isolation-gpt-4o-nonstreaming.yaml: two conversations, three turns
    each, sharing nothing."""
    upstream.script(
        Reply(body=completion("OK")),
        Reply(body=completion("OK")),
        Reply(body=completion("ORANGE\nVIOLET")),
        Reply(body=completion("OK")),
        Reply(body=completion("OK")),
        Reply(body=completion("PURPLE\nINDIGO")),
    )
    last = "List every word I asked you to remember, in order, one per line."
    answers = []
    conversations = []
    for first_word, second_word in (("ORANGE", "VIOLET"), ("PURPLE", "INDIGO")):
        conv = new_conversation(base_url)
        conversations.append(conv)
        for prompt in (
            f"Remember the word {first_word}. Say: OK",
            f"Also remember the word {second_word}. Say: OK",
            last,
        ):
            status, answer = post(base_url, {"input": prompt, "conversation": conv})
            assert status == 200
            answers.append(answer)
    assert conversations[0] != conversations[1]
    completed(answers[2], "ORANGE\nVIOLET")
    completed(answers[5], "PURPLE\nINDIGO")
    assert seen(upstream, 5) == [
        "Remember the word PURPLE. Say: OK",
        "OK",
        "Also remember the word INDIGO. Say: OK",
        "OK",
        last,
    ]


def test_conv_multi_turn_single_branch_gpt_4o_nonstreaming(
    base_url: str, upstream: FakeUpstream
) -> None:
    """Cassette conv-multi-turn-single-branch-gpt-4o-nonstreaming.yaml: three turns in a
    conversation (4, 5, 7), then a turn continuing turn 1 by previous_response_id: OpenAI
    answered 5, so it saw turn 1 only."""
    upstream.script(*(Reply(body=completion(n)) for n in ("4", "5", "7", "5")))
    conv = new_conversation(base_url)
    prompts = [
        "What is 2+2? Reply with just the number.",
        "Add 1 to your previous answer. Reply with just the number.",
        "Add 2 to your previous answer. Reply with just the number.",
    ]
    turns = []
    for prompt in prompts:
        status, answer = post(base_url, {"input": prompt, "conversation": conv})
        assert status == 200
        turns.append(answer)
    status, branch = post(base_url, {"input": prompts[1], "previous_response_id": turns[0]["id"]})
    assert status == 200
    completed(branch, "5")
    assert branch["previous_response_id"] == turns[0]["id"] and "conversation" not in branch
    assert seen(upstream, 3) == [prompts[0], "4", prompts[1]]
    # The branch left the conversation as it was.
    with httpx.Client() as http:
        items = http.get(f"{base_url}/conversations/{conv}/items?limit=100").json()["data"]
    assert len(items) == 6


def test_conv_multi_branch_multi_turn_gpt_4o_nonstreaming(
    base_url: str, upstream: FakeUpstream
) -> None:
    """Cassette conv-multi-branch-multi-turn-gpt-4o-nonstreaming.yaml: 4, then 6 in the
    conversation; branch 1 from turn 1 (5, then 8 from it); branch 2 from turn 2 (10)."""
    upstream.script(*(Reply(body=completion(n)) for n in ("4", "6", "5", "8", "10")))
    conv = new_conversation(base_url)
    t1 = post(
        base_url, {"input": "What is 2+2? Reply with just the number.", "conversation": conv}
    )[1]
    add2 = "Add 2 to your previous answer. Reply with just the number."
    t2 = post(base_url, {"input": add2, "conversation": conv})[1]
    t3 = post(
        base_url, {"input": "Add 1. Reply with just the number.", "previous_response_id": t1["id"]}
    )[1]
    add3 = "Add 3 to your previous answer. Reply with just the number."
    t4 = post(base_url, {"input": add3, "previous_response_id": t3["id"]})[1]
    t5 = post(
        base_url, {"input": "Add 4. Reply with just the number.", "previous_response_id": t2["id"]}
    )[1]
    for answer, text in ((t1, "4"), (t2, "6"), (t3, "5"), (t4, "8"), (t5, "10")):
        completed(answer, text)
    assert seen(upstream, 3) == [
        "What is 2+2? Reply with just the number.",
        "4",
        "Add 1. Reply with just the number.",
        "5",
        add3,
    ]
    # Turn 2 was made in the conversation: continuing it gives its own turn (OpenAI's
    # answer, 10, is 6 + 4 either way).
    assert seen(upstream, 4) == [add2, "6", "Add 4. Reply with just the number."]


def test_conv_store_false_followup_gpt_4o_nonstreaming(
    base_url: str, upstream: FakeUpstream
) -> None:
    """Cassette conv-store-false-followup-gpt-4o-nonstreaming.yaml: a store false turn in
    a conversation still sees it, and is still appended to it."""
    upstream.script(Reply(body=completion("OK")), Reply(body=completion("LEMON")))
    conv = new_conversation(base_url)
    first = post(
        base_url, {"input": "Remember the word LEMON. Just say: OK", "conversation": conv}
    )[1]
    status, second = post(
        base_url,
        {"input": "What word did I ask you to remember?", "conversation": conv, "store": False},
    )
    assert status == 200
    completed(second, "LEMON")
    assert second["store"] is False
    assert seen(upstream, 1)[:2] == ["Remember the word LEMON. Just say: OK", "OK"]
    with httpx.Client() as http:
        items = http.get(f"{base_url}/conversations/{conv}/items?order=asc").json()["data"]
        assert [i["type"] for i in items] == ["message"] * 4
        assert items[3]["id"] == second["output"][0]["id"]
        assert http.get(f"{base_url}/responses/{first['id']}").status_code == 200
        assert http.get(f"{base_url}/responses/{second['id']}").status_code == 404


def test_resp_no_store_gpt_4o_nonstreaming(base_url: str, upstream: FakeUpstream) -> None:
    """Cassette resp-no-store-gpt-4o-nonstreaming.yaml: continuing a store false response
    is an error naming previous_response_id, and reaches no model."""
    upstream.script(Reply(body=completion("NOT STORED")))
    status, first = post(base_url, {"input": "Say: NOT STORED", "store": False})
    assert status == 200
    completed(first, "NOT STORED")
    status, refused = post(base_url, {"input": "follow up", "previous_response_id": first["id"]})
    assert status == 404
    assert refused["error"]["param"] == "previous_response_id"
    assert refused["error"]["code"] == "previous_response_not_found"
    assert first["id"] in refused["error"]["message"]
    assert len(upstream.requests) == 1


# -- answers OpenAI recorded in that repository's responses cassettes (2026) ---------------

# The fields of OpenAI's streamed Response objects (cassette
# responses/text-single-stream.yaml, January 2026; frequency_penalty and presence_penalty
# are in its later recordings, text-max_output_tokens-incomplete-stream.yaml, February
# 2026). Non-streamed answers add `billing` (every one recorded, no streamed event);
# `conversation` is there only when the response is in one.
RECORDED_FIELDS = {
    "background", "completed_at", "created_at", "error", "frequency_penalty", "id",
    "incomplete_details", "instructions", "max_output_tokens", "max_tool_calls", "metadata",
    "model", "object", "output", "parallel_tool_calls", "presence_penalty",
    "previous_response_id", "prompt_cache_key", "prompt_cache_retention", "reasoning",
    "safety_identifier", "service_tier", "status", "store", "temperature", "text",
    "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "usage", "user",
}  # fmt: skip

# Their values there, for a request that sets none of them. reasoning is the request's
# ({"effort": null, "summary": null} unless asked): the recordings' "medium" is the
# default of gpt-5's reasoning models, which convostore cannot know a model server has.
RECORDED_DEFAULTS = {
    "background": False, "error": None, "frequency_penalty": 0.0, "incomplete_details": None,
    "instructions": None, "max_output_tokens": None, "max_tool_calls": None, "metadata": {},
    "parallel_tool_calls": True, "presence_penalty": 0.0, "previous_response_id": None,
    "prompt_cache_key": None, "prompt_cache_retention": None, "safety_identifier": None,
    "service_tier": "default", "store": True, "temperature": 1.0, "text": {"format":
    {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto", "tools": [],
    "top_logprobs": 0, "top_p": 1.0, "truncation": "disabled", "user": None,
}  # fmt: skip


def test_text_single(base_url: str, upstream: FakeUpstream) -> None:
    """Cassette responses/text-single.yaml: one stateless turn, its fields and defaults."""
    upstream.script(Reply(body=completion("Paris.")))
    status, answer = post(base_url, {"input": "What is the capital of France?"})
    assert status == 200
    assert set(answer) == RECORDED_FIELDS | {"billing"}
    assert {k: answer[k] for k in RECORDED_DEFAULTS} == RECORDED_DEFAULTS
    assert answer["billing"] == {"payer": "developer"}
    assert answer["reasoning"] == {"effort": None, "summary": None}
    assert answer["completed_at"] >= answer["created_at"]
    assert set(answer["usage"]) == {
        "input_tokens", "input_tokens_details", "output_tokens", "output_tokens_details",
        "total_tokens",
    }  # fmt: skip
    message = answer["output"][0]
    assert set(message) == {"id", "type", "status", "role", "content"}
    assert message["content"] == [
        {"type": "output_text", "text": "Paris.", "annotations": [], "logprobs": []}
    ]


def test_text_single_stream(base_url: str, upstream: FakeUpstream) -> None:
    """Cassette responses/text-single-stream.yaml: the events of a streamed text turn, in
    order, with the fields of each: deltas padded by `obfuscation` to 16 characters
    ("Paris" + 11), service_tier "auto" until the final event says "default", no
    `billing`."""
    upstream.script(Reply(chunks=chunks(text=["Paris", "."], finish="stop")))
    events = streamed(base_url, {"input": "What is the capital of France?"})
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    fields = {e["type"]: set(e) for e in events}
    assert fields["response.output_item.added"] == {
        "type",
        "sequence_number",
        "output_index",
        "item",
    }
    part = {"type", "sequence_number", "item_id", "output_index", "content_index", "part"}
    assert fields["response.content_part.added"] == part
    assert fields["response.content_part.done"] == part
    assert fields["response.output_text.delta"] == {
        "type", "sequence_number", "item_id", "output_index", "content_index", "delta", "logprobs",
        "obfuscation",
    }  # fmt: skip
    assert [len(e["obfuscation"]) for e in events if "obfuscation" in e] == [11, 15]
    assert fields["response.output_text.done"] == {
        "type", "sequence_number", "item_id", "output_index", "content_index", "text", "logprobs",
    }  # fmt: skip
    created, done = events[0]["response"], events[-1]["response"]
    assert created["status"] == "in_progress" and created["usage"] is None
    assert created["completed_at"] is None and created["output"] == []
    assert set(created) == set(done) == RECORDED_FIELDS
    assert [e["response"]["service_tier"] for e in (events[0], events[1], events[-1])] == [
        "auto",
        "auto",
        "default",
    ]
    assert done["temperature"] == done["top_p"] == 1.0
    assert events[2]["item"] == {
        "id": events[2]["item"]["id"], "type": "message", "status": "in_progress",
        "content": [], "role": "assistant",
    }  # fmt: skip
    assert events[3]["part"] == {
        "type": "output_text",
        "annotations": [],
        "logprobs": [],
        "text": "",
    }
    assert done["output"][0] == events[-2]["item"]


def test_text_max_output_tokens_incomplete(base_url: str, upstream: FakeUpstream) -> None:
    """Cassette responses/text-max_output_tokens-incomplete.yaml: a turn cut by
    max_output_tokens is incomplete, reason max_output_tokens, completed_at null."""
    upstream.script(Reply(body=completion("- Indexes speed", finish="length")))
    status, answer = post(
        base_url, {"input": "Write exactly 20 short bullet points.", "max_output_tokens": 24}
    )
    assert status == 200
    assert answer["status"] == "incomplete"
    assert answer["incomplete_details"] == {"reason": "max_output_tokens"}
    assert answer["completed_at"] is None and answer["max_output_tokens"] == 24
    assert set(answer) == RECORDED_FIELDS | {"billing"}


def test_text_max_output_tokens_incomplete_stream(base_url: str, upstream: FakeUpstream) -> None:
    """Cassette responses/text-max_output_tokens-incomplete-stream.yaml: the streamed turn
    cut by max_output_tokens ends with response.incomplete, whose service_tier is
    "default" where the early events said "auto"; store false is echoed."""
    upstream.script(Reply(chunks=chunks(text=["- Indexes"], finish="length")))
    events = streamed(
        base_url,
        {"input": "Write exactly 20 short bullet points.", "max_output_tokens": 24, "store": False},
    )
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.incomplete"
    final = events[-1]["response"]
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [e["response"]["service_tier"] for e in (events[0], events[1], events[-1])] == [
        "auto",
        "auto",
        "default",
    ]
    for event in (events[0], events[1], events[-1]):
        assert set(event["response"]) == RECORDED_FIELDS
        assert event["response"]["store"] is False and event["response"]["max_output_tokens"] == 24


def test_errors_context_length_exceeded_stream(base_url: str, upstream: FakeUpstream) -> None:
    """Cassette responses/errors/context_length_exceeded-stream.yaml: a streamed response
    that fails after it began ends with response.failed, service_tier still "auto" (the
    failure here is the model server's stream cut off)."""
    upstream.script(Reply(chunks=chunks(text=["a", "b"], finish="stop"), cut_after=2))
    events = streamed(base_url, {"input": "hello"})
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert set(failed) == RECORDED_FIELDS
    assert failed["service_tier"] == "auto" and failed["completed_at"] is None


def test_sampling_echoes_the_request(base_url: str, upstream: FakeUpstream) -> None:
    """The recordings report OpenAI's defaults (temperature and top_p 1.0, service_tier
    "auto" then "default"); values the request gives are reported as given, in every
    event, and temperature and top_p are sent to the model server."""
    upstream.script(
        Reply(chunks=chunks(text=["x"], finish="stop")), Reply(body=completion("y"))
    )
    asked = {"temperature": 0.2, "top_p": 0.5, "service_tier": "flex"}
    events = streamed(base_url, {"input": "hello", **asked})
    status, answer = post(base_url, {"input": "hello", **asked})
    assert status == 200
    for response in (events[0]["response"], events[-1]["response"], answer):
        assert {k: response[k] for k in asked} == asked
    assert {k: upstream.requests[1][k] for k in ("temperature", "top_p")} == {
        "temperature": 0.2,
        "top_p": 0.5,
    }


def test_errors_missing_required_parameter(base_url: str, upstream: FakeUpstream) -> None:
    """Cassette responses/errors/missing_required_parameter.yaml: OpenAI's envelope for a
    refused request (there a code_interpreter tool without its container; convostore
    refuses hosted tools outright, with the same envelope and the param named)."""
    status, refused = post(
        base_url,
        {
            "input": [
                {"role": "system", "content": "Always use code interpreter for math."},
                {"role": "user", "content": "Compute sqrt of 2."},
            ],
            "tools": [{"type": "code_interpreter"}],
        },
    )
    assert status == 400
    assert set(refused) == {"error"}
    assert set(refused["error"]) == {"message", "type", "param", "code"}
    assert refused["error"]["type"] == "invalid_request_error"
    assert refused["error"]["param"].startswith("tools[0]")
    assert upstream.requests == []
