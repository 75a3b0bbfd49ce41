"""The ASGI application.

A deliberately small layer over uvicorn: one route table, one place where every
:class:`~convostore.errors.ApiError`, store fact (:mod:`convostore.service.store_errors`)
and anything unexpected becomes the OpenAI error envelope, the probes, metrics, request
ids and access log (one module each), and a lifespan that opens and migrates the store
and starts the retention purge. Measured against a bare endpoint and a Starlette route
by the benchmark suite (benchmarks/ceiling_apps.py, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import IO, Any

from convostore import errors
from convostore.api import (
    console,
    conversations,
    csrf,
    items,
    listing,
    openapi,
    probes,
    render,
    request_ids,
    responses,
)
from convostore.api.access_log import AccessLog
from convostore.api.auth import secret_of
from convostore.api.metrics import Metrics
from convostore.api.probes import Probes
from convostore.api.protocol import send_whole
from convostore.api.rebinding import check_loopback_host
from convostore.api.request import ClientDisconnected, Request
from convostore.api.request_ids import RequestIds
from convostore.api.routing import Handler, Router
from convostore.api.streaming import StreamingBody, send_streaming
from convostore.clock import SYSTEM, Clock
from convostore.items.registry import Registry
from convostore.logformat import REQUEST_ID
from convostore.service import Services, build_services, retention, store_errors
from convostore.service.keys import DEFAULT_PROJECT, Authenticator
from convostore.service.limits import Limits
from convostore.settings import Settings, SettingsError
from convostore.store.base import OutcomeUnknown, Store, StoreError, StoreUnavailable
from convostore.upstream import UpstreamConfig

log = logging.getLogger("convostore")

JSON_HEADERS = [(b"content-type", b"application/json")]
# The same as header lines, with the request id and the length (see ConvoStore.answer).
JSON_FIELDS = b"content-type: application/json\r\nx-request-id: %s\r\ncontent-length: %d\r\n"
CLIENT_CLOSED = 499  # nginx's "client closed request": the client left before the answer
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
DATABASE_UNAVAILABLE = "The database is unavailable right now; nothing was changed. Please retry."
OUTCOME_UNKNOWN = (
    "The connection to the database was lost while this change was being committed: it "
    "may or may not have been applied. Retry with the same Idempotency-Key header to apply "
    "it exactly once, or read the resource to find out."
)
SHUTTING_DOWN = (
    "The server is shutting down and could not finish this request in time; "
    "it may not have been applied. Please retry."
)


# The /v1 routes, a row each: method, path, handler, and the operationId of a route
# OpenAI's spec does not name (None: the spec's own).
ROUTES: tuple[tuple[str, str, Handler, str | None], ...] = (
    ("POST", "/conversations", conversations.create, None),
    ("GET", "/conversations/{conversation_id}", conversations.retrieve, None),
    ("POST", "/conversations/{conversation_id}", conversations.update, None),
    ("DELETE", "/conversations/{conversation_id}", conversations.delete, None),
    ("POST", "/conversations/{conversation_id}/items", items.create, None),
    ("GET", "/conversations/{conversation_id}/items", items.list_, None),
    ("GET", "/conversations/{conversation_id}/items/{item_id}", items.retrieve, None),
    ("DELETE", "/conversations/{conversation_id}/items/{item_id}", items.delete, None),
    # Extensions (issue 7): OpenAI has no such routes.
    ("GET", "/conversations", listing.list_conversations, "listConversations"),
    ("GET", "/conversations/search", listing.search, "searchConversationItems"),
    # Issue 18: fork a conversation at an item (docs/fork.md).
    ("POST", "/conversations/{conversation_id}/fork", conversations.fork, "forkConversation"),
    # POST /v1/responses in front of a model server (issue 10, docs/responses.md).
    ("POST", "/responses", responses.create, "createResponse"),
    ("POST", "/responses/compact", responses.compact, "compactResponse"),
    # Stored responses (issue 17, docs/responses.md).
    ("GET", "/responses/{response_id}", responses.retrieve, "getResponse"),
    ("DELETE", "/responses/{response_id}", responses.delete, "deleteResponse"),
    ("POST", "/responses/{response_id}/cancel", responses.cancel, "cancelResponse"),
    ("GET", "/responses/{response_id}/input_items", responses.input_items, "listInputItems"),
)


def build_router() -> Router:
    router = Router()
    for method, path, handler, operation in ROUTES:
        doc = {} if operation is None else {"operationId": operation}
        router.add(method, path, handler, **doc)
    # convostore's own OpenAPI document, generated from this table (issue 6); no key needed.
    router.add_root("GET", "/openapi.json", openapi.serve, public=True, operationId="getOpenAPI")
    # The web console (issue 8, docs/console.md): static pages over this API; no key needed.
    for path, page in console.routes().items():
        router.add_page(path, page)
    return router


class ConvoStore:
    """The convostore ASGI app over one store, observed: probes, metrics, request ids and
    access logs (docs/observability.md), and the retention purge in the background."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        log_stream: IO[str] | None = None,
        clock: Clock = SYSTEM,
    ):
        self.settings = settings
        self.store = store
        self.limits = Limits(
            max_id_length=settings.max_id_length,
            max_json_depth=settings.max_json_depth,
            max_item_parts=settings.max_item_parts,
            max_item_bytes=settings.max_item_bytes,
        )
        registry = Registry(keep_unknown=settings.unknown_item_fields == "keep")
        self.services: Services = build_services(
            store,
            registry,
            upstream=upstream_config(settings),
            clock=clock,
            idempotency_seconds=settings.idempotency_hours * 3600,
            limits=self.limits,
            page_max_bytes=settings.page_max_bytes,
        )
        self.auth = Authenticator(
            store,
            env_keys=settings.api_key_pairs,
            cache_seconds=settings.key_cache_seconds,
            rate_limit=settings.rate_limit,
            clock=clock,
        )
        self.router = build_router()
        self.max_body = settings.max_body_bytes
        self.timeout = settings.request_timeout_seconds
        self.loopback = settings.loopback
        self.metrics = Metrics(store) if settings.metrics else None
        self.access_log = (
            AccessLog(log_stream, settings.log_format) if settings.access_log else None
        )
        self.request_ids = RequestIds()
        self.probes = Probes(store, self.metrics, self.check_probe)
        self.purger: asyncio.Task[None] | None = None

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
        self.start_purging()

    def start_purging(self) -> None:
        """The retention purge (docs/retention.md), which also deletes expired
        Idempotency-Key answers (docs/api.md), so it always runs."""
        rules = retention.rules(self.settings.retention_days, self.settings.retention_by_project)
        if self.purger is None:
            self.purger = retention.start_purging(
                self.store,
                rules,
                batch_size=self.settings.purge_batch_size,
                interval=self.settings.purge_interval,
                on_report=self.metrics.purged if self.metrics else None,
                idempotency=self.services.idempotency,
            )

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

    async def check_probe(self, scope: dict[str, Any]) -> None:
        """``/readyz`` and ``/metrics`` reveal the schema and every project's traffic and
        item counts: on a keyed server they need a key (any project's) unless
        ``public_probes``; on an open one, a loopback Host like every route (issue 15, L8).
        ``/healthz`` says only that the process is up and needs neither."""
        if await self.auth.is_open():
            if self.loopback:
                check_loopback_host(scope)
        elif not self.settings.public_probes:
            await self.auth.authenticate(secret_of(scope))

    async def shutdown(self) -> None:
        if self.purger is not None:
            await retention.stop_purging(self.purger)
            self.purger = None
        if self.access_log is not None:
            self.access_log.flush()
        await self.services.responses.aclose()
        await self.store.close()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path in probes.PATHS:
                await self.probes.answer(path, scope, send)
            else:
                await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Answer one request with its request id, then count it and log it."""
        start = time.perf_counter()
        request_id = self.request_ids.of(scope)
        status, route = 500, None  # what the client sees if answering fails
        token = REQUEST_ID.set(request_id)  # on every log line written meanwhile
        try:
            status, route = await self.answer(scope, receive, send, request_id)
        finally:
            REQUEST_ID.reset(token)
            if self.metrics is not None or self.access_log is not None:
                seconds = time.perf_counter() - start
                method: str = scope["method"]
                if route is None:
                    route = self.router.label(method, _target(scope))
                if self.metrics is not None:
                    self.metrics.observe(route, method, status, seconds)
                if self.access_log is not None:
                    self.access_log.record(
                        request_id, method, scope["path"], route, status, seconds
                    )

    async def answer(
        self, scope: dict[str, Any], receive: Any, send: Any, request_id: bytes
    ) -> tuple[int, str | None]:
        """Answer one request, with ``x-request-id: request_id`` on the answer.

        Returns the status sent (499 when the client left first) and the pattern of the
        route that served it, or None when it was refused before a route was matched."""
        extra_headers = [(request_ids.HEADER, request_id)]
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
            handler, params, route = self.router.match(
                scope["method"], scope["path"], _target(scope)
            )
            request = Request(
                scope, receive, params, self.max_body, project, self.timeout, self.limits
            )
            status, body = 200, await handler(self.services, request)
        except errors.ApiError as exc:
            status, body = exc.status, render.error(exc)
            if exc.headers:
                headers = [*JSON_HEADERS, *exc.headers]
        except ClientDisconnected:
            return CLIENT_CLOSED, route
        except StoreUnavailable as exc:
            if self.store.health() is None:  # a damaged file is logged once a minute, not here
                log.error("database unavailable on %s %s: %s", scope["method"], scope["path"], exc)
            unavailable = (
                errors.ServiceUnavailable(OUTCOME_UNKNOWN, code="commit_outcome_unknown")
                if isinstance(exc, OutcomeUnknown)
                else errors.ServiceUnavailable(DATABASE_UNAVAILABLE)
            )
            status, body = unavailable.status, render.error(unavailable)
            headers = [*JSON_HEADERS, *unavailable.headers]
        except StoreError as exc:  # a fact of the store: one table says what the API answers
            fact = store_errors.api_error(exc)
            if fact is None:
                log.exception("unmapped store error on %s %s", scope["method"], scope["path"])
                fact = errors.InternalError(SERVER_ERROR)
            status, body = fact.status, render.error(fact)
            if fact.headers:
                headers = [*JSON_HEADERS, *fact.headers]
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
        if not isinstance(body, bytes):
            if isinstance(body, StreamingBody):  # sent in pieces (api/streaming.py)
                body.headers = [*body.headers, *extra_headers]
                await send_streaming(body, receive, send)
                return body.status, route
            # a plain answer with its own status and headers (api/answers.py)
            headers = [*body.headers, *extra_headers]
            await send({"type": "http.response.start", "status": body.status, "headers": headers})
            await send({"type": "http.response.body", "body": body.body})
            return body.status, route
        if headers is JSON_HEADERS and send_whole(
            send, scope["method"], status, JSON_FIELDS % (request_id, len(body)), body
        ):
            return status, route  # the usual answer, in one write (api/protocol.py)
        headers = [*headers, *extra_headers, (b"content-length", b"%d" % len(body))]
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
                    from convostore.diagnose import explain

                    debug = log.isEnabledFor(logging.DEBUG)
                    log.error("startup failed: %s", explain(exc, self.settings), exc_info=debug)
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
        image_url_prefixes=settings.image_url_prefixes,
        lease_seconds=settings.response_lease_seconds,
        stream_events_max=settings.response_stream_events_max,
        stream_poll_seconds=settings.response_stream_poll_seconds,
        api=settings.upstream_api,
        context_windows=settings.context_windows,
    )


def _target(scope: dict[str, Any]) -> str:
    """The path as sent (still percent-encoded), which routes are matched on."""
    raw_path: bytes | None = scope.get("raw_path")
    if not raw_path:
        path: str = scope["path"]
        return path
    # some servers and test transports leave the query on it
    return raw_path.partition(b"?")[0].decode("latin-1")


def create_app(
    settings: Settings | None = None, store: Store | None = None, clock: Clock = SYSTEM
) -> ConvoStore:
    """The app to serve, over the store the settings name unless one is given."""
    from convostore.memory import return_large_buffers
    from convostore.store.factory import store_for

    return_large_buffers()  # a large request must not raise the process's memory for good
    settings = settings or Settings()
    return ConvoStore(settings, store or store_for(settings), clock=clock)
