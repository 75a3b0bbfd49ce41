"""Start-up and command failures as one line an operator can act on: the cause and the fix.

:func:`explain` turns what opening a database or a listening socket raises into such a
line (PostgreSQL: the host and port tried; SQLite: the file, its folder and the
permission missing; a port: who holds it). The CLI prints it instead of a traceback,
which ``--debug`` brings back.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

from convostore.redact import redact_url
from convostore.settings import Settings, SettingsError
from convostore.store.base import DatabaseMissing, StoreUnavailable


def explain(exc: BaseException, settings: Settings) -> str:
    """One line naming what failed and what to do about it."""
    if isinstance(exc, SettingsError):
        return str(exc)
    if isinstance(exc, DatabaseMissing):
        return (
            f"{exc}: check --db / CONVOSTORE_DB (a typo?); `convostore migrate --db "
            f"{redact_url(settings.db)}` makes an empty database if that is what you want"
        )
    if isinstance(exc, PortUnavailable):
        return str(exc)
    if settings.backend == "postgres":
        return _postgres(exc, settings.database.target)
    return _sqlite(exc, settings.database.target)


def _cause(exc: BaseException) -> BaseException:
    """The driver's error behind a StoreUnavailable."""
    if isinstance(exc, StoreUnavailable) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def _postgres(exc: BaseException, url: str) -> str:
    import asyncpg

    parts = urlsplit(url)
    host = parts.hostname or os.environ.get("PGHOST", "localhost")
    port = parts.port or int(os.environ.get("PGPORT", "5432"))
    database = parts.path.lstrip("/") or parts.username or "postgres"
    where = f"PostgreSQL at {host}:{port} ({redact_url(url)})"
    cause = _cause(exc)
    if isinstance(cause, asyncpg.InvalidCatalogNameError):
        return (
            f"{where} has no database {database!r}: create it (`createdb -h {host} -p {port} "
            f"{database}`) or correct the name in --db"
        )
    if isinstance(
        cause, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return (
            f"{where} refused user {parts.username or '(default)'!r}: {cause}; check the user "
            "and password in --db and the server's pg_hba.conf"
        )
    if isinstance(cause, socket.gaierror):
        return f"cannot resolve the PostgreSQL host {host!r} ({cause}): correct the host in --db"
    if isinstance(cause, OSError | TimeoutError | asyncpg.PostgresConnectionError):
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        return (
            f"cannot reach {where} ({reason or type(cause).__name__}): is the server running "
            "and listening there? Check the host and port in --db / CONVOSTORE_DB"
        )
    return f"{where}, database {database!r}: {type(cause).__name__}: {cause}"


def _sqlite(exc: BaseException, path: str) -> str:
    cause = _cause(exc)
    file = Path(path).resolve()
    folder = file.parent
    if isinstance(cause, sqlite3.DatabaseError) and "not a database" in str(cause):
        return (
            f"{file} is not a SQLite database (or its header is damaged): check --db; "
            "restore it from a backup if it was one (docs/operations.md)"
        )
    if isinstance(cause, sqlite3.DatabaseError) and "malformed" in str(cause):
        return (
            f"{file} is corrupt ({cause}): run `convostore check --db {file}` and restore "
            "from a backup (docs/operations.md)"
        )
    if not folder.is_dir():
        return (
            f"cannot open the SQLite database {file}: the folder {folder} does not exist; "
            f"create it (`mkdir -p {folder}`) or give --db another path"
        )
    user = _user()
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"cannot open the SQLite database {file}: the folder {folder} is not writable by "
            f"{user} (SQLite writes its -wal and -shm files beside the database); "
            "give that user write permission on it (chown/chmod) or use another --db"
        )
    if file.exists() and not os.access(file, os.R_OK | os.W_OK):
        return (
            f"cannot open the SQLite database {file}: it is not readable and writable by "
            f"{user}; fix its owner or mode (chown/chmod)"
        )
    return f"SQLite database {file}: {type(cause).__name__}: {cause}"


def _user() -> str:
    uid = os.getuid()
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


class PortUnavailable(OSError):
    """The address to listen on cannot be bound; the message says why and what to do."""


def check_port(host: str, port: int) -> None:
    """Bind and release ``host:port`` as the server will, so a port in use is a clear
    error before anything starts (raises :class:`PortUnavailable`)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortUnavailable(
                    f"port {port} on {host} is already in use (another convostore, or another "
                    f"program: `ss -ltnp 'sport = :{port}'` names it); stop it or choose "
                    "another port with --port / CONVOSTORE_PORT"
                ) from None
            if exc.errno == errno.EACCES:
                raise PortUnavailable(
                    f"not allowed to listen on port {port} ({exc.strerror}): ports below 1024 "
                    "need privileges; use --port 8000 (and a proxy in front) instead"
                ) from None
            if exc.errno in (errno.EADDRNOTAVAIL, socket.EAI_NONAME) or isinstance(
                exc, socket.gaierror
            ):
                raise PortUnavailable(
                    f"cannot listen on {host}: no such address on this machine ({exc.strerror}); "
                    "use --host 127.0.0.1, 0.0.0.0 or one of this machine's addresses"
                ) from None
            raise PortUnavailable(f"cannot listen on {host}:{port}: {exc}") from None
