"""The web console (issue 8): a static page, its script and its style sheet.

``GET /console`` answers ``console/index.html`` (package data); the page loads
``console/console.js`` and ``console/console.css`` beside it and reads and writes
everything through the JSON API, with the key in the ``Authorization`` header
(docs/console.md). These answers hold no data, so they are public, like
``/openapi.json``: the API keeps enforcing keys and projects.

The files are read once. Each answer carries a strict Content-Security-Policy (scripts
and styles only from this server, no inline script, images also from ``data:`` and
http(s) since ``input_image`` items may carry URLs), ``nosniff``, ``no-referrer`` and
framing refused. The page refers to its assets with their content hash in the query, so
they are cached for a year and a new version of convostore is fetched at once; the
page itself is revalidated every time (``no-cache`` with an ``ETag``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

from convostore.api.answers import Response
from convostore.api.request import Request
from convostore.service import Services

Page = Callable[[Services, Request], Awaitable[Response]]

PAGE = "/console"
ASSETS = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: http: https:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: bytes  # a strong validator: the quoted content hash
    version: str  # the hash the page puts in the asset's URL


def _asset(body: bytes, content_type: str) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:16]
    return Asset(body, content_type, f'"{digest}"'.encode(), digest)


@functools.cache
def assets() -> dict[str, Asset]:
    """The console's files by name, the page with its assets' versions filled in."""
    folder = resources.files("convostore").joinpath("console")
    found = {
        name: _asset(folder.joinpath(name).read_bytes(), content_type)
        for name, content_type in ASSETS.items()
    }
    page = folder.joinpath("index.html").read_text("utf-8")
    for name, asset in found.items():
        page = page.replace(f"{{{{{name}}}}}", f"console/{name}?v={asset.version}")
    found["index.html"] = _asset(page.encode(), "text/html; charset=utf-8")
    return found


def _answer(request: Request, asset: Asset, cache: bytes) -> Response:
    """The asset, or 304 when the client holds this version; HEAD gets the headers only."""
    fresh = request.header(b"if-none-match") == asset.etag.decode()
    body = b"" if fresh or request.method == "HEAD" else asset.body
    headers = [
        (b"content-type", asset.content_type.encode()),
        (b"content-length", str(0 if fresh else len(asset.body)).encode()),
        (b"cache-control", cache),
        (b"etag", asset.etag),
        *SECURITY_HEADERS,
    ]
    if fresh:
        headers = [h for h in headers if h[0] not in (b"content-type", b"content-length")]
    return Response(body, headers, 304 if fresh else 200)


async def page(services: Services, request: Request) -> Response:
    """The console's page (no data: it loads everything through the API)."""
    return _answer(request, assets()["index.html"], REVALIDATE)


async def redirect(services: Services, request: Request) -> Response:
    """``/console/`` goes to ``/console`` (relative, so it also works under a path prefix)."""
    headers = [(b"location", b"../console"), (b"content-length", b"0"), *SECURITY_HEADERS]
    return Response(b"", headers, 308)


def asset_handler(name: str) -> Page:
    async def serve(services: Services, request: Request) -> Response:
        asset = assets()[name]
        current = request.query_value("v") == asset.version
        return _answer(request, asset, IMMUTABLE if current else REVALIDATE)

    serve.__doc__ = f"The console's {name}."
    return serve


def routes() -> dict[str, Page]:
    """Path -> handler of every console answer."""
    return {
        PAGE: page,
        PAGE + "/": redirect,
        **{f"{PAGE}/{name}": asset_handler(name) for name in ASSETS},
    }
