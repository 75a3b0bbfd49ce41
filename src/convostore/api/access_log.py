"""The access log: one line per request on stderr, in the one log format
(docs/observability.md).

A line has the request id, the method, the path (no query string: it may hold search
text), the route, the status and the duration. Never bodies, headers or credentials.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import IO

from convostore.logformat import access_lines

# Lines are written in batches: at most this many, or this old (seconds). A crash can lose
# the lines of the last fraction of a second, never a request.
LOG_BUFFER_LINES = 256
LOG_FLUSH_SECONDS = 0.25


class AccessLog:
    """Buffers the lines of answered requests and writes them a batch at a time."""

    def __init__(self, stream: IO[str] | None = None, kind: str = "json"):
        self.stream = stream  # None: sys.stderr as it is when written (tests replace it)
        self.kind = kind  # the one log format's json or text (convostore.logformat)
        self._lines: list[tuple[float, bytes, str, str, str, int, float]] = []
        self._timer: asyncio.TimerHandle | None = None

    def record(
        self, request_id: bytes, method: str, path: str, route: str, status: int, seconds: float
    ) -> None:
        self._lines.append((time.time(), request_id, method, path, route, status, seconds))
        if len(self._lines) >= LOG_BUFFER_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(LOG_FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write the buffered lines in one call (one syscall, not one a request)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            # Formatted here, a batch at a time (the request path only keeps a tuple), in
            # the one log format (convostore.logformat).
            text = access_lines(self.kind, self._lines)
            self._lines.clear()
            stream = self.stream or sys.stderr
            stream.write(text)
            stream.flush()
