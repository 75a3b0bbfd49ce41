"""An HTTP client of one model server's Chat Completions endpoint (httpx).

One :class:`httpx.AsyncClient` per server process, made on first use (on the event loop
that serves requests) and closed at shutdown; its connection pool is reused by every
request. ``timeout_seconds`` bounds each wait: connecting, sending, and every read, so a
stream may run as long as chunks keep arriving, and a silent model server is given up
after that long.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from convostore.upstream.config import UpstreamConfig
from convostore.upstream.errors import (
    UpstreamRefused,
    UpstreamStreamBroken,
    UpstreamTimeout,
    UpstreamUnreachable,
)

Chunk = dict[str, Any]


class ChatUpstream:
    def __init__(
        self, config: UpstreamConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"accept": "application/json"}
            if self.config.key:
                headers["authorization"] = f"Bearer {self.config.key}"
            self._client = httpx.AsyncClient(
                headers=headers,
                timeout=httpx.Timeout(self.config.timeout_seconds),
                transport=self._transport,
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def complete(self, body: dict[str, Any], url: str | None = None) -> Chunk:
        """One non-streaming chat completion (or, with ``url``, another JSON call such as
        the model server's own ``/responses``); its decoded JSON body."""
        try:
            response = await self.client.post(
                url or self.config.chat_url, content=orjson.dumps(body), headers=_JSON
            )
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(_describe(exc)) from None
        except httpx.HTTPError as exc:
            raise UpstreamUnreachable(_describe(exc)) from None
        if response.status_code >= 300:
            raise refusal(response.status_code, response.content, response.headers)
        try:
            decoded = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise UpstreamRefused(
                502, "the model server answered with a body that is not JSON"
            ) from None
        if not isinstance(decoded, dict):
            raise UpstreamRefused(502, "the model server answered with JSON that is not an object")
        return decoded

    async def open_stream(self, body: dict[str, Any], url: str | None = None) -> ChatStream:
        """Send a streaming chat completion (or, with ``url``, another SSE call such as the
        model server's own ``/responses``) and wait for the answer's status; a non-2xx
        status raises here, before any chunk, so it can still be answered as an HTTP error."""
        request = self.client.build_request(
            "POST", url or self.config.chat_url, content=orjson.dumps(body), headers=_SSE
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(_describe(exc)) from None
        except httpx.HTTPError as exc:
            raise UpstreamUnreachable(_describe(exc)) from None
        if response.status_code >= 300:
            try:
                content = await response.aread()
            except httpx.HTTPError:
                content = b""
            finally:
                await response.aclose()
            raise refusal(response.status_code, content, response.headers)
        return ChatStream(response)


class ChatStream:
    """The chunks of one streamed chat completion, decoded, until ``data: [DONE]``."""

    def __init__(self, response: httpx.Response):
        self.response = response
        self.done = False  # [DONE] was seen

    async def aclose(self) -> None:
        await self.response.aclose()

    async def chunks(self) -> AsyncIterator[Chunk]:
        data: list[str] = []
        try:
            async for line in self.response.aiter_lines():
                if line:
                    if line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    continue  # `event:`, `id:`, `retry:` and `:` comments say nothing we need
                if not data:
                    continue
                payload, data = "\n".join(data), []
                if payload.strip() == "[DONE]":
                    self.done = True
                    return
                yield _chunk(payload)
            if data:  # the last event had no blank line after it
                payload = "\n".join(data)
                if payload.strip() == "[DONE]":
                    self.done = True
                    return
                yield _chunk(payload)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(_describe(exc)) from None
        except httpx.HTTPError as exc:
            raise UpstreamStreamBroken(_describe(exc)) from None


def _chunk(payload: str) -> Chunk:
    try:
        decoded = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise UpstreamStreamBroken("the model server sent a chunk that is not JSON") from None
    if not isinstance(decoded, dict):
        raise UpstreamStreamBroken("the model server sent a chunk that is not a JSON object")
    if "error" in decoded or decoded.get("object") == "error":
        # vLLM, SGLang and llama.cpp report a failure after the stream began this way.
        failure = refusal(500, payload.encode(), httpx.Headers())
        raise UpstreamStreamBroken(failure.message)
    return decoded


def refusal(status: int, content: bytes, headers: httpx.Headers) -> UpstreamRefused:
    """The model server's error answer, read from whichever error shape it uses."""
    message: str | None = None
    param = code = None
    try:
        decoded = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict):
        error = decoded.get("error", decoded)
        if isinstance(error, str):  # Ollama: {"error": "model 'x' not found"}
            message = error
        elif isinstance(error, dict):
            raw = error.get("message") or error.get("detail")
            message = raw if isinstance(raw, str) else None
            param = error.get("param") if isinstance(error.get("param"), str) else None
            raw_code = error.get("code")
            code = raw_code if isinstance(raw_code, str) else None
    if message is None:
        text = content.decode("utf-8", errors="replace").strip()
        message = text[:500] if text else f"HTTP {status} with an empty body"
    retry_after = headers.get("retry-after")
    return UpstreamRefused(
        status,
        message,
        param=param,
        code=code,
        retry_after=int(retry_after) if retry_after and retry_after.isdigit() else None,
    )


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "application/json", "accept": "text/event-stream"}
