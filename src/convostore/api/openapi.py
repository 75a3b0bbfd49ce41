"""convostore's own OpenAPI document, served at ``GET /openapi.json``.

Generated from the code, never kept by hand:

* the paths, methods and path parameters come from the route table
  (:func:`convostore.api.app.build_router`), so a route added there appears here by
  itself (extension routes get a summary from their handler's docstring, or from the
  ``summary``/``operationId`` given to ``Router.add``);
* the query parameters and envelopes come from the constants the handlers check
  (``api/params.py``, the error envelope of ``api/render.py``); the request bodies are
  the schemas ``service/bodies.py`` and ``service/responses/body.py`` compile to validate
  them;
* the item schemas are the spec's own, as packaged for the item registry
  (``items/schemas.json``, generated from the spec by ``scripts/gen_item_schemas.py``).

It describes what convostore does, where that differs from OpenAI's description: an
empty page has ``null`` ends (D2), unknown keys at the top level of a body are refused
(inside an item they are kept, D9), ``include`` is also
accepted as ``include[]`` (D10), and a few ``required`` names the spec lists without
declaring them are left out (nobody could send them).
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from convostore import __version__
from convostore.api import conversations, items, params, responses
from convostore.api.request import Request
from convostore.api.routing import PREFIXES, Handler, Router
from convostore.items.registry import load_schemas
from convostore.service import Services, bodies
from convostore.service.responses import body as response_body

REF = "#/components/schemas/"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Operation:
    """What the route table cannot say about one of the spec's operations."""

    operation_id: str
    summary: str
    response: str
    body: str | None = None
    body_required: bool = False
    query: tuple[str, ...] = ()


# The spec's 8 operations, keyed by the handler that serves them.
OPERATIONS: dict[Handler, Operation] = {
    conversations.create: Operation(
        "createConversation",
        "Create a conversation (with up to 20 items).",
        "ConversationResource",
        body="CreateConversationBody",
    ),
    conversations.retrieve: Operation(
        "getConversation", "Get a conversation.", "ConversationResource"
    ),
    conversations.update: Operation(
        "updateConversation",
        "Replace a conversation's metadata.",
        "ConversationResource",
        body="UpdateConversationBody",
        body_required=True,
    ),
    conversations.delete: Operation(
        "deleteConversation",
        "Delete a conversation and its items.",
        "DeletedConversationResource",
    ),
    items.create: Operation(
        "createConversationItems",
        "Add up to 20 items to a conversation.",
        "ConversationItemList",
        body="CreateConversationItemsBody",
        body_required=True,
        query=("include",),
    ),
    items.list_: Operation(
        "listConversationItems",
        "List the items of a conversation.",
        "ConversationItemList",
        query=("limit", "order", "after", "include"),
    ),
    items.retrieve: Operation(
        "getConversationItem",
        "Get one item of a conversation.",
        "ConversationItem",
        query=("include",),
    ),
    items.delete: Operation(
        "deleteConversationItem",
        "Delete an item; answers the parent conversation.",
        "ConversationResource",
    ),
}

# convostore's own routes that take a body: the schema it is checked with.
EXTENSION_BODIES: dict[Handler, str] = {
    responses.create: "CreateResponseBody",
    responses.compact: "CompactResponseBody",
}

ERROR_STATUSES = {
    "400": "Invalid request: bad JSON, body or query",
    "401": "Missing or invalid API key",
    "403": (
        "A browser page of another site tried to change data (api/csrf.py), or an open "
        "server was addressed by a host name that is not loopback (api/rebinding.py)"
    ),
    "404": "Unknown route, conversation or item",
    "405": "Known route, other method",
    "408": "The request did not arrive in time",
    "413": "Body over --max-body-bytes",
    "415": "Content type other than JSON",
    "422": "Idempotency-Key used before with another request",
    "429": "Over --rate-limit",
    "431": "Request headers too large",
    "500": "Unexpected server error",
    "503": "Database unavailable, or too many connections; retry",
}


def _schemas() -> dict[str, Any]:
    """Component schemas: the packaged item schemas plus the bodies and envelopes."""
    out: dict[str, Any] = {}
    for name, schema in load_schemas().items():
        out[name] = _fix_item_schema(name, copy.deepcopy(schema))
    clash = out.keys() & (bodies.SCHEMAS.keys() | response_body.SCHEMAS.keys())
    assert not clash, f"a body schema would replace a spec schema: {sorted(clash)}"
    # The very schemas the bodies are checked with.
    out.update(copy.deepcopy(response_body.SCHEMAS))
    _map_discriminators(out)
    nullable_id = {"type": ["string", "null"]}
    out.update(copy.deepcopy(bodies.SCHEMAS))
    out.update(
        {
            "ConversationResource": _closed(
                id={"type": "string"},
                object={"type": "string", "enum": ["conversation"]},
                created_at={"type": "integer"},
                metadata={"$ref": REF + "Metadata"},
            ),
            "DeletedConversationResource": _closed(
                id={"type": "string"},
                object={"type": "string", "enum": ["conversation.deleted"]},
                deleted={"type": "boolean"},
            ),
            "ConversationItemList": _closed(
                object={"type": "string", "enum": ["list"]},
                data={"type": "array", "items": {"$ref": REF + "ConversationItem"}},
                first_id=nullable_id,
                last_id=nullable_id,
                has_more={"type": "boolean"},
            ),
            "Error": _closed(
                error=_closed(
                    message={"type": "string"},
                    type={"type": "string"},
                    param={"type": ["string", "null"]},
                    code={"type": ["string", "null"]},
                )
            ),
        }
    )
    return out


def _closed(**properties: Any) -> dict[str, Any]:
    """An object schema with exactly these properties, all required."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def _fix_item_schema(name: str, schema: Any) -> Any:
    """Make a packaged schema standard and true to what is served.

    ``$recursiveRef: '#'`` (draft 2019-09, in ``CompoundFilter``) becomes a plain ``$ref``
    to the schema; a ``required`` name the schema does not declare is dropped (under D9
    no client could send it, and no stored item has it).
    """
    recursive = isinstance(schema, dict) and schema.pop("$recursiveAnchor", False)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if recursive and node.get("$recursiveRef") == "#":
                del node["$recursiveRef"]
                node["$ref"] = REF + name
            props = node.get("properties")
            if isinstance(props, dict) and isinstance(node.get("required"), list):
                node["required"] = [key for key in node["required"] if key in props]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return schema


def _type_values(schemas: Mapping[str, Any], schema: Any) -> set[str]:
    """The values a member schema allows for its ``type`` property."""
    while isinstance(schema, dict) and "$ref" in schema:
        schema = schemas[schema["$ref"].removeprefix(REF)]
    if not isinstance(schema, dict):
        return set()
    found: set[str] = set()
    for part in schema.get("allOf", ()):
        found |= _type_values(schemas, part)
    prop = schema.get("properties", {}).get("type")
    while isinstance(prop, dict) and "$ref" in prop:
        prop = schemas[prop["$ref"].removeprefix(REF)]
    if isinstance(prop, dict):
        found.update(v for v in prop.get("enum", ()) if isinstance(v, str))
        if isinstance(prop.get("const"), str):
            found.add(prop["const"])
    return found


def _map_discriminators(schemas: dict[str, Any]) -> None:
    """Give every ``discriminator`` the ``mapping`` the spec leaves out.

    Without one, OpenAPI reads a discriminator value as a schema *name*, and the spec's
    values are item types (``message``), not names (``Message``). The mapping is built
    from each member's ``type`` enum; a union where two members share a value keeps no
    discriminator (its ``oneOf`` still decides).
    """
    stack: list[Any] = list(schemas.values())
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        found = node.get("discriminator")
        members = node.get("oneOf") or node.get("anyOf")
        if not isinstance(found, dict) or "mapping" in found or not members:
            continue
        mapping: dict[str, str] = {}
        shared = False
        for member in members:
            if not isinstance(member, dict) or "$ref" not in member:
                shared = True
                break
            for value in _type_values(schemas, member):
                shared = shared or value in mapping
                mapping[value] = member["$ref"]
        if shared or not mapping:
            del node["discriminator"]
        else:
            found["mapping"] = dict(sorted(mapping.items()))


def _query_parameters() -> dict[str, dict[str, Any]]:
    include = {"type": "array", "items": {"$ref": REF + "IncludeEnum"}}
    return {
        "limit": {
            "type": "integer",
            "minimum": params.LIMIT_MIN,
            "maximum": params.LIMIT_MAX,
            "default": params.LIMIT_DEFAULT,
        },
        "order": {"type": "string", "enum": list(params.ORDERS), "default": "desc"},
        "after": {"type": "string"},
        "include": include,
        "include[]": include,
    }


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^A-Za-z0-9]+", text) if w]


def _derived_id(method: str, path: str) -> str:
    words = [method.lower()] + [w for w in _words(path) if w not in ("v1",)]
    return words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])


def _summary(handler: Handler) -> str:
    doc = inspect.getdoc(handler) or ""
    return doc.strip().split("\n\n", 1)[0].replace("\n", " ")


def _responses(success: dict[str, Any]) -> dict[str, Any]:
    error = {"content": {JSON: {"schema": {"$ref": REF + "Error"}}}}
    out = {"200": success}
    out.update({code: {"description": text, **error} for code, text in ERROR_STATUSES.items()})
    return out


def build(router: Router) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes of ``router``."""
    query = _query_parameters()
    isolation = {
        "name": "x-ms-user-isolation-key",
        "in": "header",
        "required": False,
        "description": "End-user isolation key: part of the owner of a conversation (D11).",
        "schema": {"type": "string"},
    }
    idempotency = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": (
            "Makes a retry safe: the same key with the same request within "
            "--idempotency-hours answers the first answer and changes nothing; with "
            "another request, 422 (docs/api.md)."
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    }
    paths: dict[str, Any] = {}
    prefix = PREFIXES[0].rstrip("/")
    for route in router.routes:
        path = prefix + "/" + route.pattern.strip("/")
        names = re.findall(r"\{([^}]+)\}", route.pattern)
        entry: dict[str, Any] = {}
        for method, handler in sorted(route.methods.items()):
            known = OPERATIONS.get(handler)
            doc: Mapping[str, str] = route.docs.get(method, {})
            parameters: list[dict[str, Any]] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in names
            ]
            if known is not None:
                parameters += [
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "schema": query[name],
                        **({"style": "form", "explode": True} if "include" in name else {}),
                    }
                    for name in (*known.query, *(["include[]"] if "include" in known.query else []))
                ]
                success: dict[str, Any] = {
                    "description": "OK",
                    "content": {JSON: {"schema": {"$ref": REF + known.response}}},
                }
            else:
                success = {"description": "OK", "content": {JSON: {"schema": {"type": "object"}}}}
            parameters.append(isolation)
            if known is not None and known.body is not None:  # the POST routes that write
                parameters.append(idempotency)
            operation: dict[str, Any] = {
                "operationId": doc.get(
                    "operationId", known.operation_id if known else _derived_id(method, path)
                ),
                "summary": doc.get("summary", known.summary if known else _summary(handler)),
                "tags": ["Conversations" if known else "Extensions"],
                "parameters": parameters,
                "responses": _responses(success),
            }
            if known is not None and known.body is not None:
                operation["requestBody"] = {
                    "required": known.body_required,
                    "content": {JSON: {"schema": {"$ref": REF + known.body}}},
                }
            elif handler in EXTENSION_BODIES:
                operation["requestBody"] = {
                    "required": True,
                    "content": {JSON: {"schema": {"$ref": REF + EXTENSION_BODIES[handler]}}},
                }
            entry[method.lower()] = operation
        paths[path] = entry
    for path, route in sorted(router.root.items()):
        entry = {}
        for method, handler in sorted(route.methods.items()):
            doc = route.docs.get(method, {})
            operation = {
                "operationId": doc.get("operationId", _derived_id(method, path)),
                "summary": doc.get("summary", _summary(handler)),
                "tags": ["Server"],
                "responses": _responses(
                    {"description": "OK", "content": {JSON: {"schema": {"type": "object"}}}}
                ),
            }
            if router.is_public(path):
                operation["security"] = []
            entry[method.lower()] = operation
        paths[path] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "convostore",
            "version": __version__,
            "description": (
                "A self-hosted server for the OpenAI Conversations API. Every /v1 path is "
                "also served under /openai/v1 (Azure), where an api-version query parameter "
                "is accepted and ignored. Generated from the server's route table."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"ApiKeyAuth": []}, {"AzureApiKey": []}],
        "tags": [
            {"name": "Conversations", "description": "The spec's 8 operations."},
            {"name": "Extensions", "description": "convostore's own routes."},
            {"name": "Server", "description": "About the server itself."},
        ],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "ApiKeyAuth": {"type": "http", "scheme": "bearer"},
                "AzureApiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
            },
        },
    }


@functools.cache
def document() -> bytes:
    """The document of the server's route table, encoded once."""
    from convostore.api.app import build_router

    return orjson.dumps(build(build_router()))


async def serve(services: Services, request: Request) -> bytes:
    """This server's OpenAPI document (generated from its route table)."""
    return document()
