"""What /v1/responses refuses, and how: OpenAI's envelope and wording, a 400 naming each
parameter it cannot honour, and nothing sent to the model server for a refused request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from convostore.settings import Settings
from convostore.store.base import Store
from tests.responses.fake_upstream import FakeUpstream, Reply, completion
from tests.support import Api, make_app


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def refused(http: httpx.Client, body: Any, status: int = 400, **kwargs: Any) -> dict[str, Any]:
    answer = http.post("/responses", json=body, **kwargs)
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.mark.parametrize(
    ("body", "param", "code", "message"),
    [
        (
            {"input": "hi"},
            "model",
            "missing_required_parameter",
            "Missing required parameter: 'model'.",
        ),
        (
            {"model": "m", "input": "hi", "foo": 1},
            "foo",
            "unknown_parameter",
            "Unknown parameter: 'foo'.",
        ),
        (
            {
                "model": "m",
                "input": "hi",
                "conversation": "conv_1",
                "previous_response_id": "resp_1",
            },
            None,
            "mutually_exclusive_parameters",
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
        ),
        (
            {"model": "m", "input": "hi", "previous_response_id": 1},
            "previous_response_id",
            "invalid_type",
            None,
        ),
        (
            {"model": "m", "input": "hi", "tools": [{"type": "web_search"}]},
            "tools[0].type",
            "unsupported_parameter",
            None,
        ),
        (
            {"model": "m", "input": "hi", "background": "yes"},
            "background",
            "invalid_type",
            None,
        ),
        (
            {"model": "m", "input": "hi", "truncation": "middle"},
            "truncation",
            "invalid_value",
            None,
        ),
        (
            {"model": "m", "input": "hi", "context_management": [{"type": "trim"}]},
            "context_management[0].type",
            "invalid_value",
            None,
        ),
        (
            {"model": "m", "input": "hi", "prompt": {"id": "pmpt_1"}},
            "prompt",
            "unsupported_parameter",
            None,
        ),
        (
            {"model": "m", "input": "hi", "reasoning": {"mode": "pro"}},
            "reasoning.mode",
            "unsupported_parameter",
            None,
        ),
        (
            {"model": "m", "input": "hi", "temperature": 3},
            "temperature",
            "decimal_above_max_value",
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead.",
        ),
        (
            {"model": "m", "input": "hi", "max_output_tokens": 8},
            "max_output_tokens",
            "integer_below_min_value",
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got 8 instead.",
        ),
        ({"model": "m", "input": 5}, "input", "invalid_type", None),
        (
            {"model": "m", "input": [{"role": "bogus", "content": "x"}]},
            "input[0].role",
            "invalid_value",
            None,
        ),
        ({"model": "m", "input": "hi", "include": ["nope"]}, "include", "invalid_value", None),
        (
            {"model": "m", "input": "hi", "tool_choice": {"type": "function", "name": "f"}},
            "tool_choice",
            None,
            None,
        ),
        (
            {"model": "m", "input": "hi", "text": {"format": {"type": "json_schema"}}},
            "text.format.name",
            "missing_required_parameter",
            None,
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "type": "web_search_call",
                        "id": "ws_1",
                        "status": "completed",
                        "action": {"type": "search", "query": "q"},
                    }
                ],
            },
            "input[0].type",
            "invalid_value",
            None,
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "file_id": "file_1", "detail": "auto"}],
                    }
                ],
            },
            "input[0].content[0]",
            "invalid_value",
            None,
        ),
        ({"model": "m"}, "input", "missing_required_parameter", None),
    ],
)
def test_refused(
    http: httpx.Client,
    upstream: FakeUpstream,
    body: Any,
    param: str | None,
    code: str | None,
    message: str | None,
) -> None:
    error = refused(http, body)
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    if message is not None:
        assert error["message"] == message
    assert upstream.requests == []


def test_unknown_conversation_and_another_tenants(
    http: httpx.Client, upstream: FakeUpstream
) -> None:
    error = refused(http, {"model": "m", "input": "x", "conversation": "conv_nope"}, 404)
    assert error == {
        "message": "Conversation with id 'conv_nope' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    mine = http.post(
        "/conversations", json={}, headers={"x-ms-user-isolation-key": "alice"}
    ).json()["id"]
    error = refused(
        http,
        {"model": "m", "input": "x", "conversation": mine},
        404,
        headers={"x-ms-user-isolation-key": "bob"},
    )
    assert error["message"] == f"Conversation with id '{mine}' not found."
    assert upstream.requests == []


def test_a_call_without_its_output_is_refused_before_the_model_server(
    client: OpenAI, http: httpx.Client, upstream: FakeUpstream
) -> None:
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
    conv = client.conversations.create(items=[{"role": "user", "content": "hi"}, call])
    error = refused(http, {"model": "m", "input": "next", "conversation": conv.id})
    assert error["message"] == "No tool output found for function call call_1."
    assert error["param"] == "input"
    orphan = {"type": "function_call_output", "call_id": "call_9", "output": "x"}
    error = refused(http, {"model": "m", "input": [orphan]})
    assert error["message"] == "No tool call found for function call output with call_id call_9."
    assert upstream.requests == []


def test_duplicate_items(client: OpenAI, http: httpx.Client, upstream: FakeUpstream) -> None:
    conv = client.conversations.create(items=[{"role": "user", "content": "hi"}])
    held = next(iter(client.conversations.items.list(conv.id))).id
    again = {"id": held, "type": "message", "role": "user", "content": "hi"}
    error = refused(http, {"model": "m", "input": [again], "conversation": conv.id})
    assert error["message"] == (
        f"Duplicate item found with id {held}. Remove duplicate items from your input and try again."
    )
    assert error["param"] == "input"
    twice = {"id": "msg_twice", "type": "message", "role": "user", "content": "x"}
    error = refused(http, {"model": "m", "input": [twice, twice]})
    assert error["message"].startswith("Duplicate item found with id msg_twice.")
    assert upstream.requests == []


def test_items_the_model_server_cannot_read(
    client: OpenAI, http: httpx.Client, upstream: FakeUpstream
) -> None:
    """OpenAI-encrypted reasoning and hosted-tool records are left out of the history; a
    compaction is refused (dropping it would silently lose what it summarises)."""
    conv = client.conversations.create(
        items=[
            {"role": "user", "content": "search the web"},
            {"type": "reasoning", "encrypted_content": "gAAAA…", "summary": []},
            {
                "type": "web_search_call",
                "id": "ws_1",
                "status": "completed",
                "action": {"type": "search", "query": "q"},
            },
            {"role": "assistant", "content": "Found it."},
        ]
    )
    upstream.script(Reply(body=completion("ok")))
    client.responses.create(model="m", conversation=conv.id, input="thanks")
    assert upstream.last["messages"] == [
        {"role": "user", "content": "search the web"},
        {"role": "assistant", "content": "Found it."},
        {"role": "user", "content": "thanks"},
    ]
    compacted = client.conversations.create(
        items=[
            {"type": "compaction", "encrypted_content": "gAAAA…"},
            {"role": "user", "content": "hi"},
        ]
    )
    held = [i.id for i in client.conversations.items.list(compacted.id, order="asc")]
    error = refused(http, {"model": "m", "input": "x", "conversation": compacted.id})
    assert error["param"] == "conversation" and error["code"] == "unsupported_item"
    assert held[0] in error["message"] and "compaction" in error["message"]
    assert len(upstream.requests) == 1


def test_no_upstream_configured(store: Store) -> None:
    api = Api(make_app(store))
    try:
        answer = api.post("/v1/responses", json={"model": "m", "input": "hi"})
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["code"] == "upstream_not_configured"
        assert "--upstream" in error["message"]
        # The body is still checked first.
        assert api.post("/v1/responses", json={"input": "hi"}).json()["error"]["param"] == "model"
    finally:
        api.close()


def test_the_upstream_key_is_a_secret() -> None:
    settings = Settings(upstream="http://127.0.0.1:8001/v1", upstream_key="sk-very-secret")
    shown = repr(settings)
    assert "sk-very-secret" not in shown
    assert "upstream_key='***'" in shown
    with pytest.raises(ValueError, match="credentials") as refused:  # issue 15, L4
        Settings(upstream="http://user:pw@127.0.0.1:8001/v1")
    assert "pw@" not in str(refused.value)
    with pytest.raises(ValueError, match="model_map"):
        Settings(model_map="gpt-4o")
    with pytest.raises(ValueError, match="upstream"):
        Settings(upstream="127.0.0.1:8001")


def test_azure_path(base_url: str, upstream: FakeUpstream) -> None:
    upstream.script(Reply(body=completion("hi from azure")))
    azure = base_url.removesuffix("/v1") + "/openai/v1/responses?api-version=preview"
    answer = httpx.post(azure, json={"model": "m", "input": "hi"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"][0]["content"][0]["text"] == "hi from azure"
