"""What of a URL may be shown in logs, reprs and messages: everything but its passwords."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

_SECRET_QUERY_KEYS = ("password", "passfile", "sslpassword")


def redact_url(url: str) -> str:
    """A database URL with its passwords (userinfo or query) replaced, fit for logs."""
    parts = urlsplit(url)
    if parts.scheme.lower() in ("", "file", "sqlite"):
        return url  # a file: no password in it
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = "&".join(
        f"{key}=***" if key.lower() in _SECRET_QUERY_KEYS else f"{key}={value}" if sep else key
        for key, sep, value in (pair.partition("=") for pair in parts.query.split("&"))
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query if parts.query else ""))
