"""The ``Idempotency-Key`` request header of the POST routes (issue 20, docs/api.md)."""

from __future__ import annotations

import hashlib

from convostore import errors
from convostore.api.request import Request
from convostore.service.idempotency import RequestKey

HEADER = b"idempotency-key"
MAX_LENGTH = 255


async def key_of(request: Request) -> RequestKey | None:
    """The request's key with a digest of its method, path, query and body; None without
    the header. A key that is empty, too long or not printable ASCII is a 400."""
    key = request.header(HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= MAX_LENGTH or not all(" " <= c <= "~" for c in key):
        raise errors.invalid_idempotency_key()
    digest = hashlib.sha256()
    for part in (
        request.method.encode(),
        request.scope["path"].encode("utf-8", "surrogateescape"),
        request.scope.get("query_string", b""),
        await request.body(),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return RequestKey(key, digest.digest())
