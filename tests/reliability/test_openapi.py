"""``GET /openapi.json``: convostore's own OpenAPI document, generated from the route table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from convostore.api import openapi
from convostore.api.app import build_router
from convostore.api.routing import PREFIXES
from convostore.store.sqlite import SQLiteStore
from tests.support import make_app

pytestmark = pytest.mark.reliability

SPEC_OPERATIONS = {
    "createConversation", "getConversation", "updateConversation", "deleteConversation",
    "createConversationItems", "listConversationItems", "getConversationItem",
    "deleteConversationItem",
}  # fmt: skip
SECRET = "acme:" + "s" * 40


def fetch(tmp_path: Path, path: str, **settings: Any) -> httpx.Response:
    app = make_app(SQLiteStore(tmp_path / "openapi.db"), **settings)

    async def run() -> httpx.Response:
        await app.startup()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get(path)
        finally:
            await app.shutdown()

    return asyncio.run(run())


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


def test_served_without_a_key_and_complete(tmp_path: Path) -> None:
    response = fetch(tmp_path, "/openapi.json", api_keys=SECRET)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert fetch(tmp_path, "/v1/conversations/conv_x", api_keys=SECRET).status_code == 401
    document = response.json()
    assert document["openapi"] == "3.1.0"
    operations = {
        op["operationId"]: (method.upper(), path)
        for path, entry in document["paths"].items()
        for method, op in entry.items()
    }
    assert operations.keys() >= SPEC_OPERATIONS
    # Every route of the table, every method, is in the document: nothing kept by hand.
    router = build_router()
    prefix = PREFIXES[0].rstrip("/")
    for route in router.routes:
        for method in route.methods:
            assert method.lower() in document["paths"][prefix + "/" + route.pattern.strip("/")]
    for path, route in router.root.items():
        assert set(m.lower() for m in route.methods) <= set(document["paths"][path])
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert "$recursiveRef" not in orjson.dumps(document).decode()
    assert document["paths"]["/openapi.json"]["get"]["security"] == []


def test_a_new_route_appears_by_itself() -> None:
    router = build_router()

    async def ping(services: Any, request: Any) -> bytes:
        """Answer pong.

        More text that is not the summary."""
        return b"{}"

    router.add("GET", "/conversations/{conversation_id}/ping", ping)
    document = openapi.build(router)
    operation = document["paths"]["/v1/conversations/{conversation_id}/ping"]["get"]
    assert operation["summary"] == "Answer pong."
    assert operation["parameters"][0]["name"] == "conversation_id"
    assert operation["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
