"""The servers the suite measures: convostore, the two ceiling apps, and the ogx peer."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from suite.procs import HOST, Server, free_port, pinned

BENCH_DIR = Path(__file__).resolve().parent.parent


def convostore(
    db: str, *, workers: int, cpus: str | None, logdir: Path, extra: tuple[str, ...] = ()
) -> Server:
    """``convostore serve`` with its default settings (durability included) on a free port."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "convostore",
        "serve",
        "--db",
        db,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOSTORE_")}
    return Server("convostore", pinned(argv, cpus), port, logdir / "convostore.log", env)


def ceiling(kind: str, *, cpus: str | None, logdir: Path) -> Server:
    """A ceiling app (``bare`` or ``starlette``) under uvicorn, served as convostore is."""
    port = free_port()
    target = {
        "bare": ["ceiling_apps:bare"],
        "starlette": ["--factory", "ceiling_apps:starlette_app"],
    }
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(BENCH_DIR),
        *target[kind],
        "--host",
        HOST,
        "--port",
        str(port),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Server(f"ceiling-{kind}", pinned(argv, cpus), port, logdir / f"ceiling-{kind}.log")
