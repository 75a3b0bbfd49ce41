"""One log format (issue 19, point 6): every line of every process through one formatter.

Row: "four formats on one stream (the JSON access log, convostore's text, uvicorn's
`INFO:`, httpx's request lines); with `--workers`, convostore's lines lose their format"."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import pytest

from convostore.logformat import REQUEST_ID, Formatter, access_lines, dict_config
from tests.support import free_port

TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def serve_and_read_log(tmp_path: Path, *args: str) -> list[str]:
    """Serve with two workers, make requests, stop it; every line it wrote."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "convostore", "serve", "--db", str(tmp_path / "x.db"), "--port", str(port), "--workers", "2", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, "the server exited"
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline
                time.sleep(0.05)
            for _ in range(8):  # new connections: both workers answer some
                with httpx.Client() as client:
                    assert client.post(f"{base}/v1/conversations", json={}).status_code == 200
                    assert client.get(f"{base}/v1/conversations/conv_missing").status_code == 404
        finally:
            process.terminate()
            process.wait(timeout=30)
        out.seek(0)
        return out.read().decode().splitlines()


def test_every_line_of_every_worker_is_json(tmp_path: Path) -> None:
    lines = serve_and_read_log(tmp_path)
    assert lines
    records = [orjson.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger"} <= record.keys(), record
    loggers = {r["logger"] for r in records}
    assert {"convostore", "uvicorn.error", "convostore.access"} <= loggers, loggers
    # both workers' start-up lines, in the format
    started = [r for r in records if r["logger"] == "uvicorn.error" and r["message"].startswith("Started server process")]
    assert len(started) == 2
    access = [r for r in records if r["logger"] == "convostore.access"]
    assert len(access) == 16 and all(r["request_id"].startswith("req_") for r in access)


def test_text_format_for_every_line(tmp_path: Path) -> None:
    lines = serve_and_read_log(tmp_path, "--log-format", "text")
    assert lines
    for line in lines:
        assert TEXT_LINE.match(line), line
    assert sum("convostore.access: POST" in line for line in lines) == 8


@pytest.mark.parametrize("kind", ["json", "text"])
def test_request_id_and_httpx_lines_through_the_formatter(kind: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(Formatter(kind))
    config = dict_config("info", kind)
    assert config["loggers"]["httpx"]["propagate"] is True  # httpx's lines reach the one handler
    logger = logging.getLogger("httpx")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = REQUEST_ID.set(b"req_abc")
        try:
            logger.warning('HTTP Request: POST http://model/v1/chat/completions "HTTP/1.1 500"')
        finally:
            REQUEST_ID.reset(token)
        logger.warning("outside a request")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    first, second = stream.getvalue().splitlines()
    if kind == "json":
        assert orjson.loads(first)["request_id"] == "req_abc"
        assert orjson.loads(first)["logger"] == "httpx"
        assert "request_id" not in orjson.loads(second)
    else:
        assert TEXT_LINE.match(first) and first.endswith("request_id=req_abc")
        assert "request_id" not in second


def test_access_lines_escape_the_path() -> None:
    entry = (1.5, b"req_1", "GET", '/v1/conversations/"x\n', "/conversations/{conversation_id}", 404, 0.001)
    line = access_lines("json", [entry])
    assert orjson.loads(line)["path"] == '/v1/conversations/"x\n'
    text = access_lines("text", [entry])
    assert text.count("\n") == 1  # a newline in a path cannot forge a line


def test_formatter_refuses_unknown_kinds() -> None:
    with pytest.raises(ValueError):
        Formatter("xml")


def test_worker_processes_get_the_config_not_basicconfig() -> None:
    """The config is a plain dict uvicorn applies in each worker (no state in the parent)."""
    config = dict_config("warning", "text")
    assert config["formatters"]["convostore"] == {"()": "convostore.logformat.Formatter", "kind": "text"}
    assert config["root"]["level"] == "WARNING"
