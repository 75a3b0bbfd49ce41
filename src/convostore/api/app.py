"""The ASGI application.

A deliberately small layer over uvicorn: one route table, one place where every
:class:`~convostore.errors.ApiError` (and anything unexpected) becomes the OpenAI error
envelope, and a lifespan that opens and migrates the store. Measured against Starlette
in benchmarks/http_layer.py: routing here costs a few microseconds per request.
"""

from __future__ import annotations

import logging
from typing import Any

from convostore import errors
from convostore.api import conversations, items, render
from convostore.api.auth import secret_of
from convostore.api.request import ClientDisconnected, Request
from convostore.api.routing import Router
from convostore.service import Services, build_services
from convostore.service.keys import DEFAULT_PROJECT, Authenticator
from convostore.settings import Settings, SettingsError
from convostore.store.base import Store, StoreUnavailable

log = logging.getLogger("convostore")

JSON_HEADERS = [(b"content-type", b"application/json")]
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
DATABASE_UNAVAILABLE = "The database is unavailable right now; nothing was changed. Please retry."


def build_router() -> Router:
    router = Router()
    router.add("POST", "/conversations", conversations.create)
    router.add("GET", "/conversations/{conversation_id}", conversations.retrieve)
    router.add("POST", "/conversations/{conversation_id}", conversations.update)
    router.add("DELETE", "/conversations/{conversation_id}", conversations.delete)
    router.add("POST", "/conversations/{conversation_id}/items", items.create)
    router.add("GET", "/conversations/{conversation_id}/items", items.list_)
    router.add("GET", "/conversations/{conversation_id}/items/{item_id}", items.retrieve)
    router.add("DELETE", "/conversations/{conversation_id}/items/{item_id}", items.delete)
    return router


class ConvoStore:
    """The convostore ASGI app over one store."""

    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self.services: Services = build_services(store)
        self.auth = Authenticator(
            store,
            env_keys=settings.env_keys,
            cache_seconds=settings.key_cache_seconds,
            rate_limit=settings.rate_limit,
        )
        self.router = build_router()
        self.max_body = settings.max_body_bytes

    async def startup(self) -> None:
        await self.store.open()
        try:
            if self.settings.migrate:
                applied = await self.store.migrate()
                if applied:
                    log.info("applied migrations %s", applied)
            await self.check_auth()
        except BaseException:
            await self.store.close()
            raise

    async def check_auth(self) -> None:
        """Refuse to serve without keys anywhere but on loopback, unless told to."""
        if not await self.auth.is_open():
            log.info("API keys required (Authorization: Bearer … or api-key: …)")
            return
        if self.settings.loopback:
            log.warning(
                "no API keys configured: serving WITHOUT authentication on %s (loopback only); "
                "create one with `convostore keys create`",
                self.settings.host,
            )
        elif self.settings.allow_unauthenticated:
            log.warning(
                "no API keys configured: serving WITHOUT authentication on %s "
                "(--allow-unauthenticated); anyone who can reach it can read every conversation",
                self.settings.host,
            )
        else:
            raise SettingsError(
                f"refusing to serve on {self.settings.host} without API keys: create one with "
                "`convostore keys create`, set CONVOSTORE_API_KEYS, bind to 127.0.0.1, or pass "
                "--allow-unauthenticated"
            )

    async def shutdown(self) -> None:
        await self.store.close()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = JSON_HEADERS
        try:
            project = DEFAULT_PROJECT
            if not await self.auth.is_open():
                principal = await self.auth.authenticate(secret_of(scope))
                if principal is not None:
                    project = principal.project
            raw_path: bytes | None = scope.get("raw_path")
            if raw_path:  # some servers and test transports leave the query on it
                raw_path = raw_path.partition(b"?")[0]
            handler, params = self.router.match(
                scope["method"], scope["path"], raw_path.decode("latin-1") if raw_path else None
            )
            request = Request(scope, receive, params, self.max_body, project)
            status, body = 200, await handler(self.services, request)
        except errors.ApiError as exc:
            status, body = exc.status, render.error(exc)
            if exc.headers:
                headers = [*JSON_HEADERS, *exc.headers]
        except ClientDisconnected:
            return
        except StoreUnavailable as exc:
            log.error("database unavailable on %s %s: %s", scope["method"], scope["path"], exc)
            unavailable = errors.ServiceUnavailable(DATABASE_UNAVAILABLE)
            status, body = unavailable.status, render.error(unavailable)
            headers = [*JSON_HEADERS, *unavailable.headers]
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            failure = errors.InternalError(SERVER_ERROR)
            status, body = failure.status, render.error(failure)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(settings: Settings | None = None, store: Store | None = None) -> ConvoStore:
    from convostore.store.factory import store_for

    settings = settings or Settings()
    return ConvoStore(settings, store or store_for(settings))
