"""Processes: start and stop servers, find their trees, read their memory and CPU from /proc."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pinned(argv: Sequence[str], cpus: str | None) -> list[str]:
    """``argv`` under ``taskset -c cpus`` when a CPU list is given and taskset exists."""
    if cpus is None or shutil.which("taskset") is None:
        return list(argv)
    return ["taskset", "-c", cpus, *argv]


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out.extend(int(c) for c in (task / "children").read_text().split())
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children(current))
    return found


def status_kb(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM), 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of the processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def busy_seconds() -> float:
    """CPU time all cores spent not idle since boot (from /proc/stat), in seconds."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def wait_quiet(threshold: float = 0.3, window: float = 0.5, max_wait: float = 30.0) -> float:
    """Wait (at most ``max_wait`` s) until the machine's busy cores fall below ``threshold``.

    The machine is shared: other processes' load only ever slows a run down, so a run
    starts in a quiet moment when there is one. Returns the last busy-cores reading.
    """
    deadline = time.monotonic() + max_wait
    while True:
        before = busy_seconds()
        time.sleep(window)
        busy = (busy_seconds() - before) / window
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Wait until something answers HTTP on the port (any status), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it answered")
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(b"GET /v1/conversations/conv_0 HTTP/1.1\r\nHost: x\r\n\r\n")
                if sock.recv(16).startswith(b"HTTP/1.1"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {timeout:.0f} s")


@dataclass
class Server:
    """A server process the suite started, in its own process group."""

    name: str
    argv: list[str]
    port: int
    log: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    peak_rss_kb: dict[int, int] = field(default_factory=dict)

    def start(self) -> Server:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        try:
            wait_http(self.port, self.proc)
        except RuntimeError:
            self.stop()
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} did not start; its log ends:\n{tail}") from None
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pids(self) -> list[int]:
        return tree(self.pid) if self.proc is not None and self.proc.poll() is None else []

    def hwm_kb(self) -> dict[int, int]:
        """VmHWM (peak RSS since start) of every live process of the server."""
        return {pid: status_kb(pid, "VmHWM") for pid in self.pids()}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class RssSampler:
    """Samples VmRSS of a server's processes every ``interval`` s while in a ``with`` block."""

    def __init__(self, server: Server, interval: float = 0.05):
        self.server = server
        self.interval = interval
        self.peak_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.server.pids():
                rss = status_kb(pid, "VmRSS")
                if rss > self.peak_kb.get(pid, 0):
                    self.peak_kb[pid] = rss
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for pid, kb in self.peak_kb.items():
            self.server.peak_rss_kb[pid] = max(kb, self.server.peak_rss_kb.get(pid, 0))
