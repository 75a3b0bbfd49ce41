"""The ``convostore`` command line.

``serve`` takes one option per entry of :data:`convostore.settings.SETTINGS`, so the
flags, the ``CONVOSTORE_*`` variables and the documentation always agree.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from convostore import __version__
from convostore.settings import DEFAULT_PROJECT, SETTINGS, Settings, SettingsError, redact_url
from convostore.store.base import Store

T = TypeVar("T")

log = logging.getLogger("convostore")


def _settings(options: dict[str, Any]) -> Settings:
    try:
        return Settings.resolve(options, os.environ)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def _setting_options(names: tuple[str, ...] | None = None) -> Callable[[Any], Any]:
    """Click options for the named settings (all when ``names`` is None); defaults come later."""

    def decorate(func: Any) -> Any:
        for setting in reversed(SETTINGS):
            if names is not None and setting.name not in names:
                continue
            help_text = f"{setting.help} [env {setting.env}; default {setting.default!r}]"
            if setting.type is bool:
                option = click.option(
                    f"{setting.flag}/--no-{setting.flag[2:]}",
                    setting.name,
                    default=None,
                    help=help_text,
                )
            else:
                kind: Any = click.Choice(setting.choices) if setting.choices else setting.type
                option = click.option(
                    setting.flag, setting.name, type=kind, default=None, help=help_text
                )
            func = option(func)
        return func

    return decorate


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="convostore")
def main() -> None:
    """convostore: a self-hosted server for the OpenAI Conversations API.

    \b
    Examples:
      convostore serve                               # ./convostore.db on 127.0.0.1:8000
      convostore serve --db /var/lib/convostore.db --host 0.0.0.0 --port 8080
      convostore migrate --db convostore.db
      convostore keys create --project acme --name backend
    """


@main.command()
@_setting_options()
def serve(**options: Any) -> None:
    """Run the HTTP server (SQLite by default)."""
    import uvicorn

    settings = _settings(options)
    _configure_logging(settings.log_level)
    log.info(
        "convostore %s serving http://%s:%d/v1 (and /openai/v1) on %s %s, %d worker(s)",
        __version__,
        settings.host,
        settings.port,
        settings.backend,
        redact_url(settings.db),
        settings.workers,
    )
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": "httptools",
        "loop": "uvloop",
        "lifespan": "on",
        "access_log": False,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": 30,
    }
    if settings.workers == 1:
        from convostore.api.app import create_app

        uvicorn.run(create_app(settings), **common)
        return
    os.environ.update(settings.to_env())
    uvicorn.run("convostore.cli:worker_app", factory=True, workers=settings.workers, **common)


def worker_app() -> Any:
    """App factory for worker processes: settings come from the environment ``serve`` set."""
    from convostore.api.app import create_app

    return create_app(Settings.resolve(None, os.environ))


def with_store(
    settings: Settings, work: Callable[[Store], Awaitable[T]], *, migrate: bool = True
) -> T:
    """Open the store the settings name (migrated first), run ``work`` on it, close it.

    Driver and file errors become a clean ``Error: …`` line (exit 1), never a traceback,
    and never show a password.
    """
    from convostore.store.factory import store_for

    async def run() -> T:
        store = store_for(settings)
        await store.open()
        try:
            if migrate:
                await store.migrate()
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except click.ClickException:
        raise
    except Exception as exc:
        raise click.ClickException(
            f"{redact_url(settings.db)}: {type(exc).__name__}: {exc}"
        ) from None


@main.command()
@_setting_options(("db",))
def migrate(**options: Any) -> None:
    """Apply pending database migrations and print the schema version."""
    settings = _settings(options)

    async def run(store: Store) -> tuple[list[int], int]:
        applied = await store.migrate()
        return applied, await store.schema_version()

    applied, version = with_store(settings, run, migrate=False)
    done = f"applied {', '.join(map(str, applied))}" if applied else "nothing to apply"
    click.echo(f"{redact_url(settings.db)}: {done}; schema version {version}")


@main.group()
def keys() -> None:
    """Manage API keys (stored as hashes; a secret is shown once, at creation).

    \b
    Examples:
      convostore keys create --project acme --name backend
      convostore keys list --project acme
      convostore keys revoke key_0123456789abcdef01234567
    """


@keys.command("create")
@click.option(
    "--project", default=DEFAULT_PROJECT, show_default=True, help="Project the key belongs to."
)
@click.option("--name", default="", help="A label for people (which service uses it).")
@_setting_options(("db",))
def keys_create(project: str, name: str, **options: Any) -> None:
    """Create a key and print its secret (the only time it is shown)."""
    from convostore.service.keys import Keys

    row, secret = with_store(_settings(options), lambda store: Keys(store).create(project, name))
    click.echo(secret)
    click.echo(f"id {row.id}  project {row.project}  name {row.name!r}", err=True)
    click.echo(
        "Store the secret now: convostore keeps only a hash and cannot show it again.", err=True
    )


@keys.command("list")
@click.option("--project", default=None, help="Only the keys of this project.")
@_setting_options(("db",))
def keys_list(project: str | None, **options: Any) -> None:
    """List keys (never their secrets)."""
    from convostore.service.keys import Keys

    rows = with_store(_settings(options), lambda store: Keys(store).list(project))
    header = ("ID", "KEY", "PROJECT", "NAME", "CREATED", "LAST USED", "REVOKED")
    table = [header] + [
        (
            r.id,
            r.prefix,
            r.project,
            r.name,
            _when(r.created_at),
            _when(r.last_used_at),
            _when(r.revoked_at),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@keys.command("revoke")
@click.argument("key_id")
@_setting_options(("db",))
def keys_revoke(key_id: str, **options: Any) -> None:
    """Revoke a key: every server process refuses it within key_cache_seconds."""
    from convostore.service.keys import Keys

    if not with_store(_settings(options), lambda store: Keys(store).revoke(key_id)):
        raise click.ClickException(f"no active key with id {key_id!r}")
    click.echo(f"revoked {key_id}")


def _when(stamp: int | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
