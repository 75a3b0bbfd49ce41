"""Issue 15, L9 and L10: secrets kept out of ps and of workers' environments, database
files readable by their owner only, and an --upstream URL with credentials refused."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import httpx
import pytest

from convostore.settings import Settings, SettingsError
from convostore.store.sqlite import SQLiteStore
from tests.support import free_port, launched

KEY = "acme:" + "s" * 40
UPSTREAM_KEY = "sk-upstream-" + "u" * 30


def environ(pid: int) -> bytes:
    return (Path(f"/proc/{pid}") / "environ").read_bytes()


def parent(pid: int) -> int:
    try:
        return int((Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


@pytest.mark.parametrize("how", ["env", "file"])
def test_workers_get_no_secret_in_their_environment(tmp_path: Path, how: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    command = [
        sys.executable, "-m", "convostore", "serve", "--db", str(tmp_path / "w.db"),
        "--port", str(port), "--workers", "2", "--upstream", "http://127.0.0.1:9/v1",
    ]  # fmt: skip
    mark = f"CONVOSTORE_TEST_MARK={tmp_path.name}".encode()
    env = {"CONVOSTORE_TEST_MARK": tmp_path.name}
    if how == "env":
        env |= {"CONVOSTORE_API_KEYS": KEY, "CONVOSTORE_UPSTREAM_KEY": UPSTREAM_KEY}
    else:
        (tmp_path / "keys").write_text(KEY + "\n")
        (tmp_path / "upstream").write_text(UPSTREAM_KEY + "\n")
        command += ["--api-keys-file", str(tmp_path / "keys"),
                    "--upstream-key-file", str(tmp_path / "upstream")]  # fmt: skip
    secret = KEY.split(":")[1]
    with launched(command, probe=f"{base}/conversations/x", env=env, timeout=60):
        # The workers hold the keys (read from a file), not in their environment.
        assert httpx.get(f"{base}/conversations/x").status_code == 401
        bearer = {"authorization": f"Bearer {secret}"}
        assert httpx.get(f"{base}/conversations/x", headers=bearer).status_code == 404
        marked = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if mark in environ(int(entry.name)):
                        marked.append(int(entry.name))
                except OSError:
                    continue
        (supervisor,) = [pid for pid in marked if parent(pid) == os.getpid()]
        workers = [pid for pid in marked if parent(pid) == supervisor]
        assert len(workers) >= 2
        for pid in workers:
            held = environ(pid)
            assert secret.encode() not in held and UPSTREAM_KEY.encode() not in held, pid


def test_a_new_database_is_private(tmp_path: Path) -> None:
    """L10: the database and the -wal and -shm files SQLite makes beside it are 0600,
    whatever the umask lets through."""
    path = tmp_path / "private.db"
    store = SQLiteStore(path)
    modes: dict[str, int] = {}

    async def use() -> None:
        await store.open()
        await store.migrate()
        for file in tmp_path.iterdir():  # while open: -wal and -shm exist
            modes[file.name] = stat.S_IMODE(file.stat().st_mode)
        await store.close()

    old = os.umask(0o022)  # a usual umask: files would be world-readable
    try:
        asyncio.run(use())
    finally:
        os.umask(old)
    assert {"private.db", "private.db-wal", "private.db-shm"} <= set(modes), modes
    assert all(mode & 0o077 == 0 for mode in modes.values()), {k: oct(v) for k, v in modes.items()}


def test_upstream_with_credentials_is_refused() -> None:
    with pytest.raises(SettingsError, match="credentials"):
        Settings(upstream="http://user:pass@127.0.0.1:8001/v1")
    with pytest.raises(SettingsError) as refused:
        Settings(upstream="ftp://user:hunter2@example.com/")
    assert "hunter2" not in str(refused.value)


def test_secret_on_the_command_line_is_warned_about() -> None:
    from click.testing import CliRunner

    from convostore.cli import main

    result = CliRunner().invoke(main, ["serve", "--api-keys", KEY, "--port", "-1"])
    assert result.exit_code != 0  # the bad port stops it before it serves
    assert "can be read by every user of this machine" in result.output
