"""Fuzzing: schemathesis against the OpenAPI document the server serves about itself,
and hypothesis-made item payloads against the create routes.

Every answer must be one of: a 2xx whose body is valid against the OpenAI spec excerpt
(``spec/``; extension routes against convostore's own document), or a non-5xx
answer in the OpenAI error envelope. No answer may be a 5xx.

Default run: a few hundred requests. ``CONVOSTORE_FULL=1``: over 10,000.
Run alone: ``python -m pytest -m fuzz``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from convostore.items.registry import load_schemas
from tests import spec_schema
from tests.reliability.server import Server, scale

pytestmark = [pytest.mark.reliability, pytest.mark.fuzz]

SPEC_OPS = {
    ("POST", "/v1/conversations"): "conversation",
    ("GET", "/v1/conversations/{conversation_id}"): "conversation",
    ("POST", "/v1/conversations/{conversation_id}"): "conversation",
    ("DELETE", "/v1/conversations/{conversation_id}"): "deleted",
    ("POST", "/v1/conversations/{conversation_id}/items"): "list",
    ("GET", "/v1/conversations/{conversation_id}/items"): "list",
    ("GET", "/v1/conversations/{conversation_id}/items/{item_id}"): "item",
    ("DELETE", "/v1/conversations/{conversation_id}/items/{item_id}"): "conversation",
}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]  # fmt: skip
COUNTS: dict[str, int] = {"requests": 0, "2xx": 0, "4xx": 0, "5xx": 0}
FUZZ_SETTINGS = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with Server(tmp / "fuzz.db", tmp / "server.log", "--max-body-bytes", str(16 * 1024 * 1024)) as s:
        yield s
        log = s.output()
    assert "Traceback" not in log, log[-5000:]
    print(f"\nfuzz: {COUNTS}")


def check_answer(method: str, template: str | None, status: int, body: bytes) -> None:
    """The issue's three rules, for any answer."""
    COUNTS["requests"] += 1
    COUNTS[f"{status // 100}xx"] = COUNTS.get(f"{status // 100}xx", 0) + 1
    assert status < 500, (method, template, status, body[:500])
    parsed = orjson.loads(body)
    if status >= 300:
        spec_schema.error_envelope_ok(parsed)
        return
    op = SPEC_OPS.get((method, template or ""))
    if op is not None:
        spec_schema.validate_response(op, parsed)


def seed(server: Server) -> tuple[str, str]:
    """A fresh conversation with two items: (conversation id, item id)."""
    response = httpx.post(
        server.url + "/conversations",
        json={"items": [{"role": "user", "content": "seed"}, {"role": "assistant", "content": "ok"}]},
        timeout=10,
    )
    check_answer("POST", "/v1/conversations", response.status_code, response.content)
    conversation_id = response.json()["id"]
    items = httpx.get(f"{server.url}/conversations/{conversation_id}/items", timeout=10).json()
    return conversation_id, items["data"][0]["id"]


def test_schemathesis_against_the_served_document(server: Server) -> None:
    schema = schemathesis.openapi.from_url(server.base + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9  # the spec's 8 and /openapi.json, plus any extension
    per_operation = scale(20, 700)
    state = {"n": 0}
    seeded = seed(server)

    def cases(operation: Any, mode: GenerationMode) -> Any:
        template = operation.path

        @settings(FUZZ_SETTINGS, max_examples=per_operation // 2)
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            state["n"] += 1
            if case.path_parameters and state["n"] % 2 == 0:
                # Half the cases address a conversation and an item that exist.
                target = seed(server) if case.method == "DELETE" else seeded
                if "conversation_id" in case.path_parameters:
                    case.path_parameters["conversation_id"] = target[0]
                if "item_id" in case.path_parameters:
                    case.path_parameters["item_id"] = target[1]
            response = case.call(base_url=server.base, timeout=60)
            check_answer(case.method, template, response.status_code, response.content)
            case.validate_response(response, checks=CHECKS)

        return run

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases(operation, mode)()


# -- hypothesis-made items ---------------------------------------------------------------------

SCHEMAS = load_schemas()
TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", "msg_", "fc_x", "a" * 600, "\u0000", "\ud7ff", "🙂" * 50, "<script>", "' OR 1=1 --"]
)
JSON_LEAF = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | TEXT
)


def from_schema(schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped by a JSON schema of the spec (mostly valid, never exhaustive)."""
    if depth > 6 or not isinstance(schema, dict):
        return JSON_LEAF
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: from_schema(SCHEMAS[name], depth + 1))
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return st.one_of([from_schema(s, depth + 1) for s in schema[key]])
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            part = SCHEMAS[part["$ref"].rsplit("/", 1)[-1]] if "$ref" in part else part
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return from_schema(merged, depth + 1)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, depth) for k in kind])
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = [k for k in schema.get("required", []) if k in properties]
        optional = [k for k in properties if k not in required]
        return st.fixed_dictionaries(
            {k: from_schema(properties[k], depth + 1) for k in required},
            optional={k: from_schema(properties[k], depth + 1) for k in optional},
        )
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), depth + 1), max_size=3)
    if kind == "string":
        return TEXT
    if kind == "integer":
        return st.integers(-(2**40), 2**40)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return JSON_LEAF


def mutate(value: Any) -> st.SearchStrategy[Any]:
    """The value, or one change to it: a key dropped, added or retyped, a string inflated."""
    if not isinstance(value, dict) or not value:
        return st.just(value) | JSON_LEAF
    keys = sorted(value)
    return st.one_of(
        st.just(value),
        st.sampled_from(keys).map(lambda k: {x: v for x, v in value.items() if x != k}),
        st.tuples(st.text(string.ascii_lowercase, min_size=1, max_size=8), JSON_LEAF).map(
            lambda kv: {**value, kv[0]: kv[1]}
        ),
        st.tuples(st.sampled_from(keys), JSON_LEAF).map(lambda kv: {**value, kv[0]: kv[1]}),
        st.sampled_from(keys).map(lambda k: {**value, k: "x" * 5000}),
        st.sampled_from(keys).map(lambda k: {**value, k: [value[k]] * 3}),
    )


ITEM = from_schema(SCHEMAS["InputItem"]).flatmap(mutate)


def test_hypothesis_items(server: Server) -> None:
    """Batches of generated items: each answer follows the rules, and what was accepted
    reads back exactly as the create answered it."""
    conversation_id, _ = seed(server)
    stored = {"batches": 0}

    @settings(FUZZ_SETTINGS, max_examples=scale(200, 4000))
    @given(
        items=st.lists(ITEM, min_size=1, max_size=4),
        create=st.booleans(),
    )
    def run(items: list[Any], create: bool) -> None:
        path = "/conversations" if create else f"/conversations/{conversation_id}/items"
        template = "/v1/conversations" if create else "/v1/conversations/{conversation_id}/items"
        response = httpx.post(server.url + path, json={"items": items}, timeout=60)
        check_answer("POST", template, response.status_code, response.content)
        if response.status_code != 200:
            return
        stored["batches"] += 1
        if create:
            cid = response.json()["id"]
            listed = httpx.get(f"{server.url}/conversations/{cid}/items", params={"order": "asc"}, timeout=60)
            check_answer("GET", "/v1/conversations/{conversation_id}/items", listed.status_code, listed.content)
            assert len(listed.json()["data"]) == len(items)
            return
        for item in response.json()["data"]:
            item_path = f"/conversations/{conversation_id}/items/{quote(item['id'], safe='')}"
            again = httpx.get(server.url + item_path, timeout=60)
            check_answer("GET", "/v1/conversations/{conversation_id}/items/{item_id}", again.status_code, again.content)
            assert again.json() == item

    run()
    print(f"\nhypothesis items: {stored['batches']} batches stored")
    assert re.match(r"conv_", conversation_id)
    assert stored["batches"] > 0
