"""A scripted model server: a real HTTP server (uvicorn, a tiny ASGI app) on loopback that
answers ``POST /v1/chat/completions`` the way vLLM does, from a script the test writes.

Each request takes the next :class:`Reply` of the script: a chat.completion JSON body, or
a stream of chat.completion.chunk events (``data: …`` lines, ``data: [DONE]`` at the end,
``reasoning_content`` deltas, tool call deltas with ``index``, ``finish_reason``, and the
``usage`` chunk with empty ``choices`` that ``stream_options.include_usage`` asks for).
A reply can wait before answering (a delay, or until the test releases it), pause between chunks, cut the connection after some
chunks (the client sees a broken chunked body), or answer with an error status and an
OpenAI-style error envelope. Every request body received is kept for the test to read.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn

from tests.support import free_port

MODEL = "qwen2.5-7b-instruct"


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None  # a JSON answer (non-streaming, or an error)
    chunks: list[dict[str, Any] | str] | None = None  # a streamed answer
    delay: float = 0.0  # seconds before the answer starts
    chunk_delay: float = 0.0  # seconds between two chunks
    cut_after: int | None = None  # break the connection after this many chunks
    done: bool = True  # send data: [DONE] at the end
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # Set by the test when the answer may start: holds a response in flight for exactly as
    # long as the test needs (the test waits on states, not on a delay).
    release: threading.Event | None = None


class FakeUpstream:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []  # of each request, in order
        self.cancelled = 0  # streams whose client went away before the end
        self.abandoned = 0  # delayed answers whose client went away while they waited
        self.lock = threading.Lock()
        self.url = ""
        # Issue 18: a window to report (vLLM's GET /v1/models max_model_len), and a
        # tokenizer (POST /tokenize, 4 bytes a token) when ``tokenizer`` is set.
        self.max_model_len: int | None = None
        self.n_ctx: int | None = None  # llama.cpp's GET /props default_generation_settings
        self.tokenizer = False
        self.tokenized = 0  # texts sent to /tokenize
        self.model_lists = 0  # GET /v1/models answered

    def script(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/v1/models" and self.max_model_len is not None:
            self.model_lists += 1
            listed = {"id": MODEL, "object": "model", "max_model_len": self.max_model_len}
            await _json(send, 200, {"object": "list", "data": [listed]})
            return
        if scope["path"] == "/props" and self.n_ctx is not None:
            await _json(send, 200, {"default_generation_settings": {"n_ctx": self.n_ctx}})
            return
        if scope["path"] == "/tokenize" and self.tokenizer:
            asked = orjson.loads(body)
            with self.lock:
                self.tokenized += 1
            count = fake_tokens(asked["prompt"])
            await _json(send, 200, {"count": count, "tokens": list(range(count))})
            return
        if scope["path"] not in ("/v1/chat/completions", "/v1/responses"):
            await _json(send, 404, {"error": {"message": "not found", "type": "NotFoundError"}})
            return
        with self.lock:
            self.requests.append(orjson.loads(body))
            self.paths.append(scope["path"])
            self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
            reply = self.replies.pop(0) if self.replies else Reply(body=completion("(no script)"))
        if reply.delay:
            # Wait, unless the client (convostore) goes away meanwhile.
            gone_early = asyncio.ensure_future(receive())
            done, _ = await asyncio.wait({gone_early}, timeout=reply.delay)
            if done:
                self.abandoned += 1
                return
            gone_early.cancel()
        if reply.release is not None:
            while not reply.release.is_set():
                await asyncio.sleep(0.005)
        if reply.chunks is None:
            await _json(send, reply.status, reply.body or {}, reply.headers)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), *reply.headers],
            }
        )
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            for index, chunk in enumerate(reply.chunks):
                if gone.is_set():  # the client (convostore) closed the stream
                    self.cancelled += 1
                    return
                if reply.cut_after is not None and index >= reply.cut_after:
                    raise ConnectionAbortedError("scripted cut")  # uvicorn drops the connection
                data = chunk if isinstance(chunk, str) else orjson.dumps(chunk).decode()
                await send(
                    {
                        "type": "http.response.body",
                        "body": f"data: {data}\n\n".encode(),
                        "more_body": True,
                    }
                )
                if reply.chunk_delay:
                    await asyncio.sleep(reply.chunk_delay)
        finally:
            watcher.cancel()
        tail = b"data: [DONE]\n\n" if reply.done else b""
        await send({"type": "http.response.body", "body": tail, "more_body": False})


async def _json(send: Any, status: int, body: dict[str, Any], headers: Any = ()) -> None:
    raw = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": raw})


def fake_tokens(text: str) -> int:
    """The scripted model server's tokenizer: 4 UTF-8 bytes a token, rounded up."""
    return -(-len(text.encode()) // 4)


# -- answers shaped like vLLM's ------------------------------------------------------------------

USAGE = {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28}


def completion(
    content: str | None = None,
    *,
    tool_calls: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    reasoning: str | None = None,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": []}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    for call_id, name, arguments in tool_calls:
        message["tool_calls"].append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        )
    return {
        "id": "chatcmpl-8f3e1c2a",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish or ("tool_calls" if tool_calls else "stop"),
                "stop_reason": None,
            }
        ],
        "usage": usage or USAGE,
    }


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-5b7d9e01",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def chunks(
    text: list[str] = (),  # type: ignore[assignment]
    *,
    reasoning: list[str] = (),  # type: ignore[assignment]
    tool_calls: list[tuple[str, str, list[str]]] = (),  # type: ignore[assignment]
    finish: str | None = None,
    usage: dict[str, Any] | None = USAGE,
) -> list[dict[str, Any] | str]:
    """A vLLM-like chunk stream: role chunk, reasoning, text, tool calls, finish, usage."""
    out: list[dict[str, Any] | str] = [_chunk({"role": "assistant", "content": ""})]
    out += [_chunk({"reasoning_content": piece}) for piece in reasoning]
    out += [_chunk({"content": piece}) for piece in text]
    for index, (call_id, name, pieces) in enumerate(tool_calls):
        out.append(
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        out += [
            _chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in pieces
        ]
    out.append(_chunk({}, finish or ("tool_calls" if tool_calls else "stop")))
    if usage is not None:
        out.append(
            {
                "id": "chatcmpl-5b7d9e01",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": MODEL,
                "choices": [],
                "usage": usage,
            }
        )
    return out


def error_body(message: str, kind: str = "BadRequestError", code: int = 400) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


# -- serving an ASGI app on loopback, in a thread -----------------------------------------------


@contextmanager
def serve(app: Any, *, port: int | None = None) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 in a thread; yields ``http://127.0.0.1:P``."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
