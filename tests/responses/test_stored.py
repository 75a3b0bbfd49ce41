"""Stored responses with the official SDK (issue 17): retrieve, delete, input items,
``previous_response_id`` chains, tenancy, a restart between turns.

Each test runs on SQLite and PostgreSQL, convostore serving over a socket in front of the
scripted model server.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from convostore.api.app import create_app
from convostore.store.base import Store
from tests.responses.conftest import convostore_settings
from tests.responses.fake_upstream import FakeUpstream, Reply, chunks, completion, serve

KEY_A = "acme:" + "a" * 32
KEY_B = "beta:" + "b" * 32


def dump(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(exclude_none=True)
    return out


def contents(request: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in request["messages"]]


def test_create_retrieve_input_items_delete(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("Hello Ana")))
    made = client.responses.create(
        model="qwen",
        input=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Hi, I'm Ana"},
        ],
        metadata={"k": "v"},
    )
    assert made.store is True and made.previous_response_id is None
    got = client.responses.retrieve(made.id)
    assert dump(got) == dump(made)  # the same object, output ids included

    items = client.responses.input_items.list(made.id)  # default order: desc
    assert [i.role for i in items.data] == ["user", "developer"]  # type: ignore[union-attr]
    assert all(i.id.startswith("msg_") for i in items.data)
    asc = client.responses.input_items.list(made.id, order="asc", limit=1)
    assert [i.role for i in asc.data] == ["developer"] and asc.has_more  # type: ignore[union-attr]
    rest = client.responses.input_items.list(made.id, order="asc", after=asc.data[0].id)
    assert [i.role for i in rest.data] == ["user"] and not rest.has_more  # type: ignore[union-attr]
    every = list(client.responses.input_items.list(made.id, order="asc", limit=1))
    assert [i.id for i in every] == [asc.data[0].id, rest.data[0].id]  # the SDK's paging

    assert client.responses.delete(made.id) is None
    for call in (
        client.responses.retrieve,
        client.responses.delete,
        client.responses.input_items.list,
    ):
        with pytest.raises(openai.NotFoundError) as missing:
            call(made.id)
        assert missing.value.body == {
            "message": f"Response with id '{made.id}' not found.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }


def test_previous_response_id_chain_of_three(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(
        Reply(body=completion("Hi Ana")),
        Reply(chunks=chunks(["Noted", "."])),
        Reply(body=completion("Ana, blue.")),
    )
    first = client.responses.create(model="qwen", input="I'm Ana", instructions="Be kind.")
    with client.responses.stream(
        model="qwen", input="I like blue", previous_response_id=first.id
    ) as stream:
        second = stream.get_final_response()
    third = client.responses.create(
        model="qwen", input="Who am I, what do I like?", previous_response_id=second.id
    )
    assert second.previous_response_id == first.id
    assert third.previous_response_id == second.id
    assert contents(upstream.last) == [
        ("user", "I'm Ana"),
        ("assistant", "Hi Ana"),
        ("user", "I like blue"),
        ("assistant", "Noted."),
        ("user", "Who am I, what do I like?"),
    ]  # instructions are not carried over, as OpenAI does
    assert contents(upstream.requests[0])[0] == ("system", "Be kind.")
    assert dump(client.responses.retrieve(second.id)) == dump(second)
    # A branch from the first turn sees only that turn.
    upstream.script(Reply(body=completion("branch")))
    client.responses.create(model="qwen", input="Other", previous_response_id=first.id)
    assert contents(upstream.last) == [
        ("user", "I'm Ana"),
        ("assistant", "Hi Ana"),
        ("user", "Other"),
    ]
    # Deleting the middle response removes its turn from the chain, nothing else.
    client.responses.delete(second.id)
    upstream.script(Reply(body=completion("again")))
    client.responses.create(model="qwen", input="Again", previous_response_id=third.id)
    assert [c for _, c in contents(upstream.last)] == [
        "I'm Ana",
        "Hi Ana",
        "Who am I, what do I like?",
        "Ana, blue.",
        "Again",
    ]
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="qwen", input="x", previous_response_id=second.id)


def test_unknown_previous_response(client: OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="qwen", input="x", previous_response_id="resp_nope")
    assert missing.value.body == {
        "message": "Previous response with id 'resp_nope' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }
    assert upstream.requests == []


def test_store_false_keeps_nothing(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("one")), Reply(body=completion("two")))
    first = client.responses.create(model="qwen", input="a", store=False)
    assert first.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):  # nothing to continue from
        client.responses.create(model="qwen", input="b", previous_response_id=first.id)
    # store: false on a stored chain reads it and adds nothing to it.
    kept = client.responses.create(model="qwen", input="c")
    upstream.script(Reply(body=completion("three")))
    client.responses.create(model="qwen", input="d", previous_response_id=kept.id, store=False)
    assert [c for _, c in contents(upstream.last)] == ["c", "two", "d"]


def test_with_conversation_stored_by_reference(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("Hi")))
    conv = client.conversations.create()
    made = client.responses.create(model="qwen", conversation=conv.id, input="Hello")
    assert dump(client.responses.retrieve(made.id)) == dump(made)
    held = list(client.conversations.items.list(conv.id, order="asc"))
    inputs = client.responses.input_items.list(made.id)
    assert [dump(i) for i in inputs.data] == [dump(held[0])]
    # Deleting the response never deletes the conversation's items, and the other way
    # round the response keeps its items.
    client.conversations.items.delete(held[1].id, conversation_id=conv.id)
    assert dump(client.responses.retrieve(made.id)) == dump(made)
    client.responses.delete(made.id)
    assert [i.id for i in client.conversations.items.list(conv.id)] == [held[0].id]


def test_retrieve_with_include(client: OpenAI, upstream: FakeUpstream) -> None:
    answer = completion("ok")
    answer["choices"][0]["logprobs"] = {
        "content": [{"token": "ok", "logprob": -0.1, "bytes": [111, 107], "top_logprobs": []}]
    }
    upstream.script(Reply(body=answer))
    made = client.responses.create(
        model="qwen", input="x", include=["message.output_text.logprobs"]
    )
    logprobs = made.output[0].content[0].logprobs  # type: ignore[union-attr]
    assert logprobs and logprobs[0].token == "ok"
    plain = client.responses.retrieve(made.id)
    assert plain.output[0].content[0].logprobs == []  # type: ignore[union-attr]
    full = client.responses.retrieve(made.id, include=["message.output_text.logprobs"])
    assert dump(full) == dump(made)


@pytest.mark.parametrize("settings_overrides", [{"api_keys": f"{KEY_A},{KEY_B}"}])
def test_other_tenants_get_404(base_url: str, upstream: FakeUpstream) -> None:
    owner = OpenAI(base_url=base_url, api_key=KEY_A.split(":")[1], max_retries=0)
    upstream.script(Reply(body=completion("mine")))
    made = owner.responses.create(model="qwen", input="secret")
    strangers = [
        OpenAI(base_url=base_url, api_key=KEY_B.split(":")[1], max_retries=0),
        OpenAI(
            base_url=base_url,
            api_key=KEY_A.split(":")[1],
            max_retries=0,
            default_headers={"x-ms-user-isolation-key": "alice"},
        ),
    ]
    for stranger in strangers:
        for call in (
            stranger.responses.retrieve,
            stranger.responses.delete,
            stranger.responses.input_items.list,
        ):
            with pytest.raises(openai.NotFoundError):
                call(made.id)
        with pytest.raises(openai.NotFoundError) as missing:
            stranger.responses.create(model="qwen", input="x", previous_response_id=made.id)
        assert missing.value.code == "previous_response_not_found"
        stranger.close()
    assert len(upstream.requests) == 1
    assert owner.responses.retrieve(made.id).output_text == "mine"
    owner.close()


def test_a_restart_between_turns(store: Store, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("Hi Ana")), Reply(body=completion("Ana")))
    app = create_app(convostore_settings(upstream), store)
    with serve(app) as url, OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as sdk:
        first = sdk.responses.create(model="qwen", input="I'm Ana")
    again = create_app(convostore_settings(upstream), store)  # a new process, as far as it knows
    with serve(again) as url, OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as sdk:
        assert dump(sdk.responses.retrieve(first.id)) == dump(first)
        sdk.responses.create(model="qwen", input="Who?", previous_response_id=first.id)
    assert contents(upstream.last) == [
        ("user", "I'm Ana"),
        ("assistant", "Hi Ana"),
        ("user", "Who?"),
    ]


def test_input_items_query_errors(base_url: str, client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("ok")))
    made = client.responses.create(model="qwen", input="x")
    with httpx.Client(base_url=base_url, timeout=10) as http:
        answer = http.get(f"/responses/{made.id}/input_items", params={"after": "msg_nope"})
        assert answer.status_code == 404
        assert answer.json()["error"]["param"] == "after"
        assert http.get(f"/responses/{made.id}/input_items?limit=0").status_code == 400
        assert http.get(f"/responses/{made.id}/input_items?order=up").status_code == 400
        assert http.get(f"/responses/{made.id}?include=nope").status_code == 400
        assert http.get("/responses/resp_%00x").status_code == 404


def test_two_processes_on_postgres(pg_url: str, upstream: FakeUpstream) -> None:
    """Two server processes over one PostgreSQL database: a chain continued on either,
    read and deleted from the other, branches made at once on both."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.support import running_server

    args = ("--upstream", upstream.url, "--no-access-log")
    with running_server(pg_url, *args) as one, running_server(pg_url, *args) as two:
        a = OpenAI(base_url=one, api_key="x", max_retries=0)
        b = OpenAI(base_url=two, api_key="x", max_retries=0)
        upstream.script(*[Reply(body=completion(f"answer {n}")) for n in range(5)])
        first = a.responses.create(model="qwen", input="one")
        second = b.responses.create(model="qwen", input="two", previous_response_id=first.id)
        assert dump(a.responses.retrieve(second.id)) == dump(second)
        with ThreadPoolExecutor(2) as pool:
            branches = list(
                pool.map(
                    lambda sdk: sdk.responses.create(
                        model="qwen", input="three", previous_response_id=second.id
                    ),
                    (a, b),
                )
            )
        assert [r.previous_response_id for r in branches] == [second.id, second.id]
        assert [c for _, c in contents(upstream.last)] == [
            "one", "answer 0", "two", "answer 1", "three",
        ]  # fmt: skip
        b.responses.delete(branches[0].id)
        with pytest.raises(openai.NotFoundError):
            a.responses.retrieve(branches[0].id)
        assert a.responses.retrieve(branches[1].id).id == branches[1].id
        a.close()
        b.close()
