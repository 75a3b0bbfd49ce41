"""Throwaway PostgreSQL clusters for the database fault tests (issue 20), made with the
machine's own binaries (``/usr/lib/postgresql/*/bin``), like ``scripts/ci-postgres.sh``.

Each cluster lives in a directory of its own under a temporary root and listens on
127.0.0.1 on a free port; as root, initdb and the server run as the ``postgres`` user.
:func:`clusters` yields a factory and stops (SIGKILL if need be) and removes everything
it made when the test ends. The tests skip when no binaries are installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.support import free_port


def bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.getuid() == 0 else command


class Cluster:
    def __init__(self, bin_dir: Path, data: Path, port: int):
        self.bin = bin_dir
        self.data = data
        self.port = port
        self.log = data.with_suffix(".log")
        self.options: list[str] = []

    def run(self, *command: str, timeout: float = 60) -> None:
        result = subprocess.run(
            _as_owner([str(self.bin / command[0]), *command[1:]]),
            cwd=self.data.parent,  # the postgres user may not enter the test's own folder
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            tail = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{command[0]} failed: {result.stdout}{result.stderr}\n{tail}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def initdb(self, *settings: str) -> Cluster:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        self.options = list(settings)
        return self

    def basebackup_of(self, primary: Cluster, *settings: str) -> Cluster:
        """A streaming standby of ``primary`` (``-R``: standby.signal and primary_conninfo)."""
        self.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(self.data), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        # The copy holds the primary's socket lock files (its sockets live in its data
        # folder, -k): stale here, and one naming a live process stops this server's start.
        for lock in self.data.glob(".s.PGSQL.*.lock"):
            lock.unlink()
        self.options = list(settings)
        return self

    def _server_options(self) -> str:
        base = [
            "-c listen_addresses=127.0.0.1", f"-p {self.port}", f"-k {self.data}",
            "-c fsync=off", "-c full_page_writes=off", "-c shared_buffers=16MB",
            "-c max_wal_senders=4", "-c wal_level=replica", "-c logging_collector=off",
        ]  # fmt: skip
        return " ".join(base + [f"-c {option}" for option in self.options])

    def start(self) -> Cluster:
        self.run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            "-o", self._server_options(), "start",
        )  # fmt: skip
        return self

    def restart(self, mode: str) -> None:
        self.run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-m", mode,
            "-o", self._server_options(), "restart",
        )  # fmt: skip

    def promote(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill9(self) -> None:
        """SIGKILL to the postmaster and every process it started: the machine is gone."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        victims = [pid, *_children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(v) for v in victims) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _child(self, role: bytes) -> int | None:
        for child in _children(self.postmaster_pid() or 0):
            try:
                if role in Path(f"/proc/{child}/cmdline").read_bytes():
                    return child
            except OSError:
                continue
        return None

    def walreceiver_pid(self) -> int:
        """The process of a standby that receives the primary's WAL."""
        pid = self._child(b"walreceiver")
        if pid is None:
            raise RuntimeError("no walreceiver: not a streaming standby")
        return pid

    def kill_walreceiver(self, pid: int) -> None:
        """SIGKILL the WAL receiver (with what it had not read yet); the postmaster takes
        that for a crash and restarts the standby: wait until it serves again."""
        startup = self._child(b"startup")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self._child(b"startup") in (None, startup):
            assert time.monotonic() < deadline, "the standby did not restart"
            time.sleep(0.02)
        while True:
            try:
                self.sql("SELECT 1")
                return
            except (OSError, asyncpg.PostgresError):
                assert time.monotonic() < deadline, "the standby did not come back"
                time.sleep(0.02)

    def stop(self) -> None:
        if self.postmaster_pid() is None or not _alive(self.postmaster_pid() or 0):
            return
        try:
            self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "20", "-m", "immediate", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            self.kill9()

    def sql(self, statement: str, *args: object) -> object:
        async def run() -> object:
            conn = await asyncpg.connect(self.url, timeout=10)
            try:
                return await conn.fetchval(statement, *args)
            finally:
                await conn.close()

        return asyncio.run(run())

    def wait_streaming(self, timeout: float = 30) -> None:
        """Until a standby streams from this primary."""
        deadline = time.monotonic() + timeout
        while self.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the standby did not start streaming")
            time.sleep(0.05)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextlib.contextmanager
def clusters() -> Iterator[Callable[..., Cluster]]:
    """A factory of clusters (each with its own directory and port), all stopped and
    removed at the end."""
    bin_dir = bindir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql")
    root = Path(tempfile.mkdtemp(prefix="convostore-pgfault-"))
    if os.getuid() == 0:
        shutil.chown(root, "postgres")
    made: list[Cluster] = []

    def make(port: int | None = None) -> Cluster:
        cluster = Cluster(bin_dir, root / f"c{len(made)}", port or free_port())
        made.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
