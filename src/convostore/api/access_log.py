"""The access log: one JSON line per request on stderr (docs/observability.md).

A line has the request id, the method, the path (no query string: it may hold search
text), the route, the status and the duration. Never bodies, headers or credentials.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import IO

import orjson

# Lines are written in batches: at most this many, or this old (seconds). A crash can lose
# the lines of the last fraction of a second, never a request.
LOG_BUFFER_LINES = 256
LOG_FLUSH_SECONDS = 0.25
_ACCESS_LINE = (
    b'{"time":%.3f,"level":"info","event":"request","request_id":"%s","method":"%s",'
    b'"path":%s,"route":"%s","status":'
)


class AccessLog:
    """Buffers the lines of answered requests and writes them a batch at a time."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream  # None: sys.stderr as it is when written (tests replace it)
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
            # Formatted here, a batch at a time: the request path only keeps a tuple. Only
            # the path can hold characters JSON must escape (request ids are checked, the
            # method is an HTTP token, the route a pattern or "unmatched").
            text = (
                b"\n".join(
                    _ACCESS_LINE
                    % (when, request_id, method.encode(), orjson.dumps(path), route.encode())
                    + b'%d,"duration_ms":%.3f}' % (status, seconds * 1000)
                    for when, request_id, method, path, route, status, seconds in self._lines
                ).decode()
                + "\n"
            )
            self._lines.clear()
            stream = self.stream or sys.stderr
            stream.write(text)
            stream.flush()
