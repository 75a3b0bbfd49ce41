"""The official SDKs against a real ``convostore serve``: openai-python and openai-agents.

One server (SQLite, temp file) serves the whole module. Every SDK client here sends its
requests through an HTTP client whose response hook validates each answer against the
spec (``tests.support.check_response``) and records the request, so a test can also say
what went over the wire (the ``include[]`` form, the pagination cursors, the create call
a lazy session makes).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agents import Agent, RunConfig, Runner, Usage, function_tool
from agents.items import ModelResponse
from agents.memory import OpenAIConversationsSession
from agents.models.interface import Model
from openai import AsyncOpenAI, OpenAI
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from tests import spec_schema
from tests.support import check_response, running_server

LOGPROBS = "message.output_text.logprobs"
ISOLATION = "x-ms-user-isolation-key"


class Wire:
    """Records every request an SDK client sends and validates every answer it gets."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def sync_hook(self, response: Any) -> None:
        response.read()
        self._check(response)

    async def async_hook(self, response: Any) -> None:
        await response.aread()
        self._check(response)

    def _check(self, response: Any) -> None:
        self.requests.append(response.request)
        check_response(response.request.method, response.request.url.path, response)

    def clear(self) -> None:
        self.requests.clear()

    def calls(self, method: str | None = None) -> list[Any]:
        return [r for r in self.requests if method is None or r.method == method]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db: Path = tmp_path_factory.mktemp("sdk") / "convostore.db"
    with running_server(db) as url:
        yield url


@pytest.fixture(scope="module")
def root(base_url: str) -> str:
    return base_url.removesuffix("/v1")


@pytest.fixture
def wire() -> Wire:
    return Wire()


def make_client(base_url: str, wire: Wire, **kwargs: Any) -> OpenAI:
    http = openai.DefaultHttpxClient(event_hooks={"response": [wire.sync_hook]})
    return OpenAI(base_url=base_url, api_key="anything", max_retries=0, http_client=http, **kwargs)


def make_async_client(base_url: str, wire: Wire, **kwargs: Any) -> AsyncOpenAI:
    http = openai.DefaultAsyncHttpxClient(event_hooks={"response": [wire.async_hook]})
    return AsyncOpenAI(
        base_url=base_url, api_key="anything", max_retries=0, http_client=http, **kwargs
    )


@pytest.fixture
def client(base_url: str, wire: Wire) -> Iterator[OpenAI]:
    sdk = make_client(base_url, wire)
    yield sdk
    sdk.close()


def text_of(item: Any) -> str:
    """The text of a one-part message, from an SDK model or a dumped dict."""
    data = item if isinstance(item, dict) else item.model_dump()
    text: str = data["content"][0]["text"]
    return text


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def api_error(exc: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    body = exc.value.body
    assert isinstance(body, dict), body
    return body


# --- the eight operations -------------------------------------------------------------------


def test_conversation_create_retrieve_update_delete(client: OpenAI) -> None:
    conv = client.conversations.create(
        metadata={"topic": "demo", "lang": "en"}, items=[user("hello")]
    )
    assert conv.object == "conversation"
    assert conv.id.startswith("conv_")
    assert conv.metadata == {"topic": "demo", "lang": "en"}
    assert isinstance(conv.created_at, int)

    got = client.conversations.retrieve(conv.id)
    assert got == conv

    # D1: the map is replaced, not merged.
    updated = client.conversations.update(conv.id, metadata={"topic": "other"})
    assert updated.id == conv.id
    assert updated.created_at == conv.created_at
    assert updated.metadata == {"topic": "other"}
    assert client.conversations.retrieve(conv.id).metadata == {"topic": "other"}

    # D1: null means {}.
    cleared = client.conversations.update(conv.id, metadata=None)
    assert cleared.metadata == {}

    deleted = client.conversations.delete(conv.id)
    assert deleted.id == conv.id
    assert deleted.object == "conversation.deleted"
    assert deleted.deleted is True

    # D4: afterwards every route answers 404, a second DELETE too.
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conv.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.delete(conv.id)


def test_conversation_create_without_arguments(client: OpenAI) -> None:
    conv = client.conversations.create()
    assert conv.metadata == {}
    page = client.conversations.items.list(conv.id)
    assert page.data == []
    assert page.first_id is None and page.last_id is None
    assert page.has_more is False
    assert list(page) == []


def test_items_create_list_retrieve_delete(client: OpenAI) -> None:
    conv = client.conversations.create(items=[user("first")])

    created = client.conversations.items.create(conv.id, items=[assistant("second"), user("third")])
    assert created.object == "list"
    assert [text_of(i) for i in created.data] == ["second", "third"]
    assert created.first_id == created.data[0].id
    assert created.last_id == created.data[-1].id
    assert created.has_more is False
    second, third = created.data
    assert second.type == "message" and second.role == "assistant" and second.status == "completed"
    assert second.id.startswith("msg_")
    # D5/D18: an assistant output_text without annotations/logprobs is completed.
    part = second.content[0].model_dump(exclude_unset=True)
    assert part == {"type": "output_text", "text": "second", "annotations": [], "logprobs": []}
    assert third.content[0].model_dump(exclude_unset=True) == {
        "type": "input_text",
        "text": "third",
    }

    page = client.conversations.items.list(conv.id)
    assert [text_of(i) for i in page.data] == ["third", "second", "first"]  # default desc
    asc = client.conversations.items.list(conv.id, order="asc")
    assert [text_of(i) for i in asc.data] == ["first", "second", "third"]

    got = client.conversations.items.retrieve(second.id, conversation_id=conv.id)
    assert got == second

    parent = client.conversations.items.delete(second.id, conversation_id=conv.id)
    assert isinstance(parent, openai.types.conversations.Conversation)
    assert parent.id == conv.id
    assert parent.object == "conversation"
    assert parent.created_at == conv.created_at

    remaining = client.conversations.items.list(conv.id, order="asc")
    assert [text_of(i) for i in remaining] == ["first", "third"]
    with pytest.raises(openai.NotFoundError) as exc:
        client.conversations.items.retrieve(second.id, conversation_id=conv.id)
    assert api_error(exc)["message"] == f"Item with id '{second.id}' not found in conversation."
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.delete(second.id, conversation_id=conv.id)


def test_function_call_items(client: OpenAI) -> None:
    conv = client.conversations.create()
    created = client.conversations.items.create(
        conv.id,
        items=[
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
    )
    call, output = created.data
    assert call.type == "function_call" and call.id.startswith("fc_")
    assert call.status == "completed"
    assert (call.call_id, call.name, call.arguments) == (
        "call_1",
        "get_weather",
        '{"city": "Paris"}',
    )
    assert output.type == "function_call_output" and output.id.startswith("fc")
    assert output.call_id == "call_1" and output.output == "sunny"
    assert client.conversations.items.retrieve(output.id, conversation_id=conv.id) == output


# --- pagination -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forty_five(base_url: str) -> Iterator[tuple[str, list[str]]]:
    """A conversation of 45 messages m00..m44 (oldest first), and their ids."""
    sdk = OpenAI(base_url=base_url, api_key="anything", max_retries=0)
    texts = [f"m{n:02d}" for n in range(45)]
    items = [user(t) if n % 2 == 0 else assistant(t) for n, t in enumerate(texts)]
    conv = sdk.conversations.create(items=items[:20])
    ids = [i.id for i in sdk.conversations.items.list(conv.id, order="asc", limit=100)]
    for start in (20, 40):
        added = sdk.conversations.items.create(conv.id, items=items[start : start + 20])
        ids += [i.id for i in added.data]
    assert len(ids) == 45
    yield conv.id, ids
    sdk.close()


def test_auto_pagination_desc(
    client: OpenAI, wire: Wire, forty_five: tuple[str, list[str]]
) -> None:
    conv_id, ids = forty_five
    wire.clear()
    seen = list(client.conversations.items.list(conv_id, limit=10))
    assert [i.id for i in seen] == ids[::-1]
    assert [text_of(i) for i in seen] == [f"m{n:02d}" for n in range(44, -1, -1)]
    pages = wire.calls("GET")
    assert len(pages) == 5  # 10 + 10 + 10 + 10 + 5
    assert "after" not in pages[0].url.params
    expected_after = [ids[::-1][n * 10 - 1] for n in range(1, 5)]
    assert [p.url.params["after"] for p in pages[1:]] == expected_after
    assert all(p.url.params["limit"] == "10" for p in pages)


def test_auto_pagination_asc(client: OpenAI, forty_five: tuple[str, list[str]]) -> None:
    conv_id, ids = forty_five
    seen = list(client.conversations.items.list(conv_id, limit=10, order="asc"))
    assert [i.id for i in seen] == ids


def test_page_objects(client: OpenAI, forty_five: tuple[str, list[str]]) -> None:
    conv_id, ids = forty_five
    page = client.conversations.items.list(conv_id, limit=20, order="asc")
    assert page.has_more is True and page.has_next_page()
    assert (page.first_id, page.last_id) == (ids[0], ids[19])
    page = page.get_next_page()
    assert [i.id for i in page.data] == ids[20:40]
    page = page.get_next_page()
    assert [i.id for i in page.data] == ids[40:]
    assert page.has_more is False and not page.has_next_page()

    # `after` is exclusive in both orders (D15).
    after = client.conversations.items.list(conv_id, after=ids[10], limit=3)
    assert [i.id for i in after.data] == [ids[9], ids[8], ids[7]]
    after = client.conversations.items.list(conv_id, after=ids[10], limit=3, order="asc")
    assert [i.id for i in after.data] == ids[11:14]
    # the last item as cursor: an empty page (D2)
    end = client.conversations.items.list(conv_id, after=ids[-1], order="asc")
    assert end.data == [] and end.has_more is False and end.last_id is None


# --- include ----------------------------------------------------------------------------------


def test_include_logprobs_passes_through(client: OpenAI, wire: Wire) -> None:
    logprobs = [
        {"token": "Hi", "logprob": -0.25, "bytes": [72, 105], "top_logprobs": []},
        {"token": "!", "logprob": -1.5, "bytes": [33], "top_logprobs": []},
    ]
    reply = {
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "output_text", "text": "Hi!", "annotations": [], "logprobs": logprobs}
        ],
    }
    conv = client.conversations.create()
    plain = client.conversations.items.create(conv.id, items=[reply, user("after")])
    item_id = plain.data[0].id
    assert plain.data[0].content[0].logprobs == []  # D10: [] when not asked for

    wire.clear()
    asked = client.conversations.items.list(conv.id, include=[LOGPROBS])
    assert wire.requests[0].url.params.get_list("include[]") == [LOGPROBS]  # the SDK's form
    by_id = {i.id: i for i in asked.data}
    assert [lp.model_dump() for lp in by_id[item_id].content[0].logprobs] == logprobs

    not_asked = client.conversations.items.list(conv.id)
    assert {i.id: i for i in not_asked.data}[item_id].content[0].logprobs == []

    got = client.conversations.items.retrieve(item_id, conversation_id=conv.id, include=[LOGPROBS])
    assert [lp.model_dump() for lp in got.content[0].logprobs] == logprobs
    got = client.conversations.items.retrieve(item_id, conversation_id=conv.id)
    assert got.content[0].logprobs == []

    # include on create (op 5), and through auto-pagination: every page keeps it.
    created = client.conversations.items.create(conv.id, items=[reply], include=[LOGPROBS])
    assert [lp.model_dump() for lp in created.data[0].content[0].logprobs] == logprobs
    wire.clear()
    every = list(client.conversations.items.list(conv.id, limit=1, include=[LOGPROBS]))
    assert len(every) == 3
    assert [text_of(i) for i in every] == ["Hi!", "after", "Hi!"]
    assert len(every[0].content[0].logprobs) == len(every[2].content[0].logprobs) == 2
    assert len(wire.requests) == 3
    assert all(r.url.params.get_list("include[]") == [LOGPROBS] for r in wire.requests)


def test_include_unknown_value(client: OpenAI) -> None:
    conv = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as exc:
        client.conversations.items.list(conv.id, include=["bogus.value"])
    body = api_error(exc)
    assert (body["param"], body["code"]) == ("include", "invalid_value")
    assert body["message"].startswith("Invalid value: 'bogus.value'. Supported values are: ")


# --- errors -----------------------------------------------------------------------------------


def test_unknown_conversation_everywhere(client: OpenAI) -> None:
    missing = "conv_" + "0" * 48
    expected = {
        "message": f"Conversation with id '{missing}' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    calls = [
        lambda: client.conversations.retrieve(missing),
        lambda: client.conversations.update(missing, metadata={"a": "b"}),
        lambda: client.conversations.delete(missing),
        lambda: client.conversations.items.create(missing, items=[user("x")]),
        lambda: client.conversations.items.list(missing),
        lambda: client.conversations.items.retrieve("msg_1", conversation_id=missing),
        lambda: client.conversations.items.delete("msg_1", conversation_id=missing),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError) as exc:
            call()
        assert exc.value.status_code == 404
        assert api_error(exc) == expected
        assert exc.value.code is None and exc.value.param is None
        assert exc.value.type == "invalid_request_error"


def test_malformed_conversation_id_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        client.conversations.retrieve("not-an-id")
    assert api_error(exc)["message"] == "Conversation with id 'not-an-id' not found."


def test_unknown_item_and_after(client: OpenAI) -> None:
    conv = client.conversations.create(items=[user("only")])
    with pytest.raises(openai.NotFoundError) as exc:
        client.conversations.items.retrieve("msg_nope", conversation_id=conv.id)
    assert api_error(exc) == {
        "message": "Item with id 'msg_nope' not found in conversation.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.NotFoundError) as exc:
        client.conversations.items.delete("msg_nope", conversation_id=conv.id)
    assert api_error(exc)["message"] == "Item with id 'msg_nope' not found in conversation."

    with pytest.raises(openai.NotFoundError) as exc:
        client.conversations.items.list(conv.id, after="msg_nope")
    assert api_error(exc) == {
        "message": "No item found with id 'msg_nope'",
        "type": "invalid_request_error",
        "param": "after",
        "code": None,
    }

    # an `after` naming an item that was deleted is unknown too (D8)
    gone = client.conversations.items.create(conv.id, items=[user("gone")]).data[0]
    client.conversations.items.delete(gone.id, conversation_id=conv.id)
    for order in ("asc", "desc"):
        with pytest.raises(openai.NotFoundError) as exc:
            client.conversations.items.list(conv.id, after=gone.id, order=order)
        assert api_error(exc)["message"] == f"No item found with id '{gone.id}'"
        assert exc.value.param == "after"


@pytest.mark.parametrize(
    ("kwargs", "param", "code", "message"),
    [
        (
            {"limit": 1000},
            "limit",
            "integer_above_max_value",
            "Invalid 'limit': integer above maximum value. Expected a value <= 100, "
            "but got 1000 instead.",
        ),
        (
            {"limit": 0},
            "limit",
            "integer_below_min_value",
            "Invalid 'limit': integer below minimum value. Expected a value >= 1, "
            "but got 0 instead.",
        ),
        (
            {"order": "sideways"},
            "order",
            "invalid_value",
            "Invalid value: 'sideways'. Supported values are: 'asc' and 'desc'.",
        ),
    ],
)
def test_list_parameter_errors(
    client: OpenAI, kwargs: dict[str, Any], param: str, code: str, message: str
) -> None:
    conv = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as exc:
        client.conversations.items.list(conv.id, **kwargs)
    assert exc.value.status_code == 400
    assert api_error(exc) == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }
    assert (exc.value.param, exc.value.code) == (param, code)


def test_item_validation_errors(client: OpenAI) -> None:
    conv = client.conversations.create()
    cases: list[tuple[list[dict[str, Any]], dict[str, Any]]] = [
        (
            [user(str(n)) for n in range(21)],
            {
                "message": "Invalid 'items': array too long. Expected an array with maximum "
                "length 20, but got an array with length 21 instead.",
                "param": "items",
                "code": "array_above_max_length",
            },
        ),
        (
            [{"content": "no role, no type"}],
            {
                "message": "Invalid value: ''. Supported values are: 'assistant', 'system', "
                "'developer', and 'user'.",
                "param": "items[0]",
                "code": "invalid_value",
            },
        ),
        (
            [user("fine"), {"id": "item_wrongprefix", "role": "user", "content": "x"}],
            {
                "message": "Invalid 'items[1].id': 'item_wrongprefix'. "
                "Expected an ID that begins with 'msg'.",
                "param": "items[1].id",
                "code": "invalid_value",
            },
        ),
        (
            [
                {
                    "type": "function_call",
                    "id": "msg_1",
                    "call_id": "c",
                    "name": "f",
                    "arguments": "{}",
                }
            ],
            {
                "message": "Invalid 'items[0].id': 'msg_1'. Expected an ID that begins with 'fc'.",
                "param": "items[0].id",
                "code": "invalid_value",
            },
        ),
    ]
    for items, expected in cases:
        with pytest.raises(openai.BadRequestError) as exc:
            client.conversations.items.create(conv.id, items=items)
        assert api_error(exc) == {**expected, "type": "invalid_request_error"}, items
    assert client.conversations.items.list(conv.id).data == []  # D14: nothing stored
    # D9 (revised): a key newer than the server's schemas, inside an item, is kept as sent.
    created = client.conversations.items.create(
        conv.id,
        items=[{"role": "user", "content": "x", "colour": "red"}],  # type: ignore[typeddict-unknown-key]
    ).data[0]
    assert created.model_dump()["colour"] == "red"
    assert client.conversations.items.retrieve(created.id, conversation_id=conv.id).model_extra == {
        "colour": "red"
    }


def test_body_errors(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client.conversations.create(extra_body={"colour": "red"})
    assert api_error(exc) == {
        "message": "Unknown parameter: 'colour'.",
        "type": "invalid_request_error",
        "param": "colour",
        "code": "unknown_parameter",
    }
    with pytest.raises(openai.BadRequestError) as exc:
        client.conversations.create(metadata={f"k{n}": "v" for n in range(17)})
    body = api_error(exc)
    assert (body["param"], body["code"]) == ("metadata", "object_above_max_properties")
    assert body["message"] == (
        "Invalid 'metadata': too many properties. Expected an object with at most 16 "
        "properties, but got an object with 17 properties instead."
    )


def test_duplicate_ids(client: OpenAI) -> None:
    conv = client.conversations.create(items=[user("one")])
    first = client.conversations.items.list(conv.id).data[0]
    expected = {
        "message": "Item already in conversation",
        "type": "invalid_request_error",
        "param": "items",
        "code": "item_already_in_conversation",
    }
    # D21 (b): an id the conversation already holds.
    with pytest.raises(openai.BadRequestError) as exc:
        client.conversations.items.create(
            conv.id, items=[user("new"), {"id": first.id, "role": "user", "content": "again"}]
        )
    assert api_error(exc) == expected
    # D7: a reference to an item the conversation already holds.
    with pytest.raises(openai.BadRequestError) as exc:
        client.conversations.items.create(
            conv.id, items=[{"type": "item_reference", "id": first.id}]
        )
    assert api_error(exc) == expected
    # D21 (c): the same id twice in one request.
    twice = {"id": "msg_twice", "role": "user", "content": "twice"}
    with pytest.raises(openai.BadRequestError) as exc:
        client.conversations.items.create(conv.id, items=[twice, twice])
    assert api_error(exc) == expected
    assert [i.id for i in client.conversations.items.list(conv.id)] == [first.id]


def test_item_references_and_known_ids(client: OpenAI) -> None:
    source = client.conversations.create(items=[user("original")])
    original = client.conversations.items.list(source.id).data[0]
    target = client.conversations.create()
    # D7: a reference becomes a copy of the item it names.
    copied = client.conversations.items.create(
        target.id, items=[{"type": "item_reference", "id": original.id}]
    )
    assert copied.data == [original]
    # D21 (a): an id the caller can read elsewhere brings the stored item.
    other = client.conversations.create()
    known = client.conversations.items.create(
        other.id, items=[{"id": original.id, "role": "user", "content": "ignored"}]
    )
    assert known.data == [original]
    # D4: deleting the source leaves the copies.
    client.conversations.delete(source.id)
    assert client.conversations.items.retrieve(original.id, conversation_id=target.id) == original

    with pytest.raises(openai.NotFoundError) as exc:
        client.conversations.items.create(
            target.id, items=[{"type": "item_reference", "id": "msg_unknown"}]
        )
    assert api_error(exc)["message"] == "Item with id 'msg_unknown' not found."


def test_new_client_id_is_kept(client: OpenAI) -> None:
    conv = client.conversations.create()
    item_id = "msg_client_chosen_0001"
    created = client.conversations.items.create(
        conv.id, items=[{"id": item_id, "type": "message", "role": "user", "content": "mine"}]
    )
    assert created.data[0].id == item_id
    assert text_of(client.conversations.items.retrieve(item_id, conversation_id=conv.id)) == "mine"


# --- Azure --------------------------------------------------------------------------------------


def test_azure_prefix(root: str, base_url: str, wire: Wire) -> None:
    azure = make_client(
        f"{root}/openai/v1", wire, default_query={"api-version": "2025-04-01-preview"}
    )
    plain = make_client(base_url, wire)
    try:
        conv = azure.conversations.create(metadata={"via": "azure"}, items=[user("hi")])
        assert wire.requests[-1].url.path == "/openai/v1/conversations"
        assert wire.requests[-1].url.params["api-version"] == "2025-04-01-preview"
        assert azure.conversations.retrieve(conv.id) == conv
        assert plain.conversations.retrieve(conv.id) == conv  # same owner on both prefixes
        added = azure.conversations.items.create(conv.id, items=[assistant("hello")])
        listed = list(azure.conversations.items.list(conv.id, order="asc", limit=1))
        assert [text_of(i) for i in listed] == ["hi", "hello"]
        item = azure.conversations.items.retrieve(added.data[0].id, conversation_id=conv.id)
        assert item == added.data[0]
        assert azure.conversations.items.delete(item.id, conversation_id=conv.id).id == conv.id
        assert azure.conversations.update(conv.id, metadata={}).metadata == {}
        assert azure.conversations.delete(conv.id).deleted is True
        with pytest.raises(openai.NotFoundError):
            plain.conversations.retrieve(conv.id)
    finally:
        azure.close()
        plain.close()


def test_azure_sdk_client(root: str, wire: Wire) -> None:
    """``AzureOpenAI`` pointed at the v1 endpoint: ``api-key`` header, ``api-version`` query."""
    http = openai.DefaultHttpxClient(event_hooks={"response": [wire.sync_hook]})
    azure = openai.AzureOpenAI(
        base_url=f"{root}/openai/v1/",
        api_key="azure-key",
        api_version="preview",
        max_retries=0,
        http_client=http,
    )
    try:
        conv = azure.conversations.create(items=[user("hello azure")])
        sent = wire.requests[-1]
        assert sent.url.path == "/openai/v1/conversations"
        assert sent.headers["api-key"] == "azure-key"
        assert sent.url.params["api-version"] == "preview"
        items = list(azure.conversations.items.list(conv.id))
        assert [text_of(i) for i in items] == ["hello azure"]
        assert azure.conversations.delete(conv.id).deleted is True
    finally:
        azure.close()


def test_isolation_key_partitions_conversations(root: str, base_url: str, wire: Wire) -> None:
    azure = f"{root}/openai/v1"
    alice = make_client(azure, wire, default_headers={ISOLATION: "alice"})
    alice_v1 = make_client(base_url, wire, default_headers={ISOLATION: "alice"})
    bob = make_client(azure, wire, default_headers={ISOLATION: "bob"})
    nobody = make_client(azure, wire)
    clients = (alice, alice_v1, bob, nobody)
    try:
        conv = alice.conversations.create(items=[user("alice's secret")])
        item = alice.conversations.items.list(conv.id).data[0]
        assert alice_v1.conversations.retrieve(conv.id) == conv  # D11: both prefixes
        assert wire.requests[-1].headers[ISOLATION] == "alice"

        message = f"Conversation with id '{conv.id}' not found."
        for other in (bob, nobody):
            calls = [
                lambda o=other: o.conversations.retrieve(conv.id),
                lambda o=other: o.conversations.update(conv.id, metadata={"x": "y"}),
                lambda o=other: o.conversations.items.list(conv.id),
                lambda o=other: o.conversations.items.create(conv.id, items=[user("intruder")]),
                lambda o=other: o.conversations.items.retrieve(item.id, conversation_id=conv.id),
                lambda o=other: o.conversations.items.delete(item.id, conversation_id=conv.id),
                lambda o=other: o.conversations.delete(conv.id),
            ]
            for call in calls:
                with pytest.raises(openai.NotFoundError) as exc:
                    call()
                assert api_error(exc)["message"] == message

        # Nothing of that reached alice's conversation.
        assert [i.id for i in alice.conversations.items.list(conv.id)] == [item.id]
        assert alice.conversations.retrieve(conv.id).metadata == {}

        # A conversation made with no key is invisible to a keyed caller (D11).
        open_conv = nobody.conversations.create()
        with pytest.raises(openai.NotFoundError):
            alice.conversations.retrieve(open_conv.id)

        # Items cross no owner boundary: a reference to alice's item is unknown to bob (D7),
        # and the same id sent by bob counts as new (D21 d).
        bob_conv = bob.conversations.create()
        with pytest.raises(openai.NotFoundError) as exc:
            bob.conversations.items.create(
                bob_conv.id, items=[{"type": "item_reference", "id": item.id}]
            )
        assert api_error(exc)["message"] == f"Item with id '{item.id}' not found."
        mine = bob.conversations.items.create(
            bob_conv.id, items=[{"id": item.id, "role": "user", "content": "bob's own"}]
        )
        assert mine.data[0].id == item.id
        assert text_of(mine.data[0]) == "bob's own"
        assert text_of(alice.conversations.items.retrieve(item.id, conversation_id=conv.id)) == (
            "alice's secret"
        )
    finally:
        for sdk in clients:
            sdk.close()


# --- openai-agents: OpenAIConversationsSession ----------------------------------------------


def agent_history() -> list[dict[str, Any]]:
    """45 items the way the agents SDK saves a run: easy user messages, assistant output
    messages without id/status/annotations/logprobs, and a function call with its output."""
    items: list[dict[str, Any]] = []
    for n in range(43):
        if n == 20:
            items.append(
                {
                    "type": "function_call",
                    "call_id": "call_weather",
                    "name": "get_weather",
                    "arguments": '{"city": "Paris"}',
                }
            )
            items.append(
                {"type": "function_call_output", "call_id": "call_weather", "output": "sunny, 21C"}
            )
        if n % 2 == 0:
            items.append({"role": "user", "content": f"turn {n:02d}"})
        else:
            items.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": f"turn {n:02d}"}],
                }
            )
    assert len(items) == 45
    return items


def describe(item: dict[str, Any]) -> tuple[str, ...]:
    if item.get("type", "message") == "message":
        content = item["content"]
        return ("message", item["role"], content if isinstance(content, str) else text_of(item))
    if item["type"] == "function_call":
        return ("function_call", item["call_id"], item["name"], item["arguments"])
    return (item["type"], item["call_id"], item["output"])


def expected_description(sent: dict[str, Any]) -> tuple[str, ...]:
    if "type" not in sent or sent["type"] == "message":
        content = sent["content"]
        text = content if isinstance(content, str) else content[0]["text"]
        return ("message", sent["role"], text)
    return describe(sent)


def _input_properties() -> dict[str, set[str]]:
    """Keys each input item type may carry, from the spec's ``InputItem`` members."""
    schemas = spec_schema.schemas()
    members = [schemas["EasyInputMessage"]]
    members += [spec_schema._deref(m) for m in schemas["Item"]["oneOf"]]
    allowed: dict[str, set[str]] = {}
    for member in members:
        props = set(member.get("properties", {}))
        for part in member.get("allOf", ()):
            props |= set(spec_schema._deref(part).get("properties", {}))
        for tag in spec_schema.type_values(member) or {"message"}:
            allowed.setdefault(tag, set()).update(props)
    return allowed


def assert_valid_input(item: dict[str, Any]) -> None:
    """An item of ``get_items()`` is fit to send back as input: only spec keys."""
    allowed = _input_properties()
    kind = item.get("type", "message")
    extra = set(item) - allowed[kind]
    assert not extra, f"{kind} carries keys outside the input schema: {sorted(extra)}"
    assert "object" not in item and "created_at" not in item
    if kind == "message" and not isinstance(item["content"], str):
        schemas = spec_schema.schemas()
        for part in item["content"]:
            name = {"input_text": "InputTextContent", "output_text": "OutputTextContent"}[
                part["type"]
            ]
            extra = set(part) - set(schemas[name]["properties"])
            assert not extra, f"{part['type']} part carries {sorted(extra)}"
    json.dumps(item)  # plain JSON


def test_agents_session(base_url: str, wire: Wire) -> None:
    history = agent_history()

    async def scenario() -> None:
        aclient = make_async_client(base_url, wire)
        try:
            conv = await aclient.conversations.create(items=[])
            session = OpenAIConversationsSession(conversation_id=conv.id, openai_client=aclient)
            assert session.session_id == conv.id

            wire.clear()
            await session.add_items(history)
            posts = wire.calls("POST")
            assert len(posts) == 3  # 20 + 20 + 5 per request

            items = await session.get_items()
            assert len(items) == 45
            got = [describe(i) for i in items]
            assert got == [expected_description(s) for s in history]
            for item in items:
                assert_valid_input(item)
                assert item["id"]
            call = next(i for i in items if i["type"] == "function_call")
            assert call["id"].startswith("fc_")
            assert call["status"] == "completed"

            last_three = await session.get_items(limit=3)
            assert last_three == items[-3:]

            # The dumped items go back in as input: in chunks of 20, into a new conversation,
            # where their known ids bring the stored items (D21 a).
            copy = await aclient.conversations.create(items=[])
            for start in range(0, 45, 20):
                await aclient.conversations.items.create(
                    copy.id,
                    items=items[start : start + 20],
                )
            mirror = OpenAIConversationsSession(conversation_id=copy.id, openai_client=aclient)
            assert await mirror.get_items() == items

            popped = await session.pop_item()
            assert popped == items[-1]
            after_pop = await session.get_items()
            assert after_pop == items[:-1]
            with pytest.raises(openai.NotFoundError):
                await aclient.conversations.items.retrieve(
                    items[-1]["id"],
                    conversation_id=conv.id,
                )

            await session.clear_session()
            with pytest.raises(openai.NotFoundError) as exc:
                await aclient.conversations.retrieve(conv.id)
            assert api_error(exc)["message"] == f"Conversation with id '{conv.id}' not found."
            # the copies in the other conversation stay (D4)
            assert len(await mirror.get_items()) == 45
        finally:
            await aclient.close()

    asyncio.run(scenario())


def test_agents_session_paging_and_rollback_bursts(base_url: str, wire: Wire) -> None:
    """openai-agents 0.24 (CONTRACT.md section 0b): get_items(limit) pages `desc` and follows
    `after` until it has enough; a failed turn is rolled back with get_items(limit=k) and
    then k pop_item calls, one right after the other (a burst of item DELETEs)."""
    history = agent_history()

    async def scenario() -> None:
        aclient = make_async_client(base_url, wire)
        try:
            session = OpenAIConversationsSession(openai_client=aclient)
            await session.add_items(history)
            everything = await session.get_items()
            wire.clear()
            last_41 = await session.get_items(limit=41)
            assert last_41 == everything[-41:]
            gets = [r for r in wire.calls("GET") if r.url.path.endswith("/items")]
            assert len(gets) >= 2, "41 items take more than one page"
            assert all(r.url.params.get("order") == "desc" for r in gets)
            cursors = [r.url.params.get("after") for r in gets]
            assert cursors[0] is None and all(cursors[1:]), cursors
            # The rollback of a failed 7-item turn.
            turn = await session.get_items(limit=7)
            wire.clear()
            popped = [await session.pop_item() for _ in turn]
            assert popped == turn[::-1]
            assert len(wire.calls("DELETE")) == 7
            assert await session.get_items() == everything[:-7]
            # A new turn goes on after the rollback, in order.
            await session.add_items([{"role": "user", "content": "again"}])
            assert describe((await session.get_items(limit=1))[0]) == ("message", "user", "again")
        finally:
            await aclient.close()

    asyncio.run(scenario())


def test_agents_session_created_lazily(base_url: str, wire: Wire) -> None:
    async def scenario() -> None:
        aclient = make_async_client(base_url, wire)
        try:
            session = OpenAIConversationsSession(openai_client=aclient)
            with pytest.raises(ValueError):
                _ = session.session_id
            wire.clear()
            assert await session.get_items() == []
            create = wire.calls("POST")
            assert len(create) == 1
            assert create[0].url.path == "/v1/conversations"
            assert json.loads(create[0].content) == {"items": []}
            conv_id = session.session_id
            assert conv_id.startswith("conv_")
            conv = await aclient.conversations.retrieve(conv_id)
            assert conv.metadata == {}

            assert await session.pop_item() is None
            await session.add_items([{"role": "user", "content": "hello"}])
            await session.add_items(
                [
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "hi"}],
                    }
                ]
            )
            items = await session.get_items()
            assert [describe(i) for i in items] == [
                ("message", "user", "hello"),
                ("message", "assistant", "hi"),
            ]
            assert await session.get_items(limit=1) == items[1:]
            await session.clear_session()
            with pytest.raises(openai.NotFoundError):
                await aclient.conversations.retrieve(conv_id)

            # After a clear, the next use starts a new conversation.
            await session.add_items([{"role": "user", "content": "again"}])
            assert session.session_id != conv_id
            assert [describe(i) for i in await session.get_items()] == [
                ("message", "user", "again")
            ]
        finally:
            await aclient.close()

    asyncio.run(scenario())


class ScriptedModel(Model):
    """A stand-in for the LLM: answers each turn with the next scripted output item and
    keeps the input the runner sent it. Everything else (the runner, the session, its
    persistence rules) is the real agents SDK, talking to the real server."""

    def __init__(self, outputs: list[Any]):
        self.outputs = list(outputs)
        self.inputs: list[Any] = []

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> Any:
        self.inputs.append(json.loads(json.dumps(input)))
        return ModelResponse(output=[self.outputs.pop(0)], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def test_agents_runner_persists_through_the_session(base_url: str, wire: Wire) -> None:
    """Two ``Runner.run`` turns with a tool call: the runner saves each turn's new items
    (sanitized the way it does for this session), reads the history back before the next
    model call, and does not save it twice."""

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    def reply(text: str, n: int) -> ResponseOutputMessage:
        return ResponseOutputMessage(
            id=f"msg_model_{n}",
            type="message",
            role="assistant",
            status="completed",
            content=[
                ResponseOutputText(type="output_text", text=text, annotations=[], logprobs=[])
            ],
        )

    model = ScriptedModel(
        [
            ResponseFunctionToolCall(
                id="fc_model_1",
                type="function_call",
                call_id="call_1",
                name="get_weather",
                arguments='{"city": "Paris"}',
                status="completed",
            ),
            reply("It is sunny in Paris.", 2),
            reply("You are welcome.", 3),
        ]
    )
    agent = Agent(name="weather", model=model, tools=[get_weather])
    run_config = RunConfig(tracing_disabled=True)

    async def scenario() -> None:
        aclient = make_async_client(base_url, wire)
        try:
            session = OpenAIConversationsSession(openai_client=aclient)
            first = await Runner.run(
                agent, "Weather in Paris?", session=session, run_config=run_config
            )
            assert first.final_output == "It is sunny in Paris."
            second = await Runner.run(agent, "Thanks!", session=session, run_config=run_config)
            assert second.final_output == "You are welcome."

            items = await session.get_items()
            assert [describe(i) for i in items] == [
                ("message", "user", "Weather in Paris?"),
                ("function_call", "call_1", "get_weather", '{"city": "Paris"}'),
                ("function_call_output", "call_1", "sunny in Paris"),
                ("message", "assistant", "It is sunny in Paris."),
                ("message", "user", "Thanks!"),
                ("message", "assistant", "You are welcome."),
            ]
            # the model's provider ids were stripped; the server made its own (D18)
            assert items[1]["id"].startswith("fc_") and items[1]["id"] != "fc_model_1"
            assert items[3]["id"].startswith("msg_") and items[3]["id"] != "msg_model_2"

            # the second turn's model input is the stored history, then the new message
            sent = model.inputs[-1]
            assert [describe(i) for i in sent] == [describe(i) for i in items[:5]]
            for item in sent:
                assert_valid_input(item)
        finally:
            await aclient.close()

    asyncio.run(scenario())


def test_idempotency_key_through_extra_headers(client: OpenAI) -> None:
    """docs/api.md: the SDK's ``extra_headers`` carries an Idempotency-Key (issue 20); the
    SDK keeps the request's headers across its automatic retries, so a retried append is
    answered from the first and stored once."""
    conversation = client.conversations.create()
    key = {"Idempotency-Key": "sdk-retry-1"}
    first = client.conversations.items.create(
        conversation.id, items=[user("once")], extra_headers=key
    )
    again = client.conversations.items.create(
        conversation.id, items=[user("once")], extra_headers=key
    )
    assert [i.id for i in again.data] == [i.id for i in first.data]
    assert [text_of(i) for i in client.conversations.items.list(conversation.id)] == ["once"]
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.conversations.items.create(conversation.id, items=[user("other")], extra_headers=key)
    assert api_error(refused)["code"] == "idempotency_key_reused"


class LosingTransport(httpx.AsyncHTTPTransport):
    """Sends every request, but loses the answer of the first POST of items: the write
    is stored and the client sees a dropped connection (what a failover can do)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0
        self.keys: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/items"):
            self.keys.append(request.headers.get("idempotency-key"))
            if not self.lost:
                self.lost += 1
                await response.aread()
                await response.aclose()
                raise httpx.ReadError("answer lost", request=request)
        return response


def test_agents_session_with_keys_survives_a_lost_answer(base_url: str) -> None:
    """docs/api.md's KeyedSession: the SDK's automatic retry after a lost answer is
    answered from the first write, so the 25 items are stored once, in order."""

    class KeyedSession(OpenAIConversationsSession):
        def __init__(self, conversation_id: str, client: AsyncOpenAI):
            super().__init__(conversation_id=conversation_id, openai_client=client)
            self.client = client

        async def add_items(self, items: list[Any]) -> None:
            for start in range(0, len(items), 20):
                await self.client.conversations.items.create(
                    self.session_id,
                    items=items[start : start + 20],
                    extra_headers={"Idempotency-Key": str(uuid.uuid4())},
                )

    transport = LosingTransport()

    async def run() -> list[str]:
        http = httpx.AsyncClient(transport=transport)
        client = AsyncOpenAI(base_url=base_url, api_key="anything", max_retries=2, http_client=http)
        try:
            conversation = await client.conversations.create()
            session = KeyedSession(conversation.id, client)
            await session.add_items([user(f"m{n}") for n in range(25)])
            return [text_of(item) for item in await session.get_items()]
        finally:
            await client.close()

    assert asyncio.run(run()) == [f"m{n}" for n in range(25)]
    assert transport.lost == 1
    # Three POSTs: the first batch, its retry with the same key, the second batch.
    assert len(transport.keys) == 3 and transport.keys[0] == transport.keys[1] != transport.keys[2]


def test_what_openai_3_63_sends(client: OpenAI) -> None:
    """Issue 14's seven requests, through the SDK's own typed calls, read back in full."""
    conv = client.conversations.create(safety_identifier="user-123", items=[])
    sent: list[Any] = [
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "async": False},
        {"type": "custom_tool_call", "call_id": "c2", "name": "g", "input": "x", "async": True},
        {
            "role": "user",
            "content": [
                {
                    "type": "input_text",
                    "text": "hi",
                    "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "12h"},
                }
            ],
        },
        {
            "type": "image_generation_call",
            "id": "ig_1",
            "status": "completed",
            "result": None,
            "action": "generate",
            "background": "opaque",
            "output_format": "png",
            "quality": "high",
            "revised_prompt": "r",
            "size": "1024x1024",
        },
        {
            "type": "web_search_call",
            "id": "ws_1",
            "status": "incomplete",
            "action": {"type": "search", "query": "q"},
        },
        {"type": "configuration_update", "reasoning": {"effort": "minimal"}},
        {
            "type": "custom_tool_call",
            "call_id": "c3",
            "name": "g",
            "input": "y",
            "status": "completed",
        },
    ]
    created = client.conversations.items.create(conv.id, items=sent).data
    listed = list(client.conversations.items.list(conv.id, order="asc"))
    assert [i.id for i in listed] == [i.id for i in created]
    for want, got in zip(sent, listed, strict=True):
        dumped = got.model_dump(mode="json", by_alias=True, exclude_unset=True)
        for key, value in want.items():
            if key != "content":
                assert dumped[key] == value, (key, dumped)
    assert listed[2].model_dump()["content"][0]["prompt_cache_breakpoint"] == {
        "mode": "explicit",
        "ttl": "12h",
    }
    assert listed[5].type == "configuration_update" and listed[5].id.startswith("cfgu_")
