"""`convostore keys create | list | revoke`, and keys working across real server processes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest
from click.testing import CliRunner

from convostore.cli import main
from tests.support import running_server


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_keys_refuse_a_database_that_does_not_exist(tmp_path: Path) -> None:
    """`keys list --db /nonexistent/x.db` used to create /nonexistent/ and an empty file."""
    for args in (("keys", "list"), ("keys", "create", "--project", "acme"), ("keys", "revoke", "key_x")):
        for db in ("/nonexistent/x.db", str(tmp_path / "tpyo.db")):
            result = CliRunner().invoke(main, [*args, "--db", db])
            assert result.exit_code == 1, result.output
            assert f"no SQLite database at {Path(db).resolve()}" in result.stderr
            assert "convostore migrate" in result.stderr and "Traceback" not in result.output
    assert not Path("/nonexistent").exists()
    assert list(tmp_path.iterdir()) == []


def test_create_list_revoke(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")
    assert cli("migrate", "--db", db)[0] == 0
    code, out, err = cli("keys", "create", "--db", db, "--project", "acme", "--name", "backend")
    assert code == 0
    secret = out.strip()
    assert secret.startswith("sk-cs-") and len(secret) > 40
    assert "cannot show it again" in err
    code, listing, _ = cli("keys", "list", "--db", db)
    assert code == 0
    assert secret not in listing
    assert secret[:10] in listing and "acme" in listing and "backend" in listing
    key_id = listing.splitlines()[1].split()[0]
    assert key_id.startswith("key_")
    cli("keys", "create", "--db", db, "--project", "beta")
    _, only_beta, _ = cli("keys", "list", "--db", db, "--project", "beta")
    assert "acme" not in only_beta and "beta" in only_beta
    assert cli("keys", "revoke", "--db", db, key_id)[0] == 0
    _, listing, _ = cli("keys", "list", "--db", db, "--project", "acme")
    assert listing.splitlines()[1].split()[-1] != "-"  # a revocation time
    code, _, err = cli("keys", "revoke", "--db", db, key_id)
    assert code == 1 and "no active key" in err


def test_keys_help_has_examples() -> None:
    code, out, _ = cli("keys", "--help")
    assert code == 0
    assert "convostore keys create --project acme" in out


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_revocation_reaches_every_worker(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two worker processes; a key revoked by the CLI is refused by both within the bound."""
    db = request.getfixturevalue("pg_url") if backend == "postgres" else str(tmp_path / "w.db")
    assert cli("migrate", "--db", db)[0] == 0
    _, out, _ = cli("keys", "create", "--db", db, "--project", "acme")
    secret = out.strip()
    bound = 0.5
    with running_server(db, "--workers", "2", "--key-cache-seconds", str(bound)) as base:
        client = openai.OpenAI(base_url=base, api_key=secret, max_retries=0)
        conv = client.conversations.create()
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base, api_key="sk-cs-" + "x" * 43, max_retries=0).conversations.retrieve(conv.id)
        _, listing, _ = cli("keys", "list", "--db", db)
        cli("keys", "revoke", "--db", db, listing.splitlines()[1].split()[0])
        revoked = time.monotonic()
        time.sleep(bound)
        # Each new connection may land on either worker: all must refuse now.
        for _ in range(20):
            with httpx.Client() as fresh:
                response = fresh.get(f"{base}/conversations/{conv.id}", headers={"authorization": f"Bearer {secret}"})
            assert response.status_code == 401, time.monotonic() - revoked
