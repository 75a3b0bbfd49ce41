"""A ``convostore serve`` subprocess the reliability tests can kill, stop and measure.

The server runs in a process group of its own, so SIGKILL reaches every worker of a
``--workers N`` server at once (a kill of the whole service, not of one worker).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import free_port

FULL = os.environ.get("CONVOSTORE_FULL", "") not in ("", "0")


def scale(short: int, full: int) -> int:
    """``short`` in the default run, ``full`` with ``CONVOSTORE_FULL=1``."""
    return full if FULL else short


class Server:
    def __init__(
        self,
        db: str | Path,
        log: Path,
        *args: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ):
        self.env = env  # added to this process's environment for the server
        self.log = log
        self.db = str(db)
        self.args = args
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + "/v1"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Server:
        command = [
            sys.executable, "-m", "convostore", "serve",
            "--db", self.db, "--port", str(self.port), *self.args,
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **self.env} if self.env else None,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                probe = httpx.get(self.url + "/conversations/conv_probe", timeout=2)
                if probe.status_code in (401, 404):  # 401: a keyed server
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"server did not start in {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL to the whole process group, then reap."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM to the server process; its exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.kill()
        self.process = None
        return code

    def rss_kib(self) -> int:
        """Resident memory of the server process group (KiB)."""
        assert self.process is not None
        return sum(rss_kib(pid) for pid in group_pids(self.process.pid))

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process group has used so far."""
        assert self.process is not None
        return sum(cpu_seconds(pid) for pid in group_pids(self.process.pid))

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            try:
                self.terminate(timeout=30)
            except Exception:
                self.kill()


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime are fields 14 and 15 of stat(5), counted from the state field (3).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids
