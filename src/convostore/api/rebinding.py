"""An open server answers only requests addressed to a loopback name.

Without API keys convostore serves only on loopback (docs/auth.md), so no other machine
can reach it, but a web page the operator opens can still try through the operator's
browser. Cross-site writes are refused (api/csrf.py), and the browser keeps a page of
another site from reading the answers. DNS rebinding gets around the second: a page of
``evil.example`` makes its own name resolve to ``127.0.0.1``, and its requests to
``http://evil.example:8000`` then reach this server as *same-origin* requests, free to
read every conversation. Their ``Host`` header still names ``evil.example``. So an open
server bound to loopback answers only requests whose ``Host`` is a loopback name:
``localhost`` (and ``*.localhost``), ``127.0.0.0/8`` or ``[::1]``, with any port, or no
``Host`` at all (not a browser). A server with keys needs no such check: a rebound page
has no key.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from convostore import errors

_HOST = b"host"
_SEEN_MAX = 256  # distinct Host values remembered (a client choosing many gains nothing)
_seen: dict[bytes, bool] = {}


def check_loopback_host(scope: dict[str, Any]) -> None:
    """Raise :class:`~convostore.errors.HostNotAllowed` unless the request's ``Host`` is a
    loopback name."""
    for key, value in scope["headers"]:
        if key == _HOST:
            allowed = _seen.get(value)
            if allowed is None:
                allowed = is_loopback_host(value.decode("latin-1"))
                if len(_seen) < _SEEN_MAX:
                    _seen[value] = allowed
            if not allowed:
                raise errors.host_not_allowed(value.decode("latin-1")[:200])
            return


def is_loopback_host(host: str) -> bool:
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        name, sep, _ = host[1:].partition("]")
        if not sep:
            return False
    else:
        name = host.rpartition(":")[0] if ":" in host else host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
