"""Credentials of a request: ``Authorization: Bearer <key>`` (OpenAI) or ``api-key: <key>``
(Azure), checked before anything else, the body included (CONTRACT.md D13)."""

from __future__ import annotations

from typing import Any

from convostore import errors

_AUTHORIZATION = b"authorization"
_API_KEY = b"api-key"


def secret_of(scope: dict[str, Any]) -> str | None:
    """The key the request carries, ``None`` when it carries none."""
    api_key = None
    for name, value in scope["headers"]:
        if name == _AUTHORIZATION:
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise errors.Unauthorized(
                    "Invalid authorization header: expected 'Authorization: Bearer YOUR_KEY'.",
                    code="invalid_api_key",
                )
            secret: str = token.strip()
            return secret
        if name == _API_KEY:
            api_key = value.decode("latin-1").strip()
    return api_key or None
