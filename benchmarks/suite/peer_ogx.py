"""The ogx peer (ex-Llama Stack): its own virtual environment, only its conversations API.

ogx 1.5.0 needs Python >= 3.12. The venv lives in benchmarks/.peer-venv and is made with
the first Python >= 3.12 found (``--peer-python``, then python3.13/python3.12 on PATH,
then pyenv's). uvloop and httptools are added to it so that its uvicorn picks the same
event loop and HTTP parser as convostore's (uvicorn's "auto" prefers them): the
comparison is then between the applications, not the HTTP stacks.

Its configuration (read from ogx's StackConfig and the starter distribution):
``apis: [conversations]`` serves only the conversations routes (plus the admin, inspect
and providers routes ogx always serves), no inference provider is configured, storage is
its default SQLite store (WAL, synchronous=NORMAL, the same durability as convostore's
default) in a temporary directory, it listens on 127.0.0.1 only, and TLS is off
(``--insecure``, loopback). Its access log is turned off (``OGX_LOGGING=all=warning``),
as convostore's is; telemetry stays off (no OTEL_* variables are passed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from suite.procs import HOST, Server, free_port, pinned

VERSION = "1.5.0"
VENV = Path(__file__).resolve().parent.parent / ".peer-venv"
EXTRAS = ("uvloop", "httptools")

CONFIG = """\
version: 2
distro_name: convostore-benchmark-peer
apis:
- conversations
providers: {{}}
storage:
  backends:
    kv_default:
      type: kv_sqlite
      db_path: {dir}/kvstore.db
    sql_default:
      type: sql_sqlite
      db_path: {dir}/sql_store.db
  stores:
    metadata:
      namespace: registry
      backend: kv_default
    conversations:
      table_name: openai_conversations
      backend: sql_default
    prompts:
      table_name: prompts
      backend: sql_default
    connectors:
      table_name: connectors
      backend: sql_default
server:
  host: {host}
  port: {port}
  workers: 1
  insecure: true
"""


def _python_version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return int(out[0]), int(out[1])


def find_python(preferred: str | None = None) -> str:
    candidates = [preferred] if preferred else []
    candidates += [shutil.which(n) or "" for n in ("python3.13", "python3.12")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(
        (str(p / "bin" / "python") for p in pyenv_root.glob("3.1[2-9]*")), reverse=True
    )
    for candidate in candidates:
        if candidate and (_python_version(candidate) or (0, 0)) >= (3, 12):
            return candidate
    raise SystemExit(
        "--peer ogx needs Python >= 3.12 (ogx 1.5.0 requires it) and none was found: "
        "install python3.12 (e.g. pyenv install 3.12) or pass --peer-python PATH"
    )


def ensure_venv(preferred_python: str | None = None) -> Path:
    """benchmarks/.peer-venv with ogx==1.5.0 (+ uvloop, httptools); made once, then reused."""
    ogx = VENV / "bin" / "ogx"
    pip = VENV / "bin" / "pip"
    if not (VENV / "bin" / "python").exists():
        subprocess.run([find_python(preferred_python), "-m", "venv", str(VENV)], check=True)
    if not ogx.exists() or installed_version() != VERSION:
        subprocess.run([str(pip), "install", "--quiet", f"ogx=={VERSION}"], check=True)
    subprocess.run([str(pip), "install", "--quiet", *EXTRAS], check=True)
    return VENV


def installed_version() -> str | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        return None
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('ogx'))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


def server(workdir: Path, *, cpus: str | None, logdir: Path) -> Server:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yaml"
    config.write_text(CONFIG.format(dir=workdir, host=HOST, port=port))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OGX_"))}
    env.update(HOME=str(workdir), OGX_LOGGING="all=warning", SQLITE_STORE_DIR=str(workdir))
    argv = [str(VENV / "bin" / "ogx"), "stack", "run", str(config), "--insecure"]
    return Server("ogx", pinned(argv, cpus), port, logdir / "ogx.log", env)
