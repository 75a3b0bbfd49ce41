"""Typed settings, described once as data.

:data:`SETTINGS` lists every setting with its type, default, environment variable and
help text. The CLI builds its ``serve`` options from it, ``docs/settings.md`` is checked
against it by a test, and :meth:`Settings.resolve` applies the precedence
CLI flag > ``CONVOSTORE_*`` environment variable > default. Nothing is read at import.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ENV_PREFIX = "CONVOSTORE_"


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("db", str, "convostore.db", "SQLite file path, or a postgresql:// URL."),
    Setting("host", str, "127.0.0.1", "Address to listen on."),
    Setting("port", int, 8000, "TCP port to listen on."),
    Setting("workers", int, 1, "Server processes to run (they share the database)."),
    Setting(
        "max_body_bytes",
        int,
        32 * 1024 * 1024,
        "Largest request body accepted; larger ones get 413. The spec allows a 10 MiB "
        "function_call_output string, so keep this above that.",
    ),
    Setting(
        "sqlite_synchronous",
        str,
        "normal",
        "SQLite durability: 'normal' keeps every acknowledged write across a process crash "
        "(kill -9); 'full' also across power loss, with an fsync per write; 'off' risks "
        "acknowledged writes on a crash of the machine.",
        ("off", "normal", "full"),
    ),
    Setting("log_level", str, "info", "Log level.", ("debug", "info", "warning", "error")),
    Setting("migrate", bool, True, "Apply pending database migrations at start."),
    Setting(
        "pool_size",
        int,
        10,
        "PostgreSQL: most connections one server process opens (its pool's size). A server "
        "opens at most workers x pool_size; keep the sum over all servers below the "
        "database's max_connections. Ignored for SQLite.",
    ),
    Setting(
        "pool_min_size",
        int,
        1,
        "PostgreSQL: connections each server process opens at start and keeps open "
        "(0..pool_size). Ignored for SQLite.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def markdown_table() -> str:
    """The settings reference of docs/settings.md (a test keeps the file in step)."""
    rows = ["| flag | environment | default | meaning |", "| --- | --- | --- | --- |"]
    for setting in SETTINGS:
        default = setting.default
        shown = ("true" if default else "false") if isinstance(default, bool) else str(default)
        meaning = setting.help
        if setting.choices:
            meaning += " One of: " + ", ".join(f"`{c}`" for c in setting.choices) + "."
        rows.append(f"| `{setting.flag}` | `{setting.env}` | `{shown}` | {meaning} |")
    return "\n".join(rows) + "\n"


class SettingsError(ValueError):
    """A setting has a value convostore refuses to run with."""


def _convert(setting: Setting, raw: Any) -> Any:
    if setting.type is bool and isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{setting.env}: expected true or false, got {raw!r}")
    try:
        return setting.type(raw)
    except (TypeError, ValueError):
        raise SettingsError(
            f"{setting.flag} / {setting.env}: expected {setting.type.__name__}, got {raw!r}"
        ) from None


_SECRET_QUERY_KEYS = ("password", "passfile", "sslpassword")


def redact_url(url: str) -> str:
    """A database URL with its passwords (userinfo or query) replaced, fit for logs."""
    parts = urlsplit(url)
    if not parts.scheme or parts.scheme == "file":
        return url
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = "&".join(
        f"{key}=***" if key.lower() in _SECRET_QUERY_KEYS else f"{key}={value}" if sep else key
        for key, sep, value in (pair.partition("=") for pair in parts.query.split("&"))
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query if parts.query else ""))


@dataclass(frozen=True, slots=True)
class Settings:
    db: str = "convostore.db"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_body_bytes: int = 32 * 1024 * 1024
    sqlite_synchronous: str = "normal"
    log_level: str = "info"
    migrate: bool = True
    pool_size: int = 10
    pool_min_size: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port must be 0..65535, got {self.port}")
        if self.workers < 1:
            raise SettingsError(f"workers must be at least 1, got {self.workers}")
        if self.db in (":memory:", "") and self.workers > 1:
            raise SettingsError(
                "an in-memory database cannot be shared by several workers: give --db a file"
            )
        if self.max_body_bytes < 1024:
            raise SettingsError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}")
        if self.pool_size < 1:
            raise SettingsError(f"pool_size must be at least 1, got {self.pool_size}")
        if not 0 <= self.pool_min_size <= self.pool_size:
            raise SettingsError(
                f"pool_min_size must be 0..pool_size ({self.pool_size}), got {self.pool_min_size}"
            )
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if setting.choices and value not in setting.choices:
                raise SettingsError(
                    f"{setting.name} must be one of {', '.join(setting.choices)}, got {value!r}"
                )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={redact_url(self.db) if f.name == 'db' else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Settings({shown})"

    @property
    def backend(self) -> str:
        scheme = urlsplit(self.db).scheme
        return "postgres" if scheme in ("postgres", "postgresql") else "sqlite"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @classmethod
    def resolve(
        cls, cli: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """CLI values (``None`` means not given) > environment > defaults."""
        cli = cli or {}
        env = env or {}
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            if cli.get(setting.name) is not None:
                values[setting.name] = _convert(setting, cli[setting.name])
            elif setting.env in env:
                values[setting.name] = _convert(setting, env[setting.env])
        unknown = set(cli) - _BY_NAME.keys()
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that makes :meth:`resolve` rebuild these settings (for workers)."""
        out: dict[str, str] = {}
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            out[setting.env] = (
                ("true" if value else "false") if isinstance(value, bool) else str(value)
            )
        return out
