"""Streamed background responses (issue 17): ``background`` and ``stream`` true answer the
event stream while the response runs in the server; a client that leaves does not stop
it; ``GET /v1/responses/{id}?stream=true&starting_after=N`` replays the stored events
after N and follows the live ones, from any server process; cancel ends the stream.

States are waited for (events read, polls with a deadline), never fixed sleeps.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai import OpenAI

from convostore.store.base import Store
from tests.responses.fake_upstream import FakeUpstream, Reply, chunks, completion
from tests.responses.test_background import FAST_LEASE, serve_process, until
from tests.responses.test_leases import on_twin
from tests.support import running_server

TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def sse(base_url: str, path: str, *, post: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every event of a stream, read to its end."""
    out: list[dict[str, Any]] = []
    with httpx.Client(timeout=30) as http:
        method, body = ("POST", post) if post is not None else ("GET", None)
        with http.stream(method, base_url + path, json=body) as answer:
            assert answer.status_code == 200, answer.read()
            assert answer.headers["content-type"].startswith("text/event-stream")
            for line in answer.iter_lines():
                if line.startswith("data: "):
                    out.append(orjson.loads(line[6:]))
    return out


def first_event(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a streamed response, read its first event and leave."""
    with (
        httpx.Client(timeout=30) as http,
        http.stream("POST", base_url + "/responses", json=body) as answer,
    ):
        for line in answer.iter_lines():
            if line.startswith("data: "):
                event: dict[str, Any] = orjson.loads(line[6:])
                return event
    raise AssertionError("no event")


def opened_then_left(client: OpenAI, conversation_id: str, text: str) -> str:
    """Create a streamed background response, read its two stored opening events and
    leave; its id."""
    stream = client.responses.create(
        model="qwen", input=text, background=True, stream=True, conversation=conversation_id
    )
    opening = [next(iter(stream)), next(iter(stream))]
    assert [e.type for e in opening] == ["response.created", "response.queued"]
    assert [e.sequence_number for e in opening] == [0, 1]
    assert opening[0].response.status == "queued" and opening[0].response.background is True
    stream.close()  # the client leaves before the model has answered
    return opening[0].response.id


def numbered_from(events: list[dict[str, Any]], first: int) -> None:
    assert [e["sequence_number"] for e in events] == list(range(first, first + len(events)))


def test_the_stream_runs_on_without_its_client_then_resumes(
    client: OpenAI, upstream: FakeUpstream, base_url: str, store: Store
) -> None:
    release = threading.Event()
    upstream.script(
        Reply(chunks=chunks(text=["Hel", "lo", " Ana"], finish="stop"), release=release)
    )
    conv = client.conversations.create()
    response_id = opened_then_left(client, conv.id, "Hi, I'm Ana")
    release.set()
    done = until(
        lambda: (r := client.responses.retrieve(response_id)).status == "completed" and r,
        "the response to complete without its client",
    )
    assert done.output_text == "Hello Ana"
    assert [i.type for i in client.conversations.items.list(conv.id)] == ["message", "message"]

    # Resumed after event 1: the rest, stored, to the terminal event.
    rest = list(client.responses.retrieve(response_id, stream=True, starting_after=1))
    assert rest[0].type == "response.in_progress" and rest[-1].type == "response.completed"
    numbered_from([e.model_dump() for e in rest], 2)
    deltas = "".join(e.delta for e in rest if e.type == "response.output_text.delta")
    assert deltas == "Hello Ana"
    assert rest[-1].response.output[0].model_dump() == done.output[0].model_dump()
    # The SDK's stream helper, from the start: the same response.
    with client.responses.stream(response_id=response_id) as again:
        final = again.get_final_response()
    assert final.id == response_id and final.output_text == "Hello Ana"
    # Past its last event: an empty stream.
    last = rest[-1].sequence_number
    assert list(client.responses.retrieve(response_id, stream=True, starting_after=last)) == []

    # The events go with the response.
    client.responses.delete(response_id)
    assert on_twin(store, lambda other: other.response_events(response_id, -1, 10)) == []


def test_a_conversation_deleted_meanwhile_fails_the_stream(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    """Recording.finish finds the conversation gone: the response fails, saying so, as a
    background response that does not stream does."""
    release = threading.Event()
    upstream.script(Reply(chunks=chunks(text=["late"], finish="stop"), release=release))
    conv = client.conversations.create()
    response_id = opened_then_left(client, conv.id, "Hi")
    until(lambda: upstream.requests, "the model server to be asked")
    client.conversations.delete(conv.id)
    release.set()
    failed = until(
        lambda: (r := client.responses.retrieve(response_id)).status == "failed" and r,
        "the response to fail",
    )
    assert failed.error is not None and failed.error.message == (
        "The conversation was deleted, or taken by another response, while this "
        "one ran; nothing was appended to it."
    )


def test_a_resumed_stream_follows_the_live_events(
    client: OpenAI, upstream: FakeUpstream, base_url: str
) -> None:
    release = threading.Event()
    upstream.script(Reply(chunks=chunks(text=["a", "b", "c", "d"], finish="stop"), release=release))
    first: list[dict[str, Any]] = []
    started = threading.Event()

    def read_first() -> None:
        with httpx.Client(timeout=30) as http:
            body = {"model": "qwen", "input": "x", "background": True, "stream": True}
            with http.stream("POST", base_url + "/responses", json=body) as answer:
                for line in answer.iter_lines():
                    if line.startswith("data: "):
                        first.append(orjson.loads(line[6:]))
                        started.set()

    reader = threading.Thread(target=read_first)
    reader.start()
    assert started.wait(20)
    response_id = first[0]["response"]["id"]
    second: list[dict[str, Any]] = []

    def read_second() -> None:
        second.extend(sse(base_url, f"/responses/{response_id}?stream=true&starting_after=0"))

    follower = threading.Thread(target=read_second)
    follower.start()
    until(lambda: len(first) >= 2, "the queued event")
    release.set()  # now the model answers, while both read
    reader.join(30)
    follower.join(30)
    assert first[-1]["type"] == "response.completed"
    numbered_from(first, 0)
    assert second == first[1:]
    assert first[-1]["response"]["output"][0]["content"][0]["text"] == "abcd"


def cancelled_while_streamed(client: OpenAI, upstream: FakeUpstream, reply: Reply) -> None:
    """A streamed background response (``reply`` held by its ``release``) cancelled
    while its client reads: the stream ends with the cancelled response, resumed the
    same, and nothing is appended to its conversation."""
    assert reply.release is not None
    upstream.script(reply)
    conv = client.conversations.create()
    stream = client.responses.create(
        model="qwen", input="x", background=True, stream=True, conversation=conv.id
    )
    events = iter(stream)
    created = next(events)
    until(lambda: upstream.requests, "the model server to be called")
    assert client.responses.cancel(created.response.id).status == "cancelled"
    rest = list(events)
    assert rest[-1].type == "response.failed"
    assert rest[-1].response.status == "cancelled"
    numbered_from([created.model_dump(), *(e.model_dump() for e in rest)], 0)
    # Resumed later: the same end.
    again = list(client.responses.retrieve(created.response.id, stream=True, starting_after=0))
    assert again[-1].model_dump() == rest[-1].model_dump()
    reply.release.set()
    assert client.responses.retrieve(created.response.id).status == "cancelled"
    assert list(client.conversations.items.list(conv.id)) == []


def test_cancel_ends_the_stream(client: OpenAI, upstream: FakeUpstream, base_url: str) -> None:
    held = Reply(chunks=chunks(text=["never"], finish="stop"), release=threading.Event())
    cancelled_while_streamed(client, upstream, held)


def test_resume_refusals(client: OpenAI, upstream: FakeUpstream, base_url: str) -> None:
    upstream.script(Reply(body=completion("plain")))
    plain = client.responses.create(model="qwen", input="x")
    with pytest.raises(openai.BadRequestError) as refused:
        list(client.responses.retrieve(plain.id, stream=True))
    assert refused.value.param == "stream"
    upstream.script(Reply(body=completion("bg")))
    background = client.responses.create(model="qwen", input="x", background=True)
    until(lambda: client.responses.retrieve(background.id).status == "completed", "done")
    with pytest.raises(openai.BadRequestError) as refused:
        list(client.responses.retrieve(background.id, stream=True))
    assert refused.value.param == "stream"
    with httpx.Client() as http:
        for query, param, code in (
            ("stream=true&starting_after=abc", "starting_after", "invalid_type"),
            ("stream=true&starting_after=-2", "starting_after", "integer_below_min_value"),
            ("stream=maybe", "stream", "invalid_type"),
        ):
            answer = http.get(f"{base_url}/responses/{plain.id}?{query}")
            assert answer.status_code == 400, query
            error = answer.json()["error"]
            assert (error["param"], error["code"]) == (param, code), query
        missing = http.get(f"{base_url}/responses/resp_missing?stream=true")
        assert missing.status_code == 404


@pytest.mark.parametrize("settings_overrides", [{"response_stream_events_max": 16}])
def test_the_events_of_one_response_are_bounded(
    client: OpenAI, upstream: FakeUpstream, base_url: str
) -> None:
    upstream.script(Reply(chunks=chunks(text=["x"] * 40, finish="stop")))
    body = {"model": "qwen", "input": "x", "background": True, "stream": True}
    events = sse(base_url, "/responses", post=body)
    assert len(events) <= 17
    assert events[-1]["type"] == "response.failed"
    assert "16 events" in events[-1]["response"]["error"]["message"]
    numbered_from(events, 0)
    assert client.responses.retrieve(events[0]["response"]["id"]).status == "failed"


@pytest.mark.parametrize("settings_overrides", [FAST_LEASE])
def test_the_background_stream_of_a_failing_model_server(
    client: OpenAI, upstream: FakeUpstream, base_url: str
) -> None:
    upstream.script(Reply(status=500, body={"error": {"message": "boom"}}))
    body = {"model": "qwen", "input": "x", "background": True, "stream": True}
    events = sse(base_url, "/responses", post=body)
    assert [e["type"] for e in events] == ["response.created", "response.queued", "response.failed"]
    numbered_from(events, 0)
    assert events[-1]["response"]["status"] == "failed"


def test_another_process_resumes_it(
    backend: str, tmp_path: Path, upstream: FakeUpstream, request: pytest.FixtureRequest
) -> None:
    """Process B follows a stream that process A runs (events in the database), then
    follows one whose process A dies: it ends failed, never hangs."""
    db = request.getfixturevalue("pg_url") if backend == "postgres" else str(tmp_path / "two.db")
    args = ("--upstream", upstream.url, "--no-access-log", "--response-lease-seconds", "1")
    release = threading.Event()
    upstream.script(
        Reply(chunks=chunks(text=["one", " two"], finish="stop"), release=release),
        Reply(chunks=chunks(text=["never"], finish="stop"), delay=60),
    )
    a, a_base = serve_process(db, *args)
    try:
        with running_server(db, *args) as b_base:
            body = {"model": "qwen", "input": "x", "background": True, "stream": True}
            streamed_id = first_event(a_base, body)["response"]["id"]  # then A's client leaves
            release.set()
            on_b = sse(b_base, f"/responses/{streamed_id}?stream=true&starting_after=0")
            assert on_b[-1]["type"] == "response.completed"
            numbered_from(on_b, 1)
            assert on_b[-1]["response"]["output"][0]["content"][0]["text"] == "one two"

            # A dies with one running: B's reader ends with response.failed.
            doomed_id = first_event(a_base, body)["response"]["id"]
            until(lambda: len(upstream.requests) == 2, "the second call")
            a.kill()
            a.wait()
            ended = sse(b_base, f"/responses/{doomed_id}?stream=true")
            assert ended[-1]["type"] == "response.failed"
            assert ended[-1]["response"]["status"] == "failed"
            numbered_from(ended, 0)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
