"""The ASGI application.

A deliberately small layer over uvicorn: one route table, one place where every
:class:`~convostore.errors.ApiError` (and anything unexpected) becomes the OpenAI error
envelope, and a lifespan that opens and migrates the store. Measured against Starlette
in benchmarks/http_layer.py: routing here costs a few microseconds per request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from convostore import errors
from convostore.api import console, conversations, csrf, items, listing, openapi, render, responses
from convostore.api.auth import secret_of
from convostore.api.rebinding import check_loopback_host
from convostore.api.request import ClientDisconnected, Request
from convostore.api.routing import Router
from convostore.api.streaming import StreamingBody, send_streaming
from convostore.service import Services, build_services
from convostore.service.keys import DEFAULT_PROJECT, Authenticator
from convostore.settings import Settings, SettingsError
from convostore.store.base import Store, StoreUnavailable
from convostore.upstream import UpstreamConfig

if TYPE_CHECKING:
    from convostore.api.observability import Observed

log = logging.getLogger("convostore")

JSON_HEADERS = [(b"content-type", b"application/json")]
CLIENT_CLOSED = 499  # nginx's "client closed request": the client left before the answer
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
DATABASE_UNAVAILABLE = "The database is unavailable right now; nothing was changed. Please retry."
SHUTTING_DOWN = (
    "The server is shutting down and could not finish this request in time; "
    "it may not have been applied. Please retry."
)


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
    # Extensions (issue 7): OpenAI has no such routes.
    router.add("GET", "/conversations", listing.list_conversations, operationId="listConversations")
    router.add(
        "GET", "/conversations/search", listing.search, operationId="searchConversationItems"
    )
    # convostore's own OpenAPI document, generated from this table (issue 6); no key needed.
    router.add_root("GET", "/openapi.json", openapi.serve, public=True, operationId="getOpenAPI")
    # POST /v1/responses in front of a model server (issue 10, docs/responses.md).
    router.add("POST", "/responses", responses.create, operationId="createResponse")
    # The web console (issue 8, docs/console.md): static pages over this API; no key needed.
    for path, page in console.routes().items():
        router.add_page(path, page)
    return router


class ConvoStore:
    """The convostore ASGI app over one store."""

    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self.services: Services = build_services(store, upstream=upstream_config(settings))
        self.auth = Authenticator(
            store,
            env_keys=settings.api_key_pairs,
            cache_seconds=settings.key_cache_seconds,
            rate_limit=settings.rate_limit,
        )
        self.router = build_router()
        self.max_body = settings.max_body_bytes
        self.timeout = settings.request_timeout_seconds
        self.loopback = settings.loopback

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
        await self.services.responses.aclose()
        await self.store.close()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def http(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> tuple[int, str | None]:
        """Answer one request, with ``extra_headers`` on the answer (a request id).

        Returns the status sent (499 when the client left first) and the pattern of the
        route that served it, or None when no route was matched (then the caller finds
        the label itself: only refusals take that path)."""
        headers = JSON_HEADERS
        route: str | None = None
        try:
            csrf.check(scope)  # a browser page of another site changes nothing (api/csrf.py)
            project = DEFAULT_PROJECT
            if not self.router.is_public(scope["path"]):
                if not await self.auth.is_open():
                    principal = await self.auth.authenticate(secret_of(scope))
                    if principal is not None:
                        project = principal.project
                elif self.loopback:
                    check_loopback_host(scope)  # no DNS rebinding (api/rebinding.py)
            raw_path: bytes | None = scope.get("raw_path")
            if raw_path:  # some servers and test transports leave the query on it
                raw_path = raw_path.partition(b"?")[0]
            handler, params, route = self.router.match(
                scope["method"], scope["path"], raw_path.decode("latin-1") if raw_path else None
            )
            request = Request(scope, receive, params, self.max_body, project, self.timeout)
            status, body = 200, await handler(self.services, request)
        except errors.ApiError as exc:
            status, body = exc.status, render.error(exc)
            if exc.headers:
                headers = [*JSON_HEADERS, *exc.headers]
        except ClientDisconnected:
            return CLIENT_CLOSED, route
        except StoreUnavailable as exc:
            log.error("database unavailable on %s %s: %s", scope["method"], scope["path"], exc)
            unavailable = errors.ServiceUnavailable(DATABASE_UNAVAILABLE)
            status, body = unavailable.status, render.error(unavailable)
            headers = [*JSON_HEADERS, *unavailable.headers]
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            failure = errors.InternalError(SERVER_ERROR)
            status, body = failure.status, render.error(failure)
        except asyncio.CancelledError:
            # The shutdown grace period ran out and uvicorn cancels the request: answer with
            # the envelope (uvicorn would send a plain-text 500) and close the connection.
            log.warning("shutting down: cut %s %s", scope["method"], scope["path"])
            stopping = errors.ServiceUnavailable(SHUTTING_DOWN)
            status, body = stopping.status, render.error(stopping)
            headers = [*JSON_HEADERS, *stopping.headers, (b"connection", b"close")]
        if isinstance(body, StreamingBody):  # sent in pieces (api/streaming.py)
            if extra_headers:
                body.headers = [*body.headers, *extra_headers]
            await send_streaming(body, receive, send)
            return body.status, route
        if extra_headers:
            headers = [*headers, *extra_headers, (b"content-length", b"%d" % len(body))]
        else:
            headers = [*headers, (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return status, route

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


def upstream_config(settings: Settings) -> UpstreamConfig:
    """The model server of ``POST /v1/responses``, from the settings (issue 10)."""
    return UpstreamConfig(
        url=settings.upstream,
        key=settings.upstream_key,
        model_map=settings.model_names,
        timeout_seconds=settings.upstream_timeout_seconds,
        lease_seconds=settings.response_lease_seconds,
    )


def create_app(settings: Settings | None = None, store: Store | None = None) -> Observed:
    """The app to serve: ConvoStore wrapped in probes, metrics, request ids and access logs
    (:mod:`convostore.api.observability`); attributes such as ``store`` are the app's."""
    from convostore.api.observability import Observed
    from convostore.store.factory import store_for

    settings = settings or Settings()
    return Observed(ConvoStore(settings, store or store_for(settings)), settings)
