"""Request ids: every answer carries ``x-request-id`` (docs/observability.md)."""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


class RequestIds:
    """The client's id when it sent a sane one, else ``req_`` + 32 hex.

    Ids need to be unique, not secret: 64 random bits per process, then a counter (a
    system call per request would cost more than the rest of the id)."""

    def __init__(self) -> None:
        self.prefix = b"%016x" % int.from_bytes(os.urandom(8), "big")
        self.counter = itertools.count(1)

    def of(self, scope: dict[str, Any]) -> bytes:
        for key, value in scope["headers"]:
            if key == HEADER:
                if _SANE_ID.fullmatch(value):
                    sent: bytes = value
                    return sent
                break
        return b"req_%s%016x" % (self.prefix, next(self.counter))
