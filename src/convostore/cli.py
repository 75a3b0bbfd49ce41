"""The ``convostore`` command line.

``serve`` takes one option per field of :class:`convostore.settings.Settings`, so the
flags, the ``CONVOSTORE_*`` variables and the documentation always agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from convostore import __version__
from convostore.redact import redact_url
from convostore.settings import DEFAULT_PROJECT, SETTINGS, Settings, SettingsError
from convostore.store.base import Store

T = TypeVar("T")

log = logging.getLogger("convostore")


def _settings(options: dict[str, Any]) -> Settings:
    for setting in SETTINGS:
        if setting.secret and options.get(setting.name):
            click.echo(
                f"warning: {setting.flag} on the command line can be read by every user of "
                f"this machine (ps); use {setting.flag}-file or {setting.env}",
                err=True,
            )
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


def _configure_logging(settings: Settings) -> None:
    from convostore.logformat import configure

    configure(settings.log_level, settings.log_format)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="convostore")
@click.option(
    "--debug",
    is_flag=True,
    envvar="CONVOSTORE_DEBUG",
    help="On a failure, show the traceback too (by default: one line, the cause and the fix).",
)
def main(debug: bool) -> None:
    """convostore: a self-hosted server for the OpenAI Conversations API.

    \b
    Examples:
      convostore serve                               # ./convostore.db on 127.0.0.1:8000
      convostore migrate --db data.db                # a new, empty database (the file)
      convostore keys create --db data.db --project acme --name backend
      convostore serve --db data.db --host 0.0.0.0 --port 8080   # keys required off loopback
      convostore export --db data.db > dump.jsonl
      convostore import dump.jsonl --db postgresql://db/convos
      convostore backup --db data.db --to backup.db
      convostore purge --db data.db --retention-days 90 --dry-run
    """
    # Every command logs in the one format (CONVOSTORE_LOG_LEVEL / _FORMAT); `serve`
    # applies its own flags again.
    try:
        _configure_logging(
            Settings.resolve({}, {k: v for k, v in os.environ.items() if k in _LOG_ENV})
        )
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


_LOG_ENV = ("CONVOSTORE_LOG_LEVEL", "CONVOSTORE_LOG_FORMAT")


@main.command()
@_setting_options()
def serve(**options: Any) -> None:
    """Run the HTTP server (SQLite by default).

    Creates the SQLite file if it does not exist (not its folder). Anywhere but on
    loopback it needs API keys: create one first, or give CONVOSTORE_API_KEYS.

    \b
    Examples:
      convostore serve                               # ./convostore.db on 127.0.0.1:8000
      convostore migrate --db data.db
      convostore keys create --db data.db --project acme
      convostore serve --db data.db --host 0.0.0.0 --port 8080
      CONVOSTORE_API_KEYS=acme:$(openssl rand -hex 32) convostore serve --host 0.0.0.0
      convostore serve --db postgresql://user@db:5432/convos --workers 4 --log-format text
    """
    import uvicorn

    from convostore.api.protocol import GuardedHttpToolsProtocol
    from convostore.logformat import dict_config

    settings = _settings(options)
    _configure_logging(settings)
    _preflight(settings)
    log.info(
        "convostore %s serving http://%s:%d/v1 (and /openai/v1) on %s %s, %d worker(s); "
        "web console at http://%s:%d/console",
        __version__,
        settings.host,
        settings.port,
        settings.backend,
        redact_url(settings.db),
        settings.workers,
        settings.host,
        settings.port,
    )
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "lifespan": "on",
        "access_log": False,  # convostore writes its own (api/access_log.py)
        "server_header": False,
        "proxy_headers": False,  # no X-Forwarded-* rewriting on every request
        "log_level": settings.log_level,
        # One format for every line, applied by uvicorn in each worker too (logformat.py).
        "log_config": dict_config(settings.log_level, settings.log_format),
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
        # httptools with idle and header deadlines, a header size cap, connection caps and
        # a send timeout (convostore.api.protocol; the body's deadline is in api/request.py).
        "http": functools.partial(
            GuardedHttpToolsProtocol,
            header_timeout=settings.request_timeout_seconds,
            idle_timeout=settings.idle_connection_seconds,
            send_timeout=settings.send_timeout_seconds,
            max_connections=settings.max_connections,
            max_connections_per_peer=settings.max_connections_per_peer,
        ),
    }
    if settings.workers == 1:
        from convostore.api.app import create_app

        uvicorn.run(create_app(settings), **common)
        return
    with _secrets_for_workers(settings) as env:
        os.environ.update(env)
        uvicorn.run("convostore.cli:worker_app", factory=True, workers=settings.workers, **common)


@contextlib.contextmanager
def _secrets_for_workers(settings: Settings) -> Iterator[dict[str, str]]:
    """The environment of the worker processes: the settings less the secrets, which
    reach them as files (issue 15, L9). A secret given on the command line or by
    environment is written to a file only this user can read, removed at exit, and the
    secret's own variable is taken out of this process's environment before the workers
    inherit it."""
    env = settings.to_env()
    with tempfile.TemporaryDirectory(prefix="convostore-") as private:  # mode 0700
        for setting in SETTINGS:
            if not setting.secret:
                continue
            os.environ.pop(setting.env, None)
            value = getattr(settings, setting.name)
            if value and not getattr(settings, setting.name + "_file"):
                path = Path(private) / setting.name
                path.touch(mode=0o600)
                path.write_text(value, encoding="utf-8")
                env[setting.env + "_FILE"] = str(path)
        yield env


def _preflight(settings: Settings) -> None:
    """What would stop the server at start, found before it starts, as one line: the port
    in use, the database unreachable or missing its folder, keys required (diagnose.py).
    The database is created (the file only) and migrated here, once, for every worker."""
    from convostore.api.app import ConvoStore
    from convostore.diagnose import check_port
    from convostore.store.factory import store_for

    async def run() -> None:
        check_port(settings.host, settings.port)
        app = ConvoStore(settings, store_for(settings, create=True))
        await app.startup()
        await app.shutdown()

    run_or_explain(settings, run)


def worker_app() -> Any:
    """App factory for worker processes: settings come from the environment ``serve`` set."""
    from convostore.api.app import create_app

    return create_app(Settings.resolve(None, os.environ))


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


def with_store(
    settings: Settings,
    work: Callable[[Store], Awaitable[T]],
    *,
    migrate: bool = True,
    create: bool = False,
) -> T:
    """Open the store the settings name (migrated first), run ``work`` on it, close it.

    Without ``create`` (every command but ``serve`` and ``migrate``) a database that does
    not exist, or holds no convostore tables, is refused: a typo in ``--db`` must not
    give a nightly export of a new, empty database. Failures become one ``Error: …``
    line naming the cause and the fix (convostore.diagnose), never a traceback (unless
    ``--debug``), and never show a password.
    """
    from convostore.store.base import DatabaseMissing
    from convostore.store.factory import store_for

    async def run() -> T:
        store = store_for(settings, create=create)
        await store.open()
        try:
            if not create and await store.schema_version() == 0:
                raise DatabaseMissing(
                    f"{redact_url(settings.db)} holds no convostore tables (not a convostore "
                    "database, or never migrated)"
                )
            if migrate:
                await store.migrate()
            return await work(store)
        finally:
            await store.close()

    return run_or_explain(settings, run)


def run_or_explain(settings: Settings, run: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(run())``, with any failure as one line (convostore.diagnose)."""
    from convostore.diagnose import explain

    try:
        return asyncio.run(run())
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except Exception as exc:
        if _debug():
            raise
        raise click.ClickException(explain(exc, settings)) from None


@main.command()
@_setting_options(("db",))
def migrate(**options: Any) -> None:
    """Apply pending database migrations and print the schema version.

    The one command besides `serve` that creates a SQLite database (the file only, not
    its folder): this is how to make an empty database for `convostore import`.
    """
    settings = _settings(options)

    async def run(store: Store) -> tuple[list[int], int]:
        applied = await store.migrate()
        return applied, await store.schema_version()

    applied, version = with_store(settings, run, migrate=False, create=True)
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


# -- export, import, purge (issue 7) -------------------------------------------------------


def _progress(label: str, length: int) -> Any:
    """A progress bar on stderr when it is a terminal, else nothing at all (``None``)."""
    if not sys.stderr.isatty():
        return None
    return click.progressbar(length=length, label=label, file=sys.stderr)


@main.command("export")
@click.option("--project", default=None, help="Only the conversations of this project.")
@click.option(
    "--conversation",
    "conversations",
    multiple=True,
    metavar="ID",
    help="Only this conversation (repeat for several).",
)
@click.option(
    "--no-keys", is_flag=True, help="Leave the API keys out (they are in by default, as hashes)."
)
@_setting_options(("db",))
def export_(
    project: str | None, conversations: tuple[str, ...], no_keys: bool, **options: Any
) -> None:
    """Write the API keys (hashes only), conversations and items to stdout, one JSON line
    each, and a last line with their counts.

    Streams: memory stays flat however big the store. The format is in docs/export.md;
    `convostore import` reads it back, on either database, and a server on the copy
    answers every key and conversation as before.

    \b
    Examples:
      convostore export > dump.jsonl
      convostore export --project acme --db postgresql://db/convos > acme.jsonl
      convostore export --conversation conv_0123… --conversation conv_4567…
    """
    from convostore.service.transfer import export_dump

    settings = _settings(options)
    ids = list(conversations) or None
    out = sys.stdout.buffer

    counts: Counter[str] = Counter()

    async def run(store: Store) -> int:
        total = await store.count_conversations(project=project, ids=ids)
        bar = _progress("exporting", total)
        count = 0

        def done() -> None:
            nonlocal count
            count += 1
            if bar is not None:
                bar.update(1)

        try:
            async for chunk in export_dump(
                store,
                project=project,
                ids=ids,
                keys=not no_keys,
                on_conversation=done,
                counts=counts,
            ):
                out.write(chunk)
            out.flush()
        finally:
            if bar is not None:
                bar.render_finish()
        return count

    count = with_store(settings, run)
    click.echo(
        f"exported {count} conversations ({counts['item']} items) and {counts['api_key']} API keys",
        err=True,
    )


@main.command("import")
@click.argument("dump", type=click.File("rb"), metavar="DUMP.jsonl")
@click.option("--no-keys", is_flag=True, help="Do not import the dump's API keys.")
@click.option(
    "--no-end-check",
    is_flag=True,
    help="Accept a dump without its last line of counts (made by convostore before 0.2); "
    "a cut dump is then not detected.",
)
@_setting_options(("db",))
def import_(dump: Any, no_keys: bool, no_end_check: bool, **options: Any) -> None:
    """Read a dump of `convostore export` ('-' for stdin) into an existing database
    (`convostore migrate --db …` makes an empty one).

    Keeps ids, times, metadata, owners, item order and bodies, and the API keys; a
    conversation or key already there is skipped (and named). Every item is checked as
    the API checks it. A bad line, or a dump cut short (its last line holds the counts),
    stops the import with an account of what was committed; run it again to resume.

    \b
    Examples:
      convostore import dump.jsonl --db postgresql://db/convos
      convostore export --db old.db | convostore import - --db postgresql://db/convos
    """
    from convostore.service.transfer import ImportFailed, import_lines

    settings = _settings(options)
    try:
        size = os.fstat(dump.fileno()).st_size if dump.seekable() else 0
    except (OSError, ValueError):
        size = 0

    async def run(store: Store) -> Any:
        bar = _progress("importing", size) if size else None
        try:
            return await import_lines(
                store,
                dump,
                keys=not no_keys,
                require_end=not no_end_check,
                on_bytes=None if bar is None else bar.update,
            )
        except ImportFailed as failed:
            raise click.ClickException(str(failed)) from None
        finally:
            if bar is not None:
                bar.render_finish()

    report = with_store(settings, run)
    click.echo(report.account(), err=True)
    for conversation_id in report.skipped_ids[:20]:
        click.echo(f"  skipped {conversation_id}", err=True)


@main.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Delete without asking (needed when stdin is not a terminal, e.g. in cron).",
)
@_setting_options(("db", "retention_days", "retention_projects", "purge_batch_size"))
def purge(dry_run: bool, yes: bool, **options: Any) -> None:
    """Delete the conversations older than the retention settings, once.

    Last activity is the latest of creation, append, metadata update and item delete.
    Deletes in small transactions with pauses between them, so a serving process is
    never blocked for long. A server with a retention set does this by itself every
    --purge-interval seconds. Says what it would delete and asks first, unless --yes;
    shows its progress on a terminal.

    \b
    Examples:
      convostore purge --retention-days 90 --dry-run
      convostore purge --retention-days 90 --retention-projects acme=30,beta=0
      CONVOSTORE_RETENTION_DAYS=90 convostore purge --yes --db postgresql://db/convos
    """
    from convostore.service import retention

    settings = _settings(options)
    rules = retention.rules(settings.retention_days, settings.retention_by_project)
    if not rules:
        raise click.UsageError(
            "no retention is set: give --retention-days N or --retention-projects project=N"
        )

    async def run(store: Store) -> retention.PurgeReport:
        purger = retention.Purger(store, rules, batch_size=settings.purge_batch_size)
        now = time.time()
        found = await purger.run(dry_run=True, now=now)
        if dry_run or not found.conversations:
            return found
        if not yes:
            _print_purge(found)
            question = (
                f"Delete these {found.conversations} conversations ({found.items} items) "
                f"from {redact_url(settings.db)}?"
            )
            if not sys.stdin.isatty():
                raise click.ClickException(
                    f"not deleting {found.conversations} conversations without a confirmation, "
                    "and stdin is not a terminal to ask on: run again with --yes"
                )
            click.confirm(question, abort=True, err=True)
        bar = _progress("deleting", found.conversations)
        done = 0

        def deleted(count: int) -> None:
            nonlocal done
            if bar is not None:
                bar.update(count)
                return
            # Not a terminal (a log): a line at each tenth, at most ten lines.
            step = max(1, found.conversations // 10)
            if (done + count) // step > done // step:
                click.echo(
                    f"deleted {done + count} of {found.conversations} conversations", err=True
                )
            done += count

        try:
            return await purger.run(now=now, on_deleted=deleted)
        finally:
            if bar is not None:
                bar.render_finish()

    report = with_store(settings, run)
    _print_purge(report)


def _print_purge(report: Any) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    for project, gone in sorted(report.by_project.items()):
        oldest = _when(gone.oldest_activity)
        click.echo(
            f"{project or '(no project)'}: {verb} {gone.conversations} conversations "
            f"({gone.items} items), least recently active {oldest}"
        )
    click.echo(f"total: {verb} {report.conversations} conversations ({report.items} items)")
    if report.responses:
        click.echo(f"stored responses: {verb} {report.responses}")


# -- backup and check (issue 19) -----------------------------------------------------------


@main.command()
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(dir_okay=False),
    help="The new file to write (refused if it exists).",
)
@_setting_options(("db",))
def backup(to: str, **options: Any) -> None:
    """Copy a live SQLite database, consistently, to a new file.

    Uses SQLite's online backup: one snapshot, taken while servers keep writing. The copy
    is checked (PRAGMA integrity_check) and is itself a database `serve --db` can open.
    PostgreSQL: use pg_dump (docs/operations.md).

    \b
    Examples:
      convostore backup --db /var/lib/convostore/convostore.db --to /backups/convostore-$(date +%F).db
      convostore check --db /backups/convostore-2026-12-05.db
    """
    from convostore.store import sqlite_health

    settings = _settings(options)
    if settings.backend == "postgres":
        raise click.ClickException(
            "backup copies SQLite files; for PostgreSQL use its own tools, e.g. "
            f"`pg_dump -Fc -f convostore.dump '{redact_url(settings.db)}'` "
            "(docs/operations.md), or `convostore export`"
        )
    if os.path.lexists(to):
        raise click.ClickException(f"{os.path.abspath(to)} exists: backup writes a new file only")
    with_store(settings, _nothing, migrate=False)  # refuses a missing or foreign file

    def run() -> tuple[int, list[str]]:
        size = sqlite_health.backup(settings.database.target, to)
        return size, sqlite_health.integrity_problems(to)

    try:
        size, problems = run()
    except Exception as exc:
        if _debug():
            raise
        raise click.ClickException(f"backup to {os.path.abspath(to)} failed: {exc}") from None
    if problems:
        raise click.ClickException(
            f"the copy at {os.path.abspath(to)} fails its integrity check ({problems[0]}): "
            "the source is damaged; run `convostore check` on it"
        )
    click.echo(
        f"backed up {redact_url(settings.db)} to {os.path.abspath(to)} ({size} bytes); integrity ok"
    )


async def _nothing(store: Store) -> None:
    return None


@main.command()
@_setting_options(("db",))
def check(**options: Any) -> None:
    """Check the database: SQLite's full integrity check, or PostgreSQL's reachability and
    schema. Exit status 1 when something is wrong.

    \b
    Examples:
      convostore check --db /var/lib/convostore/convostore.db
      convostore check --db postgresql://convostore@db:5432/convos
    """
    from convostore.store import migrate as migrations
    from convostore.store import sqlite_health

    settings = _settings(options)

    async def version(store: Store) -> tuple[int, int]:
        needed = max(m.version for m in migrations.load(store.backend))
        return await store.schema_version(), needed

    have, needed = with_store(settings, version, migrate=False)
    where = redact_url(settings.db)
    if have < needed:
        click.echo(
            f"{where}: schema version {have}; this convostore needs {needed} (run `convostore migrate`)"
        )
    if settings.backend == "postgres":
        click.echo(
            f"{where}: reachable, schema version {have}. For page-level checks use "
            "PostgreSQL's pg_amcheck (docs/operations.md)."
        )
        return
    problems = sqlite_health.integrity_problems(settings.database.target)
    if problems:
        for problem in problems:
            click.echo(f"{where}: {problem}")
        raise click.ClickException(
            f"{where} is damaged ({len(problems)} problem(s) above): restore it from a backup "
            "(docs/operations.md)"
        )
    click.echo(f"{where}: integrity ok, schema version {have}")
