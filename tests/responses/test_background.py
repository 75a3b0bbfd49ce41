"""Background responses (issue 17): answered at once, polled, cancelled from any
process, and failed (never in_progress forever) when the process running one dies.

States are waited for by polling with a deadline, never by fixed sleeps.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from convostore.store.base import LeaseHeld, Store
from tests.responses.fake_upstream import FakeUpstream, Reply, completion
from tests.responses.test_leases import OPEN, on_twin
from tests.support import free_port, running_server

FAST_LEASE = {"response_lease_seconds": 1.0}  # renewed every third of a second


def until(check: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.05)


def test_background_answers_at_once_then_polls(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("Done, Ana."), delay=0.3))
    conv = client.conversations.create()
    started = client.responses.create(
        model="qwen", input="Hi, I'm Ana", background=True, conversation=conv.id
    )
    assert started.background is True and started.status in ("queued", "in_progress")
    assert started.output == []
    done = until(
        lambda: (r := client.responses.retrieve(started.id)).status == "completed" and r,
        "the background response to complete",
    )
    assert done.output_text == "Done, Ana." and done.background is True
    held = list(client.conversations.items.list(conv.id, order="asc"))
    assert [i.type for i in held] == ["message", "message"]
    assert held[1].model_dump(exclude_none=True) == done.output[0].model_dump(exclude_none=True)
    assert [i.id for i in client.responses.input_items.list(done.id)] == [held[0].id]
    # It is a link of a chain like any stored response.
    upstream.script(Reply(body=completion("Ana.")))
    later = client.responses.create(model="qwen", input="Who?", previous_response_id=done.id)
    assert later.output_text == "Ana."


def test_background_needs_store(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="qwen", input="x", background=True, store=False)
    assert refused.value.param == "store"
    with pytest.raises(openai.BadRequestError) as refused:  # streamed too
        client.responses.create(model="qwen", input="x", background=True, store=False, stream=True)
    assert refused.value.param == "store"


@pytest.mark.parametrize("settings_overrides", [FAST_LEASE])
def test_cancel(client: OpenAI, upstream: FakeUpstream, store: Store) -> None:
    upstream.script(Reply(body=completion("too late"), delay=60))
    conv = client.conversations.create()
    started = client.responses.create(
        model="qwen", input="slow", background=True, conversation=conv.id
    )
    until(lambda: upstream.requests, "the model server to be called")
    assert client.responses.retrieve(started.id).status == "in_progress"
    cancelled = client.responses.cancel(started.id)
    assert cancelled.status == "cancelled"

    # The runner stops at its next renewal and releases the conversation's lease.
    def lease_free() -> bool:
        try:
            on_twin(store, lambda other: other.take_lease(OPEN, conv.id, "resp_probe", 30))
        except LeaseHeld:
            return False
        on_twin(store, lambda other: other.release_lease(OPEN, conv.id, "resp_probe"))
        return True

    until(lease_free, "the cancelled response to stop and free the conversation")
    until(lambda: upstream.abandoned == 1, "the model server call to be closed")
    assert client.responses.retrieve(started.id).status == "cancelled"
    assert list(client.conversations.items.list(conv.id)) == []  # nothing appended
    assert client.responses.cancel(started.id).status == "cancelled"  # again: as it is
    # A response that did not run in the background cannot be cancelled.
    upstream.script(Reply(body=completion("quick")))
    quick = client.responses.create(model="qwen", input="x")
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(quick.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_nope")


@pytest.mark.parametrize("settings_overrides", [FAST_LEASE])
def test_previous_response_still_running(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("slow"), delay=60))
    started = client.responses.create(model="qwen", input="x", background=True)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="qwen", input="y", previous_response_id=started.id)
    assert refused.value.param == "previous_response_id"
    client.responses.cancel(started.id)
    until(lambda: upstream.abandoned == 1, "the model server call to be closed")


@pytest.mark.parametrize(("status", "code"), [(500, "server_error"), (429, "rate_limit_exceeded")])
def test_a_failed_model_server_fails_the_response(
    client: OpenAI, upstream: FakeUpstream, status: int, code: str
) -> None:
    upstream.script(Reply(status=status, body={"error": {"message": "boom"}}))
    started = client.responses.create(model="qwen", input="x", background=True)
    failed = until(
        lambda: (r := client.responses.retrieve(started.id)).status == "failed" and r,
        "the response to fail",
    )
    assert failed.error is not None and failed.error.code == code
    assert [i.type for i in client.responses.input_items.list(started.id)] == ["message"]


def test_a_conversation_deleted_meanwhile_fails_the_response(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    """The write-back finds the conversation gone: the response fails, saying so."""
    release = threading.Event()
    upstream.script(Reply(body=completion("late"), release=release))
    conv = client.conversations.create()
    started = client.responses.create(
        model="qwen", input="x", conversation=conv.id, background=True
    )
    until(lambda: upstream.requests, "the model server to be asked")
    client.conversations.delete(conv.id)
    release.set()
    failed = until(
        lambda: (r := client.responses.retrieve(started.id)).status == "failed" and r,
        "the response to fail",
    )
    assert failed.error is not None and failed.error.message == (
        "The conversation was deleted, or taken by another response, while this "
        "one ran; nothing was appended to it."
    )


def serve_process(db: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "convostore", "serve", "--db", db, "--port", str(port), *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/conversations/conv_probe", timeout=2).status_code == 404
        except httpx.TransportError:
            return False

    until(up, "the server to start", 30)
    return process, base


def test_a_dead_process_leaves_it_failed(
    backend: str, tmp_path: Path, upstream: FakeUpstream, request: pytest.FixtureRequest
) -> None:
    """SIGKILL the process running a background response: another process answers it
    failed once its lease has passed, never in_progress forever; a cancel from there on a
    live one works the same (PostgreSQL deployments run several processes)."""
    db = request.getfixturevalue("pg_url") if backend == "postgres" else str(tmp_path / "two.db")
    args = ("--upstream", upstream.url, "--no-access-log", "--response-lease-seconds", "1")
    upstream.script(
        Reply(body=completion("never"), delay=60), Reply(body=completion("x"), delay=60)
    )
    doomed, base = serve_process(db, *args)
    try:
        with running_server(db, *args) as other:
            sdk = OpenAI(base_url=base, api_key="x", max_retries=0)
            started = sdk.responses.create(model="qwen", input="x", background=True)
            until(lambda: upstream.requests, "the model server to be called")
            doomed.kill()
            doomed.wait()
            survivor = OpenAI(base_url=other, api_key="x", max_retries=0)
            failed = until(
                lambda: (r := survivor.responses.retrieve(started.id)).status == "failed" and r,
                "the dead process's response to be failed",
            )
            assert failed.error is not None and "stopped" in failed.error.message
            # Cancel from another process than the one running it.
            running = survivor.responses.create(model="qwen", input="y", background=True)
            until(lambda: len(upstream.requests) == 2, "the second call")
            third, third_base = serve_process(db, *args)
            try:
                remote = OpenAI(base_url=third_base, api_key="x", max_retries=0)
                assert remote.responses.cancel(running.id).status == "cancelled"
                assert survivor.responses.retrieve(running.id).status == "cancelled"
                remote.close()
            finally:
                third.terminate()
                third.wait()
            survivor.close()
            sdk.close()
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()
