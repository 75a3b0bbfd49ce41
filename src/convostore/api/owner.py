"""Who is asking: the owner key that scopes every read and write (CONTRACT.md D11, D13)."""

from __future__ import annotations

from convostore.api.request import Request
from convostore.store.base import Owner

ISOLATION_HEADER = b"x-ms-user-isolation-key"


def owner_of(request: Request) -> Owner:
    """The project of the request's API key, and its end-user isolation key."""
    user = request.header(ISOLATION_HEADER) or ""
    request.limits.check_id(user, "x-ms-user-isolation-key")
    return Owner(request.project, user)
