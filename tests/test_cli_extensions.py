"""`convostore --help` shows every command, and each new command has examples."""

from __future__ import annotations

from click.testing import CliRunner

from convostore.cli import main


def test_help_shows_every_command_with_examples() -> None:
    result = CliRunner().invoke(main, ["--help"], prog_name="convostore")
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:", 1)[1]
    for name in ("serve", "migrate", "keys", "export", "import", "purge"):
        assert f"  {name}" in commands, name
    for example in ("convostore export", "convostore import", "convostore purge"):
        assert example in result.output
    for name in ("export", "import", "purge"):
        sub = CliRunner().invoke(main, [name, "--help"], prog_name="convostore")
        assert sub.exit_code == 0 and "Examples:" in sub.output, name
        assert "--db" in sub.output
    purge = CliRunner().invoke(main, ["purge", "--help"], prog_name="convostore").output
    assert "--retention-days" in purge and "--retention-projects" in purge and "--dry-run" in purge
