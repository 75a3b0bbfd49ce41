"""Route table: the same routes under ``/v1`` and ``/openai/v1`` (CONTRACT.md D12)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from convostore import errors
from convostore.api.request import Request
from convostore.service import Services

Handler = Callable[[Services, Request], Awaitable[bytes]]

PREFIXES = ("/v1/", "/openai/v1/")


@dataclass(slots=True)
class Route:
    pattern: str
    segments: tuple[str | None, ...]  # None: a path parameter
    methods: dict[str, Handler] = field(default_factory=dict)


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        segments = tuple(
            None if part.startswith("{") else part for part in pattern.strip("/").split("/")
        )
        for route in self.routes:
            if route.segments == segments:
                route.methods[method] = handler
                return
        self.routes.append(Route(pattern, segments, {method: handler}))
        # Literal segments win over parameters at the same place (`/conversations/search`).
        self.routes.sort(key=lambda r: [part is None for part in r.segments])

    def match(
        self, method: str, path: str, raw_path: str | None = None
    ) -> tuple[Handler, tuple[str, ...]]:
        """The handler and path parameters for a request.

        Segments are split on the raw (still percent-encoded) path, so an id the SDK
        sends as ``a%2Fb`` is the one parameter ``a/b``, not two segments.
        """
        rest = None
        target = raw_path if raw_path is not None else path
        for prefix in PREFIXES:
            if target.startswith(prefix):
                rest = target[len(prefix) :]
                break
        if rest is not None:
            parts = rest.split("/")
            for route in self.routes:
                params = _params(route.segments, parts)
                if params is None:
                    continue
                handler = route.methods.get(method)
                if handler is None:
                    raise errors.MethodNotAllowed(
                        f"Invalid method for URL ({method} {path})", allow=sorted(route.methods)
                    )
                return handler, params
        raise errors.NotFound(f"Invalid URL ({method} {path})")


def _params(segments: tuple[str | None, ...], parts: list[str]) -> tuple[str, ...] | None:
    if len(segments) != len(parts):
        return None
    params: list[str] = []
    for segment, part in zip(segments, parts, strict=True):
        if segment is None:
            if not part:
                return None
            params.append(unquote(part) if "%" in part else part)
        elif segment != part:
            return None
    return tuple(params)
