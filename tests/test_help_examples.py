"""`serve --help`'s examples work as printed (issue 19, point 7).

Row: "`serve --help`'s own example (`--host 0.0.0.0`) refuses to start on a new
database". Each example is run in order in an empty folder, by a shell, as printed; only
the port (8080, or the default 8000, which another program may hold on a shared machine)
and the example PostgreSQL server are replaced."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from convostore.cli import main
from tests.support import free_port


def examples(*command: str) -> list[str]:
    text = CliRunner().invoke(main, [*command, "--help"]).output
    block = text.split("Examples:", 1)[1].split("\n\n", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.strip().splitlines()]


def test_serve_help_examples_work_as_printed(tmp_path: Path, pg_url: str) -> None:
    printed = examples("serve")
    assert any("--host 0.0.0.0" in line for line in printed)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("CONVOSTORE_DB", None)
    for line in printed:
        port = free_port()
        command = line.replace("--port 8080", f"--port {port}")
        command = command.replace("postgresql://user@db:5432/convos", pg_url)
        if " serve" not in command:
            done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, (line, done.stderr)
            continue
        serving = subprocess.Popen(
            ["bash", "-c", f"exec {command}"] if not re.match(r"^\w+=", command) else ["bash", "-c", command],
            cwd=tmp_path,
            env={**env, "CONVOSTORE_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if serving.poll() is not None:
                    raise AssertionError(f"{line!r} exited {serving.returncode}: {serving.stderr.read() if serving.stderr else ''}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, line
                time.sleep(0.05)
        finally:
            os.killpg(serving.pid, signal.SIGTERM)
            serving.wait(timeout=30)
            if serving.stderr:
                serving.stderr.close()
