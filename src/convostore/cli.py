"""The ``convostore`` command line.

``serve`` takes one option per entry of :data:`convostore.settings.SETTINGS`, so the
flags, the ``CONVOSTORE_*`` variables and the documentation always agree.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

import click

from convostore import __version__
from convostore.settings import SETTINGS, Settings, SettingsError, redact_url

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


@main.command()
@_setting_options(("db",))
def migrate(**options: Any) -> None:
    """Apply pending database migrations and print the schema version."""
    from convostore.store.factory import store_for

    settings = _settings(options)

    async def run() -> tuple[list[int], int]:
        store = store_for(settings)
        await store.open()
        try:
            applied = await store.migrate()
            return applied, await store.schema_version()
        finally:
            await store.close()

    try:
        applied, version = asyncio.run(run())
    except Exception as exc:  # any driver or file error: a clean message, no traceback
        raise click.ClickException(
            f"{redact_url(settings.db)}: {type(exc).__name__}: {exc}"
        ) from None
    done = f"applied {', '.join(map(str, applied))}" if applied else "nothing to apply"
    click.echo(f"{redact_url(settings.db)}: {done}; schema version {version}")
