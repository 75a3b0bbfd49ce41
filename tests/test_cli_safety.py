"""Commands that cannot lose data by a typo, and start-up failures an operator can act on
(issue 19, points 2 and 5): one test per row of the issue's table where a test holds it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from convostore.cli import main
from convostore.dburl import DatabaseUrlError, parse
from convostore.settings import Settings, SettingsError


def run(*args: str, cwd: Path, user: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "convostore", *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def test_nightly_export_of_a_mistyped_path_fails_and_creates_nothing(tmp_path: Path) -> None:
    """Row: `convostore export --db tpyo.db > backup.jsonl` created tpyo.db, printed
    "exported 0 conversations" and exited 0."""
    result = run("export", "--db", "tpyo.db", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"no SQLite database at {tmp_path / 'tpyo.db'}" in result.stderr
    assert "Traceback" not in result.stderr and "exported" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["export"], ["import", "-"], ["purge", "--retention-days", "1", "--yes"], ["keys", "list"], ["check"], ["backup", "--to", "b.db"]])
def test_every_command_but_serve_and_migrate_refuses_a_missing_database(tmp_path: Path, command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--db", str(tmp_path / "missing" / "x.db")], input="")
    assert result.exit_code == 1, result.output
    assert "no SQLite database at" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_without_convostore_tables_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    result = CliRunner().invoke(main, ["export", "--db", str(tmp_path / "empty.db")])
    assert result.exit_code == 1
    assert "holds no convostore tables" in result.stderr


def test_an_empty_postgres_database_is_refused(pg_url: str) -> None:
    result = CliRunner().invoke(main, ["keys", "list", "--db", pg_url])
    assert result.exit_code == 1 and "holds no convostore tables" in result.stderr


@pytest.mark.parametrize("url", ["postgresq://u@h/db", "mysql://u@h/db", "sqlite://host/x.db", "sqlite://"])
def test_unknown_schemes_are_an_error_and_create_nothing(tmp_path: Path, url: str) -> None:
    """Row: `postgresq://…`, `mysql://…` were taken as file paths and created folders."""
    for command in (["export"], ["migrate"], ["serve"]):
        result = run(*command, "--db", url, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "Error:" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatabaseUrlError):
        parse(url)
    with pytest.raises(SettingsError):
        Settings(db=url)


def test_a_near_miss_scheme_names_the_right_one() -> None:
    with pytest.raises(DatabaseUrlError, match="did you mean postgresql://"):
        parse("postgresq://u@h/db")


def test_sqlite_urls_are_the_usual_spelling(tmp_path: Path) -> None:
    assert parse("sqlite:///x.db").target == "x.db"
    assert parse("sqlite:////var/lib/x.db").target == "/var/lib/x.db"
    assert parse("postgres://h/db").backend == "postgres"
    assert parse("./x.db").target == "./x.db"
    made = run("migrate", "--db", "sqlite:///x.db", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]
    assert f"created a new SQLite database at {tmp_path / 'x.db'}" in made.stderr
    absolute = run("export", "--db", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert absolute.returncode == 0, absolute.stderr


def test_migrate_creates_the_file_not_its_folder(tmp_path: Path) -> None:
    result = run("migrate", "--db", "nested/x.db", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"the folder {tmp_path / 'nested'} does not exist" in result.stderr
    assert f"mkdir -p {tmp_path / 'nested'}" in result.stderr
    assert list(tmp_path.iterdir()) == []


# -- start-up failures: one line, the cause and the fix ---------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_postgres_unreachable_names_host_and_port(tmp_path: Path) -> None:
    """Row: a 54-line traceback without host or port."""
    port = free_port()
    line = one_line_error(run("serve", "--db", f"postgresql://convo:secret@127.0.0.1:{port}/x", "--port", str(free_port()), cwd=tmp_path))
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}" in line
    assert "is the server running" in line and "secret" not in line


def test_postgres_database_missing_says_createdb(pg_url: str, tmp_path: Path) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/convostore_no_such_db"
    line = one_line_error(run("serve", "--db", url, "--port", str(free_port()), cwd=tmp_path))
    assert "has no database 'convostore_no_such_db'" in line and "createdb" in line


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_unwritable_folder_names_the_folder_and_the_permission() -> None:
    """Row: an unwritable folder gave a traceback saying "unable to open database file"."""
    with tempfile.TemporaryDirectory() as base:
        folder = Path(base) / "data"
        folder.mkdir()
        for path in (Path(base), folder):
            path.chmod(0o755)  # readable by all, writable by its owner only
        user = None
        if os.getuid() == 0:  # root writes anywhere: run it as nobody
            user = "65534"
        line = one_line_error(run("serve", "--db", str(folder / "x.db"), "--port", str(free_port()), cwd=Path("/"), user=user))
        assert f"the folder {folder} is not writable by" in line
        assert "chown" in line
        assert list(folder.iterdir()) == []


def test_port_in_use_says_so(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        line = one_line_error(run("serve", "--db", str(tmp_path / "x.db"), "--port", str(port), cwd=tmp_path))
    assert f"port {port} on 127.0.0.1 is already in use" in line and "--port" in line


def test_debug_brings_the_traceback_back(tmp_path: Path) -> None:
    result = run("--debug", "serve", "--db", "nested/x.db", "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
