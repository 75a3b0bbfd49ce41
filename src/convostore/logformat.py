"""One log format for every line a convostore process writes (docs/observability.md).

convostore's own records, uvicorn's, httpx's (the model-server client) and the access
log all leave through :class:`Formatter`, as one JSON object a line (``json``, the
default) or one readable line (``text``), chosen by ``--log-format``. Each line has the
time, the level, the logger and the message, and the request id when the line was
written while a request was served (:data:`REQUEST_ID`, set by the access-log layer).

:func:`dict_config` is the ``logging.config.dictConfig`` document that installs it. It
is handed to uvicorn as its ``log_config``, so uvicorn applies it in every worker
process under ``--workers`` as well as in the parent.

The access log is written in batches off the request path (api/observability.py);
:func:`access_lines` renders a batch in the same format, without building a
``LogRecord`` per request.
"""

from __future__ import annotations

import logging
import secrets
import time
from contextvars import ContextVar
from typing import Any

import orjson

FORMATS = ("json", "text")

#: The id of the request being served in this context (None outside requests).
REQUEST_ID: ContextVar[bytes | None] = ContextVar("convostore_request_id", default=None)


def current_request_id() -> str:
    """The id of the request being served (the one its answer carries in ``x-request-id``),
    for code below the HTTP layer that logs what the client is not shown; a new one
    outside a request."""
    found = REQUEST_ID.get()
    return found.decode("latin-1") if found else "req_" + secrets.token_hex(16)


ACCESS_LOGGER = "convostore.access"


def _stamp(when: float) -> str:
    seconds = int(when)
    millis = int((when - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class Formatter(logging.Formatter):
    """Every log record as one line, JSON or text."""

    def __init__(self, kind: str = "json") -> None:
        super().__init__()
        if kind not in FORMATS:
            raise ValueError(f"log format must be one of {FORMATS}, got {kind!r}")
        self.kind = kind

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        error = self.formatException(record.exc_info) if record.exc_info else None
        if record.stack_info:
            error = (error + "\n" if error else "") + self.formatStack(record.stack_info)
        message = record.getMessage()
        level = record.levelname.lower()
        if self.kind == "json":
            fields: dict[str, Any] = {
                "time": round(record.created, 3),
                "level": level,
                "logger": record.name,
                "message": message,
            }
            if request_id is not None:
                fields["request_id"] = (
                    request_id.decode() if isinstance(request_id, bytes) else request_id
                )
            if error:
                fields["error"] = error
            return orjson.dumps(fields).decode()
        line = f"{_stamp(record.created)} {level.upper()} {record.name}: {message}"
        if request_id is not None:
            rid = request_id.decode() if isinstance(request_id, bytes) else request_id
            line += f" request_id={rid}"
        if error:
            line += "\n" + error
        return line


_ACCESS_JSON = (
    b'{"time":%.3f,"level":"info","logger":"'
    + ACCESS_LOGGER.encode()
    + b'","event":"request","request_id":"%s","method":"%s","path":%s,"route":"%s",'
    b'"status":%d,"duration_ms":%.3f}'
)


def access_lines(kind: str, entries: list[tuple[float, bytes, str, str, str, int, float]]) -> str:
    """Access-log lines for (time, request id, method, path, route, status, seconds)
    tuples, newline-terminated. Only the path can hold characters JSON must escape
    (request ids are checked, the method is an HTTP token, the route a pattern)."""
    if kind == "json":
        return (
            b"\n".join(
                _ACCESS_JSON
                % (
                    when,
                    request_id,
                    method.encode(),
                    orjson.dumps(path),
                    route.encode(),
                    status,
                    seconds * 1000,
                )
                for when, request_id, method, path, route, status, seconds in entries
            ).decode()
            + "\n"
        )
    return "".join(
        f"{_stamp(when)} INFO {ACCESS_LOGGER}: {method} {orjson.dumps(path).decode()} {status} "
        f"{seconds * 1000:.3f}ms route={route} request_id={request_id.decode()}\n"
        for when, request_id, method, path, route, status, seconds in entries
    )


def dict_config(level: str, kind: str) -> dict[str, Any]:
    """The logging configuration: one handler on stderr with :class:`Formatter`, which
    convostore's, uvicorn's and httpx's loggers all reach by propagation."""
    own = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"convostore": {"()": f"{__name__}.Formatter", "kind": kind}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "convostore",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            name: dict(own) for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx")
        },
    }


def configure(level: str, kind: str) -> None:
    """Install :func:`dict_config` in this process."""
    import logging.config

    logging.config.dictConfig(dict_config(level, kind))
