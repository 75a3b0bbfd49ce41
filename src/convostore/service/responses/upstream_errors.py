"""What the client is told when the model server fails: its errors made API errors,
with nothing of the model server's own text or address, and the log line that keeps
the detail under the request id, secrets redacted (issue 15, L4)."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from convostore import errors
from convostore.logformat import current_request_id
from convostore.upstream import (
    UpstreamConfig,
    UpstreamError,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnreachable,
)

log = logging.getLogger("convostore")


async def calling(call: Any, config: UpstreamConfig) -> Any:
    try:
        return await call
    except UpstreamError as exc:
        raise upstream_error(exc, config) from None


def upstream_error(exc: UpstreamError, config: UpstreamConfig) -> errors.ApiError:
    """What the client is told when the model server fails (nothing was stored).

    Never the model server's own text nor its address: an error page may echo the
    request's headers (the upstream key) or name internal hosts. The client gets a
    generic message naming its request id; the detail goes to the log under that id,
    with the upstream key and URL credentials redacted (issue 15, L4)."""
    request_id = current_request_id()
    log.warning(
        "model server %s failed on request %s: %s: %s",
        config.shown,
        request_id,
        type(exc).__name__,
        redact(str(exc), config),
    )
    see = f"(request id {request_id}; the server's log has the details)"
    if isinstance(exc, UpstreamTimeout):
        return errors.GatewayTimeout(
            f"The model server did not answer within {config.timeout_seconds:g} seconds {see}."
        )
    if isinstance(exc, UpstreamUnreachable):
        return errors.BadGateway(f"Could not reach the model server {see}.")
    if isinstance(exc, UpstreamRefused):
        return _refused(exc, see)
    return errors.BadGateway(f"The model server's stream broke {see}.")


def _refused(exc: UpstreamRefused, see: str) -> errors.ApiError:
    status = exc.status
    code = exc.code if exc.code and _SANE_CODE.fullmatch(exc.code) else None
    if status == 429:
        return errors.RateLimited(
            f"The model server is rate limited {see}.", retry_after=exc.retry_after or 1
        )
    if status in (401, 403):
        return errors.BadGateway(
            f"The model server refused convostore's credentials ({status}) {see}; the "
            "operator should check --upstream-key."
        )
    if status == 404:
        return errors.NotFound(f"The model server did not find what was asked {see}.", code=code)
    if 400 <= status < 500:
        return errors.InvalidRequest(
            f"The model server refused the request ({status}) {see}.", code=code
        )
    return errors.BadGateway(f"The model server answered {status} {see}.")


_SANE_CODE = re.compile(r"[a-z0-9_.]{1,64}")


def redact(text: str, config: UpstreamConfig) -> str:
    """``text`` without the upstream key, URL credentials or bearer tokens."""
    if config.key:
        text = text.replace(config.key, "***")
    parts = urlsplit(config.url)
    for secret in (parts.password, parts.username):
        if secret:
            text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)


_BEARER = re.compile(r"(?i)(bearer\s+|api[-_]key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+")
