"""The request as handlers see it: path parameters, query, headers and a JSON body."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

import orjson

from convostore import errors
from convostore.service.limits import Limits

Scope = dict[str, Any]

INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
    "contact us through our help center at help.openai.com.)"
)


DEFAULT_LIMITS = Limits()


class Request:
    __slots__ = (
        "_body",
        "_query",
        "limits",
        "max_body",
        "params",
        "project",
        "receive",
        "scope",
        "timeout",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Any,
        params: tuple[str, ...],
        max_body: int,
        project: str,
        timeout: float | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ):
        self.scope = scope
        self.limits = limits  # bounds of ids and JSON nesting (issue 15)
        self.timeout = timeout  # seconds the whole body may take to arrive (None: no bound)
        self.receive = receive
        self.params = params
        self.max_body = max_body
        self.project = project  # of the API key, or the default project on an open server
        self._query: list[tuple[str, str]] | None = None
        self._body: bytes | bytearray | None = None

    @property
    def method(self) -> str:
        method: str = self.scope["method"]
        return method

    def header(self, name: bytes) -> str | None:
        for key, value in self.scope["headers"]:
            if key == name:
                text: str = value.decode("latin-1")
                return text
        return None

    @property
    def query(self) -> list[tuple[str, str]]:
        if self._query is None:
            raw = self.scope.get("query_string", b"")
            self._query = parse_qsl(raw.decode("latin-1"), keep_blank_values=True) if raw else []
        return self._query

    def query_values(self, *names: str) -> list[str]:
        return [value for key, value in self.query if key in names]

    def query_value(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    async def body(self) -> bytes | bytearray:
        """The whole body (read once, then kept)."""
        if self._body is None:
            self._body = await self._bounded_body()
        return self._body

    async def _bounded_body(self) -> bytes | bytearray:
        declared = self.header(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise _too_large(self.max_body)
        if self.timeout is None:
            return await self._read_body()
        try:
            async with asyncio.timeout(self.timeout):
                return await self._read_body()
        except TimeoutError:
            raise errors.RequestTimeout(
                f"Request timeout: the request body did not arrive within {self.timeout:g} "
                "seconds.",
                code="request_timeout",
            ) from None

    async def _read_body(self) -> bytes | bytearray:
        # One growing buffer, not a list of chunks joined at the end: a large body is
        # held once, not twice, while it arrives (issue 15, M3).
        body: bytes | bytearray = b""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            if chunk:
                if len(body) + len(chunk) > self.max_body:
                    raise _too_large(self.max_body)
                if not body:
                    body = chunk
                else:
                    if isinstance(body, bytes):
                        body = bytearray(body)
                    body += chunk
            if not message.get("more_body", False):
                break
        return body

    async def json(self) -> Any:
        """The decoded JSON body, or ``None`` when there is none."""
        raw = await self.body()
        if not raw or raw.isspace():  # (strip() would copy a large body)
            return None
        content_type = self.header(b"content-type")
        if content_type is not None:
            media = content_type.split(";", 1)[0].strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                raise errors.UnsupportedMediaType(
                    f"Unsupported content type: '{media}'. This API method only accepts "
                    "'application/json' requests, but you specified the header "
                    f"'Content-Type: {content_type}'. Please try again with a supported content type.",
                    code="unsupported_content_type",
                )
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise errors.InvalidRequest(INVALID_JSON) from None
        self.limits.check_body_depth(raw, value)
        return value


class ClientDisconnected(Exception):
    """The client went away before its request body arrived."""


def _too_large(limit: int) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(
        f"Request body too large: the limit is {limit} bytes.", code="request_too_large"
    )
