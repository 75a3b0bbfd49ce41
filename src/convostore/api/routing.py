"""Route table: the same routes under ``/v1`` and ``/openai/v1`` (CONTRACT.md D12)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from urllib.parse import unquote

from convostore import errors
from convostore.api.answers import Response
from convostore.api.request import Request
from convostore.api.streaming import StreamingBody
from convostore.service import Services

# A handler answers JSON bytes, a plain Response with its own status and headers
# (api/answers.py), or a body sent in pieces (api/streaming.py).
Handler = Callable[[Services, Request], Awaitable[bytes | Response | StreamingBody]]

PREFIXES = ("/v1/", "/openai/v1/")
PAGE_METHODS = ("GET", "HEAD")
UNMATCHED = "unmatched"  # the label of a request no route serves


@dataclass(slots=True)
class Route:
    pattern: str
    segments: tuple[str | None, ...]  # None: a path parameter
    methods: dict[str, Handler] = field(default_factory=dict)
    #: Optional documentation per method, for the OpenAPI document (api/openapi.py):
    #: ``{"GET": {"operationId": …, "summary": …}}``; what is missing there is derived.
    docs: dict[str, dict[str, str]] = field(default_factory=dict)


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        #: Routes outside the ``/v1`` prefixes, by exact path (``/openapi.json``).
        self.root: dict[str, Route] = {}
        #: Root paths served without an API key.
        self.public: set[str] = set()
        #: Pages outside the API (the console, issue 8), by exact path: public, GET and
        #: HEAD only, looked up after every route (the API pays nothing for them), and not
        #: in the OpenAPI document.
        self.pages: dict[str, Handler] = {}
        #: The routes by number of segments, in the order of ``routes``: a request is
        #: compared with the one or two routes of its length only.
        self.by_length: dict[int, list[Route]] = {}

    def add_root(
        self, method: str, path: str, handler: Handler, *, public: bool = False, **doc: str
    ) -> None:
        """A route at exactly ``path``, outside ``/v1`` and ``/openai/v1`` (no parameters)."""
        route = self.root.setdefault(path, Route(path, ()))
        route.methods[method] = handler
        if doc:
            route.docs[method] = doc
        if public:
            self.public.add(path)

    def add_page(self, path: str, handler: Handler) -> None:
        self.pages[path] = handler
        self.public.add(path)

    def is_public(self, path: str) -> bool:
        return path in self.public

    def add(self, method: str, pattern: str, handler: Handler, **doc: str) -> None:
        segments = tuple(
            None if part.startswith("{") else part for part in pattern.strip("/").split("/")
        )
        for route in self.routes:
            if route.segments == segments:
                route.methods[method] = handler
                if doc:
                    route.docs[method] = doc
                return
        self.routes.append(
            Route(pattern, segments, {method: handler}, {method: doc} if doc else {})
        )
        # Literal segments win over parameters at the same place (`/conversations/search`).
        self.routes.sort(key=lambda r: [part is None for part in r.segments])
        self.by_length = {}
        for route in self.routes:
            self.by_length.setdefault(len(route.segments), []).append(route)

    def match(
        self, method: str, path: str, raw_path: str | None = None
    ) -> tuple[Handler, tuple[str, ...], str]:
        """The handler, the path parameters and the route's pattern (a bounded label for
        metrics and logs) for a request; 404 or 405 when there is none.

        Segments are split on the raw (still percent-encoded) path, so an id the SDK
        sends as ``a%2Fb`` is the one parameter ``a/b``, not two segments.
        """
        handler, params, label, allow = self.lookup(
            method, raw_path if raw_path is not None else path
        )
        if handler is None:
            if allow:
                raise errors.MethodNotAllowed(
                    f"Invalid method for URL ({method} {path})", allow=sorted(allow)
                )
            raise errors.NotFound(f"Invalid URL ({method} {path})")
        if params and any("\x00" in p for p in params):
            raise _no_such_id(label, params)
        return handler, params, label

    def label(self, method: str, target: str) -> str:
        """The label of a request refused before it was routed (401, 403, 404, 405…):
        the pattern of the route that would serve it, its exact path, or ``unmatched``."""
        return self.lookup(method, target)[2]

    def lookup(
        self, method: str, target: str
    ) -> tuple[Handler | None, tuple[str, ...], str, Collection[str]]:
        """The handler of ``method`` at ``target`` (None when there is none), its path
        parameters, its label (the route's pattern, the exact path of a root route or a
        page, else ``unmatched``), and the methods the path has (for 405's ``allow``)."""
        root = self.root.get(target) if self.root else None
        if root is not None:
            return root.methods.get(method), (), target, root.methods
        if target.startswith("/v1/"):
            rest: str | None = target[4:]
        elif target.startswith("/openai/v1/"):
            rest = target[11:]
        else:
            rest = None
        if rest is not None:
            parts = rest.split("/")
            allow: set[str] = set()
            label = UNMATCHED
            for route in self.by_length.get(len(parts), ()):
                params = _params(route.segments, parts)
                if params is None:
                    continue
                handler = route.methods.get(method)
                if handler is not None:
                    return handler, params, route.pattern, ()
                # A literal route without this method leaves the path to the routes with
                # parameters: POST /conversations/search still updates a conversation.
                allow.update(route.methods)
                if label is UNMATCHED:
                    label = route.pattern
            if allow:
                return None, (), label, allow
        page = self.pages.get(target)
        if page is not None:
            return (page if method in PAGE_METHODS else None), (), target, PAGE_METHODS
        return None, (), UNMATCHED, ()


def _params(segments: tuple[str | None, ...], parts: list[str]) -> tuple[str, ...] | None:
    """The path parameters when ``parts`` fit ``segments`` (of the same length)."""
    params: list[str] = []
    for segment, part in zip(segments, parts):  # noqa: B905 (same length, by_length)
        if segment is None:
            if not part:
                return None
            params.append(unquote(part) if "%" in part else part)
        elif segment != part:
            return None
    return tuple(params)


def _no_such_id(pattern: str, params: tuple[str, ...]) -> errors.NotFound:
    """Ids are made of printable ASCII; one with a NUL cannot exist in any store (PostgreSQL
    cannot even hold it), so it is answered like any unknown id, before the store sees it."""
    names = [part[1:-1] for part in pattern.strip("/").split("/") if part.startswith("{")]
    for name, value in zip(names, params, strict=True):
        if "\x00" in value:
            if name == "item_id":
                return errors.item_not_in_conversation(value)
            if name == "response_id":
                return errors.response_not_found(value)
            return errors.conversation_not_found(value)
    raise AssertionError("no parameter holds a NUL")
