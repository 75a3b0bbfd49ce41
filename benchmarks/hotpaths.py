"""Where convostore's time goes per request, on the hot paths, under load.

    python benchmarks/hotpaths.py [--backend sqlite|postgres] [--only get_item,append1,list20]
                                 [--duration S] [--out FILE.json] [--keep-raw DIR] [--ceiling]

For each workload: convostore (one worker, pinned to CPU 0 as in run.py) is loaded by wrk
at concurrency 16 while py-spy samples it (``--nonblocking``: the server is never
paused; py-spy and wrk share CPU 1). Only samples of the running thread count (py-spy
leaves idle ones out), so the samples split the server's CPU time. Each stack is put in
one bucket by its innermost frame that names a known place (SQLite calls, orjson, the
item validator, uvicorn's protocol, ...), and the bucket's share of the samples times
the server's measured CPU time per request gives microseconds per request.
Needs py-spy (``pip install py-spy``) and, to read another process, root or ptrace rights.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import pgdb, servers
from suite.procs import Server, pinned
from suite.workloads import plans, seed
from suite.wrk import Plan, run_wrk

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"

# (bucket, substring of a frame "function (file:line)"), most specific first: a stack goes
# to the first rule that matches any of its frames, scanning from the innermost frame out.
RULES: tuple[tuple[str, str], ...] = (
    ("sqlite: background maintenance thread", "store/sqlite_maintenance.py"),
    ("records: frozen dataclass __init__", "__create_fn__"),
    ("sqlite: COMMIT (group commit)", "Transactions._commit"),
    ("sqlite: transaction helper", "store/sqlite_tx.py"),
    ("sqlite: item INSERTs (executemany)", "insert_items (/"),
    ("sqlite: reserve (UPDATE ... RETURNING)", "reserve (/"),
    ("sqlite: statements (C, inline)", "store/sqlite_append.py"),
    ("sqlite: statements (C, inline)", "store/sqlite.py"),
    ("postgres: asyncpg + wait", "asyncpg/"),
    ("postgres: store code", "store/postgres.py"),
    ("validation: item registry", "convostore/items/registry.py"),
    ("validation: compiled checks", "convostore/items/compiler.py"),
    ("validation: conform", "convostore/items/conform.py"),
    ("render: item bytes (include)", "convostore/items/include.py"),
    ("render: response assembly", "convostore/api/render.py"),
    ("request: body/json/query", "convostore/api/request.py"),
    ("request: list params", "convostore/api/params.py"),
    ("auth + owner", "convostore/api/owner.py"),
    ("routing", "convostore/api/routing.py"),
    ("service: materialize/ids", "convostore/service/materialize.py"),
    ("service: ids", "convostore/ids.py"),
    ("service: bodies", "convostore/service/bodies.py"),
    ("service: idempotency", "convostore/service/idempotency.py"),
    ("service: limits", "convostore/service/limits.py"),
    ("service: rules", "convostore/service/"),
    ("handlers", "convostore/api/items.py"),
    ("handlers", "convostore/api/conversations.py"),
    ("observability: metrics", "convostore/api/metrics.py"),
    ("observability: request ids", "convostore/api/request_ids.py"),
    ("observability: access log", "convostore/api/access_log.py"),
    ("observability: access log", "convostore/logformat.py"),
    ("auth + owner", "convostore/api/auth.py"),
    ("request guards (csrf, rebinding)", "convostore/api/csrf.py"),
    ("request guards (csrf, rebinding)", "convostore/api/rebinding.py"),
    ("uvicorn: httptools protocol", "convostore/api/protocol.py"),  # convostore's subclass
    ("app: dispatch + send", "convostore/api/app.py"),
    ("uvicorn: httptools protocol", "uvicorn/protocols/http/"),
    ("uvicorn: other", "uvicorn/"),
    ("event loop (uvloop/asyncio)", "asyncio/"),
    ("event loop (uvloop/asyncio)", "uvloop/"),
)


def bucket(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needle in RULES:
            if needle in frame:
                return name
    return "other (event loop C code, GC, ...)"


def leaf(frames: list[str]) -> str:
    """The innermost frame, shortened to file:function."""
    frame = frames[-1] if frames else "?"
    function, _, where = frame.partition(" (")
    path = where.split(":", 1)[0]
    for marker in ("site-packages/", "src/", "lib/python"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{function}"


def parse_raw(text: str) -> tuple[Counter[str], Counter[str], int]:
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if " (" in f]
        n = int(count)
        total += n
        buckets[bucket(frames)] += n
        leaves[leaf(frames)] += n
    return buckets, leaves, total


def profile_one(
    name: str, server: Server, plan: Plan, *, seconds: float, rate: int, keep: Path | None
) -> dict[str, Any]:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    holder: dict[str, Any] = {}
    started = threading.Event()

    def load() -> None:
        holder["run"] = run_wrk(
            server, plan, seconds=seconds + 2, connections=16, cpus="1", started=started
        )

    thread = threading.Thread(target=load)
    thread.start()
    with tempfile.NamedTemporaryFile(suffix=".txt") as raw:
        started.wait(60)
        threading.Event().wait(1.0)
        subprocess.run(
            pinned(
                [
                    pyspy,
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    str(rate),
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--full-filenames",
                    "--output",
                    raw.name,
                ],
                "1",
            ),
            check=True,
            capture_output=True,
        )
        text = Path(raw.name).read_text()
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"{name}.txt").write_text(text)
    thread.join()
    result, server_cpu, _, _ = holder["run"]
    requests = result["requests"]
    us_per_request = server_cpu / requests * 1e6
    buckets, leaves, total = parse_raw(text)
    share = {k: v / total for k, v in buckets.most_common()}
    return {
        "workload": name,
        "requests_per_s": round(requests / (result["duration_us"] / 1e6), 1),
        "server_cpu_us_per_request": round(us_per_request, 1),
        "samples": total,
        "buckets_us": {k: round(v * us_per_request, 1) for k, v in share.items()},
        "top_leaves_us": {
            k: round(v / total * us_per_request, 1) for k, v in leaves.most_common(15)
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="profile convostore's hot paths with py-spy")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--only", default="get_item,append1,list20")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds sampled (2..60)")
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--ceiling", action="store_true", help="also profile the bare endpoint (get_item's plan)"
    )
    parser.add_argument("--keep-raw", type=Path, default=None, help="keep py-spy's raw stacks here")
    args = parser.parse_args()
    if not 2 <= args.duration <= 60:
        parser.error("--duration must be 2..60")
    with tempfile.TemporaryDirectory(prefix="convostore-profile-") as tmpdir:
        tmp = Path(tmpdir)
        ctx = pgdb.scratch_database(args.pg_url) if args.backend == "postgres" else None
        db = ctx.__enter__() if ctx else str(tmp / "convostore.db")
        try:
            server = servers.convostore(db, workers=1, cpus="0", logdir=tmp).start()
            try:
                every = plans(seed(server.port, lambda _: None))
                results = [
                    profile_one(
                        name,
                        server,
                        every[name],
                        seconds=args.duration,
                        rate=args.rate,
                        keep=args.keep_raw,
                    )
                    for name in args.only.split(",")
                ]
            finally:
                server.stop()
            if args.ceiling:
                bare = servers.ceiling("bare", cpus="0", logdir=tmp).start()
                try:
                    results.append(
                        profile_one(
                            "bare",
                            bare,
                            every["get_item"],
                            seconds=args.duration,
                            rate=args.rate,
                            keep=args.keep_raw,
                        )
                    )
                finally:
                    bare.stop()
        finally:
            if ctx:
                ctx.__exit__(None, None, None)
    for r in results:
        print(
            f"\n{r['workload']} ({args.backend}): {r['requests_per_s']:,.0f} req/s, "
            f"{r['server_cpu_us_per_request']:.1f} us of server CPU per request, {r['samples']} samples"
        )
        for name, us in r["buckets_us"].items():
            print(f"  {us:7.1f} us  {name}")
        print("  innermost frames:")
        for name, us in r["top_leaves_us"].items():
            print(f"  {us:7.1f} us  {name}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"backend": args.backend, "profiles": results}, indent=2))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
