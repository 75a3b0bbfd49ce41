"""The ceiling: the cheapest answers the HTTP server can give, to measure convostore against.

``bare`` is a raw ASGI callable that returns a fixed ~300-byte JSON body (a message item,
about the size of what ``get_item`` returns); ``starlette_app()`` returns the same bytes from a
Starlette route. ``benchmarks/run.py`` serves each with uvicorn exactly as convostore is
served (httptools, uvloop, one worker, no access log).
"""

from __future__ import annotations

from typing import Any

BODY = (
    b'{"id":"msg_5f1c0e7a9b3d4c2e8f6a1b0c9d8e7f6a5b4c3d2e1f0a9b8c","type":"message",'
    b'"status":"completed","role":"user","content":[{"type":"input_text","text":'
    b'"Summarise the last three messages of this conversation in one short paragraph, '
    b'keeping names and numbers exactly as they were written, please."}]}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
RESPONSE = {"type": "http.response.body", "body": BODY}


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send(START)
    await send(RESPONSE)


def starlette_app() -> Any:
    """The Starlette variant (an app factory: Starlette is imported only when it is served)."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def item(request: Any) -> Response:
        return Response(BODY, media_type="application/json")

    return Starlette(routes=[Route("/", item), Route("/{path:path}", item)])
