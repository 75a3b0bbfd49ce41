"""Refuse state-changing requests that a page of another site makes a browser send.

The API has no ambient credentials (no cookies: a key travels in a header a page of
another origin cannot set without a CORS preflight, which this server never grants), so
such a page cannot act with an operator's key. An open server (no keys, loopback only)
is the remaining hole: any page the operator visits could send ``POST`` or ``DELETE`` to
``http://127.0.0.1:8000`` (an empty-bodied ``POST /v1/conversations`` is a "simple"
request, sent without preflight). The check below closes it for every request, in the
app's request path before dispatch, as Go's ``http.CrossOriginProtection`` does:

* ``GET``, ``HEAD`` and ``OPTIONS`` pass: they change nothing.
* ``Sec-Fetch-Site`` (sent by every current browser, never settable by a page):
  ``same-origin`` and ``none`` (typed in, bookmarks) pass, anything else (``cross-site``,
  and ``same-site``: another port of the same host is another origin) is refused.
* Without it (an older browser), an ``Origin`` that is not this server's host is refused.
* Neither header: not a browser (SDKs, curl), or a same-origin request of an old one: passes.

``Sec-Fetch-Site: same-origin`` passes even when ``Origin`` and ``Host`` differ: a reverse
proxy that rewrites ``Host`` must not break the console served through it.
"""

from __future__ import annotations

from typing import Any

from convostore import errors

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SITE = b"sec-fetch-site"
_ORIGIN = b"origin"
_HOST = b"host"
_SAME = (b"same-origin", b"none")


def check(scope: dict[str, Any]) -> None:
    """Raise :class:`~convostore.errors.CrossSiteRequest` for a cross-site write."""
    if scope["method"] in SAFE_METHODS:
        return
    site = origin = None
    for key, value in scope["headers"]:  # 0.4 us for the nine headers of an SDK request
        if key == _SITE:
            site = value
        elif key == _ORIGIN:
            origin = value
    if site is not None:
        if site.lower() in _SAME:
            return
        raise errors.cross_site_request(f"Sec-Fetch-Site: {site.decode('latin-1')}")
    if origin is None:
        return
    host = next((value for key, value in scope["headers"] if key == _HOST), None)
    _, sep, authority = origin.partition(b"://")
    if sep and host is not None and authority.lower() == host.lower():
        return
    raise errors.cross_site_request(f"Origin: {origin.decode('latin-1')[:200]}")
