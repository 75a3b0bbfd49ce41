"""convostore's benchmark suite (issue 9).

    python benchmarks/run.py [--backend sqlite|postgres] [--workers N] [--duration S]
                             [--peer ogx|agentic-api|smg ...] [--out FILE.json]
                             [--chart FILE.png]

Starts every server itself on 127.0.0.1 (free ports, temporary databases), seeds the data
through the API, then runs each workload at concurrency 16 for a fixed time with wrk,
first against the ceiling apps (a bare ASGI endpoint and the same body behind a
Starlette route), then convostore, then each peer asked for, one after the other (each
on the same database kind as convostore: its own SQLite file or scratch PostgreSQL
database; SMG, which has no SQLite store, on its in-memory store). Prints a table, checks the
targets, writes the JSON and, with matplotlib, the chart. With one worker the server is
pinned to CPU 0 and the loader to CPU 1 (``--no-pin`` turns that off).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chart
from suite import environment, peer_ogx, peers_rust, pgdb, report, servers
from suite.procs import Server
from suite.workloads import CEILING_PLAN, plans, seed
from suite.wrk import Plan, measure, require_wrk

BENCH = Path(__file__).resolve().parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
WORKLOADS = (
    "create_conv",
    "append1",
    "append20",
    "get_conv",
    "get_item",
    "list20",
    "list_shallow",
    "list_deep",
    "agents_replay",
)


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="convostore benchmark suite (issue 9)")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG,
        help="PostgreSQL server to make a scratch database on (this machine only)",
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per workload (1..60)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="measured runs per workload; the fastest is reported (1..10)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="before each run, wait up to this many seconds for other processes to go quiet (0..60)",
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of unmeasured load before each workload"
    )
    parser.add_argument(
        "--connections", type=int, default=16, help="concurrency (keep-alive connections)"
    )
    parser.add_argument(
        "--peer",
        choices=("ogx", *peers_rust.PEERS),
        action="append",
        default=[],
        help="a peer to run the same workloads against (repeatable)",
    )
    parser.add_argument("--peer-python", default=None, help="a Python >= 3.12 for the peer venvs")
    parser.add_argument(
        "--only", default=None, help="comma-separated workloads to run (default: all)"
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling apps")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin server and loader to CPUs"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON (default benchmarks/results/<time>-<backend>.json)",
    )
    parser.add_argument("--chart", type=Path, default=None, help="write a PNG chart of requests/s")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 60 or not 0 <= args.warmup <= 10:
        parser.error("--duration must be 1..60 and --warmup 0..10 seconds")
    if not 0 <= args.quiet_wait <= 60:
        parser.error("--quiet-wait must be 0..60")
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat must be 1..10")
    if not 1 <= args.connections <= 256 or not 1 <= args.workers <= 8:
        parser.error("--connections must be 1..256 and --workers 1..8")
    args.only = tuple(args.only.split(",")) if args.only else WORKLOADS
    unknown = set(args.only) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    return args


class Runner:
    def __init__(self, args: argparse.Namespace, logdir: Path):
        self.args = args
        self.logdir = logdir
        pin = not args.no_pin and (args.workers == 1)
        self.server_cpus = "0" if pin else None
        self.loader_cpus = "1" if pin else None
        self.pinning = "server on CPU 0, wrk on CPU 1 (taskset)" if pin else "none"

    def run_plan(self, name: str, server: Server, plan: Plan) -> dict[str, Any]:
        runs = measure(
            name,
            server,
            plan,
            seconds=self.args.duration,
            warmup=self.args.warmup,
            connections=self.args.connections,
            cpus=self.loader_cpus,
            repeat=self.args.repeat,
            quiet_wait=self.args.quiet_wait,
        )
        result = runs[0].as_dict()  # the fastest run; every run is kept below
        result["errors"] = sum(r.errors for r in runs)
        result["peak_rss_mb"] = max(r.peak_rss_mb for r in runs)
        result["runs"] = [
            {
                "rps": r.rps,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
                "errors": r.errors,
                "server_cpu": r.server_cpu,
            }
            for r in runs
        ]
        extra = ""
        if result["items_per_s"] is not None:
            extra = f", {result['items_per_s']:,.0f} items/s"
        if result["replays_per_s"] is not None:
            extra = f", {result['replays_per_s']:,.1f} conv/s"
        log(
            f"  {name:<14} {result['rps']:>10,.0f} req/s{extra}  p50 {result['p50_ms']:.2f} ms"
            f"  p99 {result['p99_ms']:.2f} ms  errors {result['errors']}"
            f"  server {result['server_cpu']:.2f} / loader {result['loader_cpu']:.2f} cores"
            f"  ({result['server_cpu_us_per_request']:.0f} server-CPU us/req, other load"
            f" {result['other_cpu']:.2f} cores)"
        )
        return result

    def ceiling(self) -> dict[str, Any]:
        out = {}
        for kind in ("bare", "starlette"):
            if kind == "starlette" and environment._version("starlette") is None:
                log("  starlette is not installed: no Starlette ceiling")
                continue
            server = servers.ceiling(kind, cpus=self.server_cpus, logdir=self.logdir).start()
            try:
                out[kind] = self.run_plan(kind, server, CEILING_PLAN)
            finally:
                server.stop()
        return out

    def workloads(self, server: Server) -> dict[str, Any]:
        started = time.monotonic()
        data = seed(server.port, log)
        log(f"  seeding took {time.monotonic() - started:.1f} s")
        every = plans(data)
        return {name: self.run_plan(name, server, every[name]) for name in self.args.only}

    def measure_server(self, server: Server) -> dict[str, Any]:
        server.start()
        try:
            workloads = self.workloads(server)
            hwm = server.hwm_kb()
        finally:
            server.stop()
        peaks = {**server.peak_rss_kb}
        for pid, kb in hwm.items():
            peaks[pid] = max(kb, peaks.get(pid, 0))
        return {
            "workloads": workloads,
            "process_peak_rss_mb": {str(pid): round(kb / 1024, 1) for pid, kb in peaks.items()},
            "peak_process_rss_mb": round(max(peaks.values(), default=0) / 1024, 1),
        }


@contextlib.contextmanager
def convostore_db(args: argparse.Namespace, tmp: Path) -> Iterator[str]:
    if args.backend == "postgres":
        with pgdb.scratch_database(args.pg_url) as url:
            yield url
    else:
        yield str(tmp / "convostore.db")


def measure_rust_peer(
    args: argparse.Namespace, runner: Runner, name: str, tmp: Path
) -> dict[str, Any]:
    """One Rust peer on the run's database kind (its own file or scratch database)."""
    peer = peers_rust.PEERS[name]
    storage = peer.storage(args.backend)
    log(f"{name} {peer.version} ({storage}, 1 process):")
    workdir = tmp / name
    with contextlib.ExitStack() as stack:
        if storage == "postgres":
            db = stack.enter_context(pgdb.scratch_database(args.pg_url))
        else:
            db = str(workdir / f"{name}.db")
        server = peer.server(args.backend, db, workdir, cpus=runner.server_cpus, logdir=tmp)
        return {"version": peer.version, "storage": storage, **runner.measure_server(server)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_wrk()
    if "ogx" in args.peer:
        log("ogx peer: preparing benchmarks/.peer-venv (ogx==1.5.0) ...")
        peer_ogx.ensure_venv(args.peer_python)
    unavailable: dict[str, str] = {}
    for name in args.peer:
        if name in peers_rust.PEERS:
            peer = peers_rust.PEERS[name]
            log(f"{name} peer: preparing {peer.venv.name} ({name}=={peer.version}) ...")
            try:
                peer.ensure_venv(args.peer_python)
            except peers_rust.PeerUnavailable as exc:
                unavailable[name] = str(exc)
                log(f"  {name} peer NOT MEASURED: {exc}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or BENCH / "results" / f"{stamp}-{args.backend}-w{args.workers}.json"
    doc: dict[str, Any] = {
        "started": stamp,
        "command": " ".join(
            ["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": environment.machine(),
        "versions": environment.versions(),
        "config": {
            "backend": args.backend,
            "workers": args.workers,
            "duration": args.duration,
            "warmup": args.warmup,
            "connections": args.connections,
            "repeat": args.repeat,
            "quiet_wait": args.quiet_wait,
            "pinning": "",
            "durability": "convostore defaults (SQLite WAL + synchronous=normal; PostgreSQL synchronous_commit as the server has it)",
        },
        "servers": {},
        "peers_unavailable": unavailable,
    }
    with tempfile.TemporaryDirectory(prefix="convostore-bench-") as tmpdir:
        tmp = Path(tmpdir)
        runner = Runner(args, tmp)
        doc["config"]["pinning"] = runner.pinning
        if not args.no_ceiling:
            log("ceiling (uvicorn + httptools + uvloop, 1 worker):")
            doc["ceiling"] = runner.ceiling()
        with convostore_db(args, tmp) as db:
            if args.backend == "postgres":
                doc["versions"]["postgres"] = environment.postgres_version(db)
            log(f"convostore ({args.backend}, {args.workers} worker(s)):")
            server = servers.convostore(
                db, workers=args.workers, cpus=runner.server_cpus, logdir=tmp
            )
            doc["servers"]["convostore"] = runner.measure_server(server)
        if "ogx" in args.peer:
            log(f"ogx {peer_ogx.VERSION} (sqlite, 1 worker):")
            peer = peer_ogx.server(tmp / "ogx", cpus=runner.server_cpus, logdir=tmp)
            doc["servers"]["ogx"] = {
                "version": peer_ogx.VERSION,
                "storage": "sqlite",
                **runner.measure_server(peer),
            }
        for name in args.peer:
            if name in peers_rust.PEERS and name not in unavailable:
                try:
                    doc["servers"][name] = measure_rust_peer(args, runner, name, tmp)
                except (RuntimeError, OSError) as exc:
                    unavailable[name] = f"did not start or failed while measured: {exc}"
                    log(f"  {name} peer NOT MEASURED: {unavailable[name]}")
        doc["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    doc["targets"] = report.targets(doc)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    log("")
    log(report.render(doc))
    log(f"\nresults: {out}")
    if args.chart and chart.draw([doc], args.chart):
        log(f"chart: {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
