"""One response in flight per conversation: the lease, on both backends, in one process
and across server processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from convostore.store.base import (
    LeaseHeld,
    LeaseLost,
    NewConversation,
    Owner,
    PageQuery,
    Store,
    StoredItem,
)
from convostore.store.postgres import PostgresStore
from convostore.store.sqlite import SQLiteStore
from tests.responses.fake_upstream import FakeUpstream, Reply, completion
from tests.service.test_lease import expire_leases
from tests.support import running_server

OPEN = Owner("default", "")  # the owner of an open server's conversations


def twin(store: Store) -> Store:
    """Another store on the same database: what a second server process would hold."""
    if isinstance(store, SQLiteStore):
        return SQLiteStore(store.path)
    assert isinstance(store, PostgresStore)
    return PostgresStore(store.dsn, max_size=2)


def on_twin(store: Store, work: Any) -> Any:
    async def run() -> Any:
        other = twin(store)
        await other.open()
        try:
            return await work(other)
        finally:
            await other.close()

    return asyncio.run(run())


def post(base_url: str, body: dict[str, Any], timeout: float = 10) -> httpx.Response:
    with httpx.Client(timeout=timeout) as http:
        return http.post(base_url + "/responses", json=body)


def count(client: OpenAI, conversation_id: str) -> int:
    return len(list(client.conversations.items.list(conversation_id, limit=100)))


def test_a_second_response_is_refused_while_one_runs(
    client: OpenAI, upstream: FakeUpstream, base_url: str
) -> None:
    release = threading.Event()
    upstream.script(Reply(body=completion("slow answer"), release=release))
    conv = client.conversations.create()
    first: dict[str, httpx.Response] = {}
    runner = threading.Thread(
        target=lambda: first.update(
            answer=post(base_url, {"model": "qwen", "conversation": conv.id, "input": "one"})
        )
    )
    runner.start()
    while not upstream.requests:
        time.sleep(0.02)
    second = post(base_url, {"model": "qwen", "conversation": conv.id, "input": "two"})
    assert second.status_code == 400
    assert second.json() == {
        "error": {
            "message": "Another process is currently operating on this conversation. "
            "Please retry in a few seconds.",
            "type": "invalid_request_error",
            "param": None,
            "code": "conversation_locked",
        }
    }
    release.set()
    runner.join()
    assert first["answer"].status_code == 200
    assert len(upstream.requests) == 1  # the refused one never reached the model server
    assert count(client, conv.id) == 2
    # Another conversation is not held up, and the first is free again.
    other = client.conversations.create()
    upstream.script(Reply(body=completion("a")), Reply(body=completion("b")))
    assert (
        client.responses.create(model="qwen", conversation=other.id, input="x").output_text == "a"
    )
    assert client.responses.create(model="qwen", conversation=conv.id, input="x").output_text == "b"


def test_store_false_takes_the_lease_too(
    client: OpenAI, upstream: FakeUpstream, store: Store
) -> None:
    """store=false appends its turn to the conversation (issue 17), so it holds the
    conversation like any response: refused while another response holds it."""
    conv = client.conversations.create()
    on_twin(store, lambda other: other.take_lease(OPEN, conv.id, "resp_other", 30))
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="qwen", conversation=conv.id, input="x", store=False)
    assert refused.value.code == "conversation_locked"
    assert upstream.requests == []


def test_a_crashed_holder_frees_the_conversation_when_its_lease_expires(
    client: OpenAI, upstream: FakeUpstream, store: Store
) -> None:
    conv = client.conversations.create()
    # A server process took the lease and died: nobody renews or releases it.
    on_twin(store, lambda other: other.take_lease(OPEN, conv.id, "resp_crashed", 30))
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="qwen", conversation=conv.id, input="x")
    assert refused.value.code == "conversation_locked"
    on_twin(store, expire_leases)  # its time is up (judged by the database's clock)
    upstream.script(Reply(body=completion("free again")))
    assert (
        client.responses.create(model="qwen", conversation=conv.id, input="x").output_text
        == "free again"
    )


def test_the_write_back_checks_the_lease(
    client: OpenAI, upstream: FakeUpstream, store: Store, base_url: str
) -> None:
    """A response whose lease expired and was taken over stores nothing (checked at commit)."""
    release = threading.Event()
    upstream.script(Reply(body=completion("too slow"), release=release))
    conv = client.conversations.create()
    result: dict[str, httpx.Response] = {}
    runner = threading.Thread(
        target=lambda: result.update(
            answer=post(base_url, {"model": "qwen", "conversation": conv.id, "input": "one"})
        )
    )
    runner.start()
    while not upstream.requests:
        time.sleep(0.02)

    async def take_over(other: Store) -> None:
        # Expire the running response's lease (as if it had stalled past it), then take it.
        await expire_leases(other)
        await other.take_lease(OPEN, conv.id, "resp_other", 30)

    on_twin(store, take_over)
    release.set()
    runner.join()
    answer = result["answer"]
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "conversation_locked"
    assert "nothing was stored" in answer.json()["error"]["message"]
    assert count(client, conv.id) == 0


def test_store_lease_primitives(store: Store) -> None:
    """take / renew / release / append under the lease, straight on the store."""

    async def run() -> None:
        await store.open()
        try:
            await store.migrate()
            from convostore.store.base import ConversationRow

            row = ConversationRow("conv_lease", 0, b"{}")
            await store.create_conversation(OPEN, NewConversation(row))
            item = StoredItem("msg_1", "message", b'{"id":"msg_1"}', 0)
            await store.take_lease(OPEN, "conv_lease", "a", 30)
            await store.take_lease(OPEN, "conv_lease", "a", 30)  # the holder may take it again
            with pytest.raises(LeaseHeld):
                await store.take_lease(OPEN, "conv_lease", "b", 30)
            with pytest.raises(LeaseLost):
                await store.append_items_leased(OPEN, "conv_lease", [item], "b")
            assert await store.renew_lease(OPEN, "conv_lease", "a", 30)
            assert not await store.renew_lease(OPEN, "conv_lease", "b", 30)
            await store.append_items_leased(OPEN, "conv_lease", [item], "a")
            await store.release_lease(OPEN, "conv_lease", "a")
            with pytest.raises(LeaseLost):
                await store.append_items_leased(OPEN, "conv_lease", [], "a")
            await store.take_lease(OPEN, "conv_lease", "b", 30)
            page = await store.list_items(
                OPEN, "conv_lease", PageQuery(None, 10, False
            ))
            assert [i.id for i in page.items] == ["msg_1"]
            # Deleting the conversation takes its lease with it.
            await store.delete_conversation(OPEN, "conv_lease")
        finally:
            await store.close()

    asyncio.run(run())


@pytest.fixture
def pg_servers(pg_url: str, upstream: FakeUpstream, tmp_path: Path) -> Iterator[list[str]]:
    args = ("--upstream", upstream.url, "--no-access-log")
    with running_server(pg_url, *args) as one, running_server(pg_url, *args) as two:
        yield [one, two]


def test_one_response_per_conversation_across_processes(
    pg_servers: list[str], upstream: FakeUpstream
) -> None:
    one, two = pg_servers
    with httpx.Client(timeout=10) as http:
        conv = http.post(one + "/conversations", json={}).json()["id"]
    upstream.script(*[Reply(body=completion(f"answer {n}"), delay=0.5) for n in range(6)])
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def ask(base: str, n: int) -> None:
        answer = post(base, {"model": "qwen", "conversation": conv, "input": f"q{n}"})
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=ask, args=(pg_servers[n % 2], n)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) >= 1
    assert all(
        a.json()["error"]["code"] == "conversation_locked" for a in answers if a.status_code != 200
    )
    # Exactly the successful turns are stored, each one whole: input then output.
    with httpx.Client(timeout=10) as http:
        items = http.get(
            f"{two}/conversations/{conv}/items", params={"order": "asc", "limit": 100}
        ).json()["data"]
    assert len(items) == 2 * statuses.count(200)
    assert [i["role"] for i in items] == ["user", "assistant"] * statuses.count(200)
    # Overlapping turns never both ran: the model server saw each stored turn alone.
    assert len(upstream.requests) == statuses.count(200)
