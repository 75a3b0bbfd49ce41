"""The load generator: wrk (C, epoll, LuaJIT) playing plans through benchmarks/workload.lua.

Every request a workload sends is listed in a plan file and pre-formatted by each wrk
thread at start, so the loader does no per-request work beyond a table lookup. The
suite checks the loader is not the bottleneck by measuring wrk's own CPU time
(``wait4`` rusage) next to the server's (/proc): a loader near one full core is
flagged as loader-bound in the results.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from suite.procs import HOST, RssSampler, Server, busy_seconds, cpu_seconds, pinned, wait_quiet

LUA = Path(__file__).resolve().parent.parent / "workload.lua"
MARK = "@@RESULT "


@dataclass(frozen=True)
class Plan:
    """What one workload sends: a list of (method, path, body), or conversations to replay."""

    requests: list[tuple[str, str, str]] = field(default_factory=list)
    replay: list[str] = field(default_factory=list)
    prefix: str = "/v1/conversations/"
    items_per_request: int = 0  # for writes: items/s = requests/s x this
    pages_expected: int = 0  # for replays: pages one replay takes

    def write(self, path: Path) -> None:
        if self.replay:
            lines = ["replay", self.prefix, *self.replay]
        else:
            for _method, route, body in self.requests:
                if "\t" in route + body or "\n" in route + body:
                    raise ValueError("plan fields must be one line without tabs")
            lines = ["requests", *("\t".join(r) for r in self.requests)]
        path.write_text("\n".join(lines) + "\n")


@dataclass
class Result:
    workload: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_detail: dict[str, int]
    items_per_s: float | None
    replays_per_s: float | None  # requests/s / pages_per_replay
    replays_completed: int
    replay_bad: int
    pages_per_replay: float | None  # 25 for a 500-item conversation read 20 at a time
    server_cpu: float  # cores used by the server during the run
    loader_cpu: float  # cores used by wrk during the run
    loader_bound: bool
    server_cpu_us_per_request: float  # server CPU time per request: robust to a noisy machine
    other_cpu: float  # cores used by every other process during the run (noise; PostgreSQL too)
    background_before: float  # busy cores just before the run started
    peak_rss_mb: float  # largest VmRSS of any one server process during the run
    peak_rss_total_mb: float  # sum over the server's processes of their peaks

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(
            "benchmarks need wrk (the HTTP load generator): apt-get install wrk "
            "(Debian/Ubuntu) or build it from its sources"
        )
    return path


def run_wrk(
    server: Server,
    plan: Plan,
    *,
    seconds: float,
    connections: int,
    cpus: str | None,
    started: threading.Event | None = None,
    quiet_wait: float = 10.0,
) -> tuple[dict[str, Any], float, float, RssSampler]:
    """One wrk run; returns its parsed result, server CPU s, loader CPU s and the RSS sampler."""
    threads = connections if plan.replay else 1
    with tempfile.TemporaryDirectory(prefix="convostore-bench-") as tmp:
        plan_file = Path(tmp) / "plan.txt"
        plan.write(plan_file)
        argv = pinned(
            [
                require_wrk(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(LUA),
                f"http://{HOST}:{server.port}",
                "--",
                str(plan_file),
            ],
            cpus,
        )
        server_pids = server.pids()
        background = wait_quiet(max_wait=quiet_wait)
        busy_before = busy_seconds()
        cpu_before = cpu_seconds(server_pids)
        with RssSampler(server) as sampler:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if started is not None:
                started.set()
            assert proc.stdout is not None and proc.stderr is not None
            out = proc.stdout.read().decode(errors="replace")
            err = proc.stderr.read().decode(errors="replace")
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        server_cpu = cpu_seconds(server_pids) - cpu_before
        busy = busy_seconds() - busy_before
    loader_cpu = usage.ru_utime + usage.ru_stime
    other_cpu = max(0.0, busy - server_cpu - loader_cpu)
    for line in out.splitlines():
        if line.startswith(MARK):
            raw = json.loads(line[len(MARK) :])
            raw["other_cpu_s"] = other_cpu
            raw["background_before"] = background
            return raw, server_cpu, loader_cpu, sampler
    raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}\n{err}")


def measure(
    name: str,
    server: Server,
    plan: Plan,
    *,
    seconds: float,
    warmup: float,
    connections: int,
    cpus: str | None,
    repeat: int = 1,
    quiet_wait: float = 10.0,
) -> list[Result]:
    """A warm-up run, then ``repeat`` measured runs, fastest first (noise only slows a run)."""
    if warmup > 0:
        run_wrk(server, plan, seconds=warmup, connections=connections, cpus=cpus)
        time.sleep(0.2)
    results = []
    for _ in range(repeat):
        run = run_wrk(
            server, plan, seconds=seconds, connections=connections, cpus=cpus, quiet_wait=quiet_wait
        )
        results.append(_result(name, plan, *run))
    return sorted(results, key=lambda r: -r.rps)


def _result(
    name: str,
    plan: Plan,
    raw: dict[str, Any],
    server_cpu: float,
    loader_cpu: float,
    sampler: RssSampler,
) -> Result:
    elapsed = raw["duration_us"] / 1e6
    requests = raw["requests"]
    errors = sum(raw["errors"].values())  # non-2xx included; a bad replay page is one
    rps = requests / elapsed
    loader_cores = loader_cpu / elapsed
    # One wrk thread cannot use more than one core; 16 replay threads share the loader's core.
    loader_bound = loader_cores >= 0.85
    peaks = sampler.peak_kb.values()
    # Conversations replayed per second: requests/s over the pages one replay takes (25 for
    # 500 items, measured on the completed replays), so a run shorter than a slow server's
    # replay still gets a rate.
    pages = raw["replay_pages"] / raw["replays"] if raw["replays"] else plan.pages_expected
    return Result(
        workload=name,
        requests=requests,
        seconds=round(elapsed, 3),
        rps=round(rps, 1),
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=errors,
        error_detail={**raw["errors"], "replay_bad": raw["replay_bad"]},
        items_per_s=round(rps * plan.items_per_request, 1) if plan.items_per_request else None,
        replays_per_s=round(rps / pages, 2) if plan.replay else None,
        replays_completed=raw["replays"],
        replay_bad=raw["replay_bad"],
        pages_per_replay=round(pages, 2) if plan.replay else None,
        server_cpu=round(server_cpu / elapsed, 2),
        loader_cpu=round(loader_cores, 2),
        loader_bound=loader_bound,
        server_cpu_us_per_request=round(server_cpu / requests * 1e6, 1) if requests else 0.0,
        other_cpu=round(raw["other_cpu_s"] / elapsed, 2),
        background_before=round(raw["background_before"], 2),
        peak_rss_mb=round(max(peaks, default=0) / 1024, 1),
        peak_rss_total_mb=round(sum(peaks) / 1024, 1),
    )
