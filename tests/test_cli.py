"""The ``convostore`` command line and its settings.

Click's ``CliRunner`` runs the commands in process where no server is needed. A
``serve`` that got past its settings would start uvicorn and block the test run, so the
``no_serving`` fixture turns ``uvicorn.run`` into an error for those tests: a setting that
should have been refused then fails the test instead of hanging it. Two tests start real
``serve`` processes to see flags and environment variables reach a running server.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result

from convostore.cli import main
from convostore.redact import redact_url
from convostore.settings import SETTINGS, Setting, Settings, SettingsError
from convostore.store import migrate as migrations
from tests.support import free_port, launched, running_server

ENV_NAMES = [s.env for s in SETTINGS]
# Secrets given by file (issue 15, L9): files the samples below name.
_SECRETS = Path(tempfile.mkdtemp(prefix="convostore-test-secrets-"))
SECRET_FILES = {
    "api_keys_file": ("acme:" + "f" * 32 + "\nbeta:" + "g" * 32 + "\n", "beta:" + "h" * 32),
    "upstream_key_file": ("sk-upstream-from-file\n", "sk-other-upstream"),
}


def secret_file(name: str, which: int) -> str:
    path = _SECRETS / f"{name}.{which}"
    if not path.exists():
        path.write_text(SECRET_FILES[name][which])
    return str(path)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CONVOSTORE_* variable of the outer environment leaks into a test."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("serve accepted its settings and would have started a server")

    monkeypatch.setattr(uvicorn, "run", refuse)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, prog_name="convostore")


def one_line(text: str) -> str:
    return " ".join(text.split())


def sample(setting: Setting) -> tuple[Any, str]:
    """A valid non-default value for ``setting``: (typed value, its environment form)."""
    if setting.type is bool:
        value: Any = not setting.default
        return value, "true" if value else "false"
    if setting.choices:
        value = next(c for c in setting.choices if c != setting.default)
        return value, value
    if setting.type in (int, float):
        value = setting.default + 1
        return value, str(value)
    if setting.name in SECRET_FILES:
        value = secret_file(setting.name, 0)
        return value, value
    value = {
        "db": "/srv/other.db",
        "host": "0.0.0.0",
        "api_keys": "acme:" + "k" * 32,
        "retention_projects": "acme=30",
        "upstream": "http://127.0.0.1:8001/v1",
        "model_map": "gpt-4o=qwen2.5-7b",
        "context_window": "qwen2.5-7b=32768",
    }.get(setting.name, f"{setting.default}-x")
    return value, value


def other_sample(setting: Setting) -> Any:
    """A second valid non-default value, different from :func:`sample`."""
    if setting.type is bool:
        return not setting.default  # only two values: the CLI test sets the env to the default
    if setting.choices:
        rest = [c for c in setting.choices if c != setting.default]
        return rest[-1] if len(rest) > 1 else setting.default
    if setting.type in (int, float):
        return setting.default + 2
    if setting.name == "api_keys":
        return "beta:" + "q" * 32
    if setting.name in SECRET_FILES:
        return secret_file(setting.name, 1)
    if setting.name == "retention_projects":
        return "beta=7"
    if setting.name == "context_window":
        return "qwen2.5-7b=32768,8192"
    return f"{sample(setting)[0]}-cli"


# --- help --------------------------------------------------------------------------------------


def test_help_lists_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:", 1)[1]
    assert "serve" in commands and "migrate" in commands


def test_installed_entry_point() -> None:
    script = Path(sys.executable).parent / "convostore"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "convostore"]
    result = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "migrate" in result.stdout


def test_serve_help_shows_every_setting() -> None:
    result = invoke("serve", "--help")
    assert result.exit_code == 0, result.output
    text = one_line(result.output)
    for setting in SETTINGS:
        assert setting.flag in text, setting.name
        assert setting.env in text, setting.name
        assert f"[env {setting.env}; default {setting.default!r}]" in text, setting.name
        if setting.type is bool:
            assert f"--no-{setting.flag[2:]}" in text
        for choice in setting.choices:
            assert choice in text


def test_migrate_help_has_db() -> None:
    result = invoke("migrate", "--help")
    assert result.exit_code == 0
    assert "--db" in result.output and "CONVOSTORE_DB" in result.output


# --- migrate -----------------------------------------------------------------------------------


def latest_version() -> tuple[list[int], int]:
    versions = [m.version for m in migrations.load("sqlite")]
    return versions, max(versions)


def tables(db: Path) -> set[str]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows}


def test_migrate_creates_schema_then_applies_nothing(tmp_path: Path) -> None:
    db = tmp_path / "convostore.db"
    versions, latest = latest_version()

    first = invoke("migrate", "--db", str(db))
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == (
        f"{db}: applied {', '.join(map(str, versions))}; schema version {latest}"
    )
    assert {"conversations", "items", "schema_migrations"} <= tables(db)
    with closing(sqlite3.connect(db)) as conn:
        recorded = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert recorded == versions

    second = invoke("migrate", "--db", str(db))
    assert second.exit_code == 0, second.output
    assert second.stdout.strip() == f"{db}: nothing to apply; schema version {latest}"


def test_migrate_takes_db_from_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "from-env.db"
    result = invoke("migrate", env={"CONVOSTORE_DB": str(db)})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{db}: applied")
    assert db.exists()

    flagged = tmp_path / "from-flag.db"
    result = invoke("migrate", "--db", str(flagged), env={"CONVOSTORE_DB": str(db)})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{flagged}: applied")


def test_served_database_is_already_migrated(tmp_path: Path) -> None:
    """``serve`` migrates at start (``--migrate`` is the default): ``migrate`` then has nothing."""
    db = tmp_path / "convostore.db"
    with running_server(db) as url:
        assert httpx.post(f"{url}/conversations", json={}).status_code == 200
    result = invoke("migrate", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "nothing to apply" in result.output


# --- precedence -------------------------------------------------------------------------------


def test_defaults() -> None:
    resolved = Settings.resolve(None, {})
    assert resolved == Settings()
    for setting in SETTINGS:
        assert getattr(resolved, setting.name) == setting.default, setting.name


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_precedence_flag_over_env_over_default(setting: Setting) -> None:
    value, raw = sample(setting)
    from_env = Settings.resolve({}, {setting.env: raw})
    assert getattr(from_env, setting.name) == value
    # None means "flag not given" (what click passes): the environment still counts
    assert (
        getattr(Settings.resolve({setting.name: None}, {setting.env: raw}), setting.name) == value
    )

    flag_value = other_sample(setting)
    env_raw = raw if flag_value != value else str(setting.default).lower()
    from_flag = Settings.resolve({setting.name: flag_value}, {setting.env: env_raw})
    assert getattr(from_flag, setting.name) == flag_value

    untouched = Settings.resolve({setting.name: None}, {"OTHER": "1"})
    assert getattr(untouched, setting.name) == setting.default


def test_bool_env_spellings() -> None:
    for raw in ("1", "true", "TRUE", "yes", "on", " On "):
        assert Settings.resolve(None, {"CONVOSTORE_MIGRATE": raw}).migrate is True, raw
    for raw in ("0", "false", "False", "no", "off"):
        assert Settings.resolve(None, {"CONVOSTORE_MIGRATE": raw}).migrate is False, raw


def test_to_env_round_trip() -> None:
    """Everything but the secrets, which workers read from files (issue 15, L9)."""
    samples = {s.name: sample(s)[0] for s in SETTINGS if s.name not in SECRET_FILES}
    settings = Settings.resolve(samples, {})
    env = settings.to_env()
    assert {s.env for s in SETTINGS if s.secret}.isdisjoint(env)
    assert "k" * 32 not in str(env)
    assert Settings.resolve(None, env) == Settings.resolve(
        {k: v for k, v in samples.items() if k not in ("api_keys", "upstream_key")}, {}
    )
    assert set(env) == {s.env for s in SETTINGS if not s.secret}
    by_file = Settings.resolve(
        {"api_keys_file": secret_file("api_keys_file", 0),
         "upstream_key_file": secret_file("upstream_key_file", 0)}, {}
    )  # fmt: skip
    assert [project for project, _ in by_file.api_key_pairs] == ["acme", "beta"]
    assert by_file.upstream_key == "sk-upstream-from-file"
    assert Settings.resolve(None, by_file.to_env()) == by_file  # the workers read the files
    with pytest.raises(SettingsError, match="not both"):
        Settings.resolve({"api_keys": "acme:" + "k" * 32}, by_file.to_env())


@pytest.mark.parametrize(
    ("cli", "env"),
    [
        ({}, {"CONVOSTORE_PORT": "abc"}),
        ({}, {"CONVOSTORE_PORT": "70000"}),
        ({}, {"CONVOSTORE_WORKERS": "0"}),
        ({}, {"CONVOSTORE_MIGRATE": "maybe"}),
        ({}, {"CONVOSTORE_SQLITE_SYNCHRONOUS": "sometimes"}),
        ({}, {"CONVOSTORE_LOG_LEVEL": "loud"}),
        ({}, {"CONVOSTORE_MAX_BODY_BYTES": "10"}),
        ({"port": -1}, {}),
        ({"workers": 0}, {"CONVOSTORE_WORKERS": "4"}),
        ({"no_such_setting": 1}, {}),
    ],
)
def test_resolve_refuses_bad_values(cli: dict[str, Any], env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.resolve(cli, env)


@contextmanager
def serve_from_env(cwd: Path, env: dict[str, str], port: int) -> Iterator[str]:
    """``convostore serve`` with no flags at all, configured only by ``env``."""
    base = f"http://127.0.0.1:{port}/v1"
    command = [sys.executable, "-m", "convostore", "serve"]
    with launched(command, probe=f"{base}/conversations/conv_probe", env=env, cwd=cwd):
        yield base


def conversation_ids(db: Path) -> list[str]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM conversations")]


def test_served_process_takes_port_and_db_from_env(tmp_path: Path) -> None:
    db = tmp_path / "env" / "served.db"
    db.parent.mkdir()
    port = free_port()
    env = {"CONVOSTORE_DB": str(db), "CONVOSTORE_PORT": str(port)}
    with serve_from_env(tmp_path, env, port) as url:
        created = httpx.post(f"{url}/conversations", json={})
        assert created.status_code == 200
        assert db.exists()
        assert conversation_ids(db) == [created.json()["id"]]
    assert not (tmp_path / "convostore.db").exists()  # the default was not used


def test_served_process_flags_beat_env(tmp_path: Path) -> None:
    flagged = tmp_path / "flag.db"
    ignored = tmp_path / "env.db"
    env = {"CONVOSTORE_DB": str(ignored), "CONVOSTORE_PORT": str(free_port())}
    # running_server passes --db and --port, and only answers once the flag's port does
    with running_server(flagged, env=env) as url:
        assert httpx.post(f"{url}/conversations", json={}).status_code == 200
    assert flagged.exists()
    assert not ignored.exists()


# --- usage errors ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_serving")
@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["serve", "--workers", "0"], {}),
        (["serve"], {"CONVOSTORE_PORT": "abc"}),
        (["serve", "--port", "abc"], {}),
        (["serve", "--port", "70000"], {}),
        (["serve", "--max-body-bytes", "10"], {}),
        (["serve", "--sqlite-synchronous", "bogus"], {}),
        (["serve", "--log-level", "loud"], {}),
        (["serve"], {"CONVOSTORE_SQLITE_SYNCHRONOUS": "bogus"}),
        (["serve"], {"CONVOSTORE_MIGRATE": "maybe"}),
        (["serve"], {"CONVOSTORE_WORKERS": "0"}),
        (["serve"], {"CONVOSTORE_LOG_LEVEL": "loud"}),
        (["serve", "--pool-size", "0"], {}),
        (["serve", "--pool-size", "2", "--pool-min-size", "3"], {}),
        (["serve", "--no-such-flag"], {}),
        (["migrate"], {"CONVOSTORE_DB": "x.db", "CONVOSTORE_MIGRATE": "maybe"}),
        (["frobnicate"], {}),
    ],
)
def test_invalid_values_are_usage_errors(args: list[str], env: dict[str, str]) -> None:
    result = invoke(*args, env=env)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert "Error:" in result.output
    assert "Usage: convostore" in result.output
    assert "Traceback" not in result.output


def test_invalid_env_in_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "convostore", "serve", "--db", str(tmp_path / "x.db")],
        env={**os.environ, "CONVOSTORE_PORT": "abc"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Error:" in result.stderr and "'abc'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "x.db").exists()


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:secret@h/db",
        "postgresql://u:secret@h:5432/db?sslmode=require",
        "postgres://admin:secret@db.example.com/convostore",
        "postgresql://u:se%40cret@h/db",
    ],
)
def test_settings_repr_hides_the_password(url: str) -> None:
    settings = Settings(db=url)
    for text in (repr(settings), str(settings), redact_url(url)):
        assert "secret" not in text and "se%40cret" not in text
        assert "***" in text
    assert "u:***@h" in repr(Settings(db="postgresql://u:secret@h/db"))
    resolved = Settings.resolve(None, {"CONVOSTORE_DB": url})
    assert "secret" not in repr(resolved)
    assert resolved.db == url  # only the display is redacted


def test_settings_repr_hides_a_query_password() -> None:
    url = "postgresql://u@h/db?password=secret"
    assert "secret" not in repr(Settings(db=url))


def test_urls_without_password_are_shown_as_they_are() -> None:
    for url in ("convostore.db", "/var/lib/convostore.db", "postgresql://u@h/db"):
        assert redact_url(url) == url
        assert repr(url) in repr(Settings(db=url))


def test_serve_never_prints_the_password(tmp_path: Path) -> None:
    """The start-up log names the database; nothing the process prints shows the password.
    (Nothing listens on port 1, so a PostgreSQL server process fails at start.)"""
    password = "pw-8f1c2e"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "convostore",
            "serve",
            "--db",
            f"postgresql://convo:{password}@127.0.0.1:1/convostore",
            "--port",
            str(free_port()),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    text = output.decode(errors="replace")
    assert "convo:***@127.0.0.1:1" in text, text
    assert password not in text


def test_migrate_never_prints_the_password() -> None:
    password = "pw-1d9a7b"
    result = invoke("migrate", "--db", f"postgresql://convo:{password}@127.0.0.1:1/convostore")
    assert result.exit_code != 0
    assert password not in result.output
    assert password not in repr(result.exception)


# --- once bugs, now guarded ------------------------------------------------------------------


@pytest.mark.usefixtures("no_serving")
def test_memory_database_with_several_workers_is_refused() -> None:
    result = invoke("serve", "--db", ":memory:", "--workers", "2")
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)


def test_migrate_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(bytes(range(256)) * 20)
    result = invoke("migrate", "--db", str(garbage))
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Error:" in result.output
