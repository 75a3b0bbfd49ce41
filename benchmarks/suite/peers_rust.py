"""The Rust peers, each from PyPI in its own virtual environment: agentic-api and SMG.

* **agentic-api** 0.9.0 (vllm-project/agentic-api): a stateful Responses gateway whose
  package ships the Rust binary ``agentic-server``. It serves the Conversations API on
  its own, storing in SQLite or PostgreSQL (``--db-url``). It is started with
  ``--skip-llm-ready-check`` and an upstream URL on the loopback that nothing listens
  on: the conversation routes never call the upstream, so no model is needed.
* **SMG** 1.13.0 (the Shepherd Model Gateway, ``smg launch``): a router whose history
  backend stores conversations in memory (the default, nothing durable) or PostgreSQL
  (``--history-backend postgres --postgres-db-url``). Started with no worker URLs and
  tokenizer autoload off; its Prometheus listener is moved to a free loopback port; in
  memory, its item bound is raised so that nothing the run wrote is dropped.

Each runs with its own defaults otherwise (pools, durability: agentic-api's SQLite is in
WAL mode; both run PostgreSQL as the server is configured), on 127.0.0.1, in a temporary
directory or a scratch database, logging warnings only. The flags were read from each
package's ``--help``. The venvs are ``benchmarks/.peer-<name>``, made once, then reused.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from suite.peer_ogx import find_python
from suite.procs import HOST, Server, free_port, pinned

BENCH_DIR = Path(__file__).resolve().parent.parent
# A loopback port nothing listens on (discard): agentic-api needs an upstream URL to
# start, and no conversation route calls it.
NO_UPSTREAM = f"http://{HOST}:9"
# SMG's in-memory store keeps this many items (~1.5 KB each, its help says); a suite run
# writes a few hundred thousand.
MEMORY_ITEMS = 5_000_000


class PeerUnavailable(Exception):
    """The peer could not be installed or started here; the message says why."""


@dataclass(frozen=True)
class Peer:
    name: str
    version: str
    executable: str  # in the venv's bin/

    @property
    def venv(self) -> Path:
        return BENCH_DIR / f".peer-{self.name}"

    def storage(self, backend: str) -> str:
        """What the peer stores in for a run of convostore on ``backend``."""
        if self.name == "smg" and backend == "sqlite":
            return "memory"  # SMG has no SQLite store; memory is its default
        return backend

    def ensure_venv(self, preferred_python: str | None = None) -> Path:
        """Install ``name==version`` from PyPI into its venv unless it is there already."""
        try:
            if not (self.venv / "bin" / "python").exists():
                subprocess.run(
                    [find_python(preferred_python), "-m", "venv", str(self.venv)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
            if self.installed_version() != self.version:
                subprocess.run(
                    [
                        str(self.venv / "bin" / "pip"),
                        "install",
                        "--quiet",
                        f"{self.name}=={self.version}",
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
        except subprocess.CalledProcessError as exc:
            said = (exc.stderr or exc.stdout or "").strip().splitlines()[-5:]
            raise PeerUnavailable(
                f"pip install {self.name}=={self.version} failed: {' | '.join(said)}"
            ) from None
        except (OSError, subprocess.TimeoutExpired, SystemExit) as exc:
            raise PeerUnavailable(f"no venv for {self.name}: {exc}") from None
        if not (self.venv / "bin" / self.executable).exists():
            raise PeerUnavailable(
                f"{self.name}=={self.version} installed but has no {self.executable} command"
            )
        return self.venv

    def installed_version(self) -> str | None:
        python = self.venv / "bin" / "python"
        if not python.exists():
            return None
        out = subprocess.run(
            [
                str(python),
                "-c",
                f"import importlib.metadata as m; print(m.version({self.name!r}))",
            ],
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() or None

    def server(
        self, backend: str, db: str, workdir: Path, *, cpus: str | None, logdir: Path
    ) -> Server:
        """The peer on a free port; ``db`` is a SQLite file path or a PostgreSQL URL."""
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        binary = str(self.venv / "bin" / self.executable)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OTEL_", "DATABASE_URL", "POSTGRES_", "OPENAI_", "RUST_LOG"))
        }
        env.update(HOME=str(workdir), RUST_LOG="warn")
        if self.name == "agentic-api":
            url = f"sqlite://{db}?mode=rwc" if backend == "sqlite" else db
            argv = [
                binary,
                "--llm-api-base",
                NO_UPSTREAM,
                "--skip-llm-ready-check",
                "--db-url",
                url,
                "--gateway-host",
                HOST,
                "--gateway-port",
                str(port),
            ]
        else:
            argv = [
                binary,
                "launch",
                "--host",
                HOST,
                "--port",
                str(port),
                "--prometheus-host",
                HOST,
                "--prometheus-port",
                str(free_port()),
                "--log-level",
                "warn",
                "--disable-tokenizer-autoload",
                "--history-backend",
                self.storage(backend),
            ]
            if backend == "postgres":
                argv += ["--postgres-db-url", db]
            else:
                # Its default bound (100,000 items, the oldest dropped on every write) is
                # passed by the append workloads, and the read workloads would then read
                # conversations emptied by it: keep everything the run writes.
                argv += ["--history-memory-max-items", str(MEMORY_ITEMS)]
        return Server(self.name, pinned(argv, cpus), port, logdir / f"{self.name}.log", env)


PEERS = {
    "agentic-api": Peer("agentic-api", "0.9.0", "agentic-server"),
    "smg": Peer("smg", "1.13.0", "smg"),
}
