"""When something fails, nothing is stored and the client is told: upstream errors and
timeouts, a stream cut mid-way, a client that goes away, a write-back that cannot happen.
After each, the conversation is free again (its lease released)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai import OpenAI

from tests.responses.fake_upstream import FakeUpstream, Reply, chunks, completion, error_body


def count(client: OpenAI, conversation_id: str) -> int:
    return len(list(client.conversations.items.list(conversation_id, limit=100)))


def still_free(client: OpenAI, upstream: FakeUpstream, conversation_id: str) -> None:
    """A next turn goes through at once: no lease was left behind."""
    upstream.script(Reply(body=completion("fine")))
    response = client.responses.create(model="qwen", conversation=conversation_id, input="again")
    assert response.output_text == "fine"


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    events = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            data = orjson.loads(lines["data"])
            assert lines["event"] == data["type"]
            events.append(data)
    return events


def test_upstream_500_is_a_502_and_stores_nothing(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(
        Reply(status=500, body=error_body("CUDA out of memory", "InternalServerError", 500))
    )
    conv = client.conversations.create()
    with pytest.raises(openai.APIStatusError) as failure:
        client.responses.create(model="qwen", conversation=conv.id, input="hi")
    assert failure.value.status_code == 502
    body = failure.value.body
    assert isinstance(body, dict) and "CUDA" not in body["message"]  # in the log, not here
    assert failure.value.response.headers["x-request-id"] in body["message"]
    assert body["type"] == "server_error"
    assert count(client, conv.id) == 0
    still_free(client, upstream, conv.id)


def test_upstream_400_is_a_400_whose_text_goes_to_the_log(
    client: OpenAI, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    message = (
        "This model's maximum context length is 32768 tokens. However, you requested 40000 tokens."
    )
    upstream.script(Reply(status=400, body=error_body(message)))
    conv = client.conversations.create()
    with (
        caplog.at_level(logging.WARNING, logger="convostore"),
        pytest.raises(openai.BadRequestError) as failure,
    ):
        client.responses.create(model="qwen", conversation=conv.id, input="hi")
    body = failure.value.body
    assert isinstance(body, dict) and "32768" not in body["message"]
    request_id = failure.value.response.headers["x-request-id"]
    assert request_id in body["message"]
    assert any(request_id in r.getMessage() and message in r.getMessage() for r in caplog.records)
    assert count(client, conv.id) == 0


def test_upstream_error_text_never_reaches_the_client(
    client: OpenAI, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """L4: a model server whose error page echoes the request's headers (the upstream
    key) and names an internal host: the client sees neither, the log has no key."""
    echo = (
        f"bad request; headers were authorization: Bearer sk-upstream-secret, host {upstream.url}"
    )
    for status in (400, 401, 404, 429, 500):
        upstream.script(Reply(status=status, body=error_body(echo, "Error", status)))
        with (
            caplog.at_level(logging.WARNING, logger="convostore"),
            pytest.raises(openai.APIStatusError) as failure,
        ):
            client.responses.create(model="qwen", input="hi")
        text = failure.value.response.text
        assert "sk-upstream-secret" not in text and "127.0.0.1" not in text, text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "bad request; headers were" in logged and "sk-upstream-secret" not in logged


def test_upstream_429_keeps_retry_after(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(
        Reply(
            status=429,
            body=error_body("slow down", "RateLimitError", 429),
            headers=[(b"retry-after", b"7")],
        )
    )
    with pytest.raises(openai.RateLimitError) as failure:
        client.responses.create(model="qwen", input="hi")
    assert failure.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("settings_overrides", [{"upstream_timeout_seconds": 0.5}])
def test_upstream_timeout_is_a_504(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("too late"), delay=2))
    conv = client.conversations.create()
    with pytest.raises(openai.APIStatusError) as failure:
        client.responses.create(model="qwen", conversation=conv.id, input="hi")
    assert failure.value.status_code == 504
    assert count(client, conv.id) == 0
    time.sleep(1.6)  # let the fake server finish its late answer
    still_free(client, upstream, conv.id)


def test_stream_upstream_error_before_the_first_chunk(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    upstream.script(Reply(status=503, body=error_body("overloaded", "ServiceUnavailable", 503)))
    conv = client.conversations.create()
    with pytest.raises(openai.APIStatusError) as failure:
        client.responses.create(model="qwen", conversation=conv.id, input="hi", stream=True)
    assert failure.value.status_code == 502
    assert count(client, conv.id) == 0


def test_stream_cut_mid_way_fails_and_stores_nothing(
    client: OpenAI, upstream: FakeUpstream, base_url: str
) -> None:
    upstream.script(Reply(chunks=chunks(["Once ", "upon ", "a time"]), cut_after=3))
    conv = client.conversations.create()
    with httpx.Client(timeout=10) as http:
        answer = http.post(
            base_url + "/responses",
            json={"model": "qwen", "conversation": conv.id, "input": "story", "stream": True},
        )
    assert answer.status_code == 200
    events = sse_events(answer)
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert "stream" in failed["error"]["message"]
    # What had arrived is shown, marked incomplete; none of it is stored.
    assert failed["output"][0]["content"] == [] or failed["output"][0]["status"] == "incomplete"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert count(client, conv.id) == 0
    still_free(client, upstream, conv.id)


def test_stream_that_just_stops_fails(client: OpenAI, upstream: FakeUpstream) -> None:
    cut = [
        c
        for c in chunks(["half an ans"])
        if not (isinstance(c, dict) and c["choices"] and c["choices"][0]["finish_reason"])
    ]
    upstream.script(Reply(chunks=cut[:-1], done=False))  # no finish_reason, no usage, no [DONE]
    conv = client.conversations.create()
    events = list(
        client.responses.create(model="qwen", conversation=conv.id, input="x", stream=True)
    )
    assert events[-1].type == "response.failed"
    assert count(client, conv.id) == 0


def test_stream_error_chunk_fails(client: OpenAI, upstream: FakeUpstream) -> None:
    broken = [
        *chunks(["a"])[:2],
        orjson.dumps(error_body("engine died", "InternalServerError", 500)).decode(),
    ]
    upstream.script(Reply(chunks=broken))
    events = list(client.responses.create(model="qwen", input="x", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None
    assert "engine died" not in events[-1].response.error.message  # logged, not shown


def test_client_disconnect_mid_stream_stores_nothing(
    client: OpenAI, upstream: FakeUpstream, base_url: str
) -> None:
    upstream.script(Reply(chunks=chunks([f"word{n} " for n in range(50)]), chunk_delay=0.1))
    conv = client.conversations.create()
    with (
        httpx.Client(timeout=10) as http,
        http.stream(
            "POST",
            base_url + "/responses",
            json={"model": "qwen", "conversation": conv.id, "input": "talk", "stream": True},
        ) as answer,
    ):
        seen = 0
        for line in answer.iter_lines():
            if line.startswith("event: response.output_text.delta"):
                seen += 1
                if seen == 3:
                    break  # the client goes away
    deadline = time.monotonic() + 10
    while upstream.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.cancelled == 1  # the model server's stream was closed too
    assert count(client, conv.id) == 0
    still_free(client, upstream, conv.id)


def test_client_disconnect_while_waiting_stores_nothing(
    client: OpenAI, upstream: FakeUpstream, base_url: str
) -> None:
    upstream.script(Reply(body=completion("never seen"), delay=1.5))
    conv = client.conversations.create()
    with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=0.5) as http:
        http.post(
            base_url + "/responses", json={"model": "qwen", "conversation": conv.id, "input": "hi"}
        )
    time.sleep(2)  # past the moment the model server answers
    assert count(client, conv.id) == 0
    still_free(client, upstream, conv.id)


@pytest.mark.parametrize("stream", [False, True])
def test_write_back_failure_is_never_a_200(
    client: OpenAI, upstream: FakeUpstream, base_url: str, stream: bool
) -> None:
    """The conversation is deleted while the model answers: the answer cannot be stored,
    and the client hears so (404 envelope, or response.failed), not a success."""
    reply = (
        Reply(chunks=chunks(["late"]), delay=1.0)
        if stream
        else Reply(body=completion("late"), delay=1.0)
    )
    upstream.script(reply)
    conv = client.conversations.create()
    result: dict[str, Any] = {}

    def ask() -> None:
        with httpx.Client(timeout=10) as http:
            result["answer"] = http.post(
                base_url + "/responses",
                json={"model": "qwen", "conversation": conv.id, "input": "hi", "stream": stream},
            )

    asker = threading.Thread(target=ask)
    asker.start()
    while not upstream.requests:
        time.sleep(0.02)
    client.conversations.delete(conv.id)
    asker.join()
    answer = result["answer"]
    if stream:
        events = sse_events(answer)
        assert events[-1]["type"] == "response.failed"
        assert "not found" in events[-1]["response"]["error"]["message"]
    else:
        assert answer.status_code == 404
        assert answer.json()["error"]["message"] == f"Conversation with id '{conv.id}' not found."
