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
DEFAULT_PROJECT = "default"
MIN_SECRET_LENGTH = 24


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    secret: bool = False  # never shown in reprs, logs or docs

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
        "api_keys",
        str,
        "",
        "API keys given by environment (for containers), as comma-separated "
        "`project:secret` pairs; they work beside the keys of `convostore keys create`.",
        secret=True,
    ),
    Setting(
        "key_cache_seconds",
        float,
        1.0,
        "How long a server process trusts its cached lookup of a key: the bound on how long "
        "a revoked key keeps working, on every process.",
    ),
    Setting(
        "rate_limit",
        float,
        0.0,
        "Requests per second allowed per API key and server process (bursts up to the same "
        "number); 0 turns it off. Over it: 429 with Retry-After.",
    ),
    Setting(
        "allow_unauthenticated",
        bool,
        False,
        "Serve without API keys on a non-loopback address. Without it, such a server refuses "
        "to start.",
    ),
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
    Setting(
        "retention_days",
        int,
        0,
        "Delete conversations whose last activity (creation, append, metadata update, item "
        "delete) is older than this many days; 0 keeps them forever. The server purges in "
        "the background; `convostore purge` runs one pass.",
    ),
    Setting(
        "retention_projects",
        str,
        "",
        "Per-project retention in days, overriding --retention-days, as comma-separated "
        "`project=days` pairs, e.g. `acme=30,beta=7`; `project=0` keeps that project's "
        "conversations forever.",
    ),
    Setting(
        "purge_interval",
        float,
        3600.0,
        "Seconds between two background purges of a server process (when a retention is set).",
    ),
    Setting(
        "purge_batch_size",
        int,
        200,
        "Most conversations deleted in one transaction by a purge (a batch also stops at "
        "10,000 items); purges pause between batches so requests never wait long.",
    ),
    Setting(
        "access_log",
        bool,
        True,
        "Write one JSON line per request to stderr (request id, method, route, status, "
        "duration; never bodies, query strings or credentials).",
    ),
    Setting(
        "metrics",
        bool,
        True,
        "Serve Prometheus metrics at GET /metrics (without authentication: keep the port "
        "private or turn this off).",
    ),
    Setting(
        "request_timeout_seconds",
        float,
        30.0,
        "A request's line and headers, and then its body, must each arrive within this many "
        "seconds: a slower body gets 408, slower headers a closed connection, so slow clients "
        "cannot hold the server.",
    ),
    Setting(
        "shutdown_grace_seconds",
        float,
        30.0,
        "On SIGTERM or SIGINT the server stops accepting connections and lets requests in "
        "flight finish for up to this many seconds, then cancels the rest and closes the "
        "database.",
    ),
    Setting(
        "max_connections",
        int,
        2048,
        "Most open client connections per server process; a request arriving on a connection "
        "beyond it gets 503 with Retry-After and the connection is closed. 0: no limit.",
    ),
    # -- POST /v1/responses in front of a model server (issue 10, docs/responses.md) --
    Setting(
        "upstream",
        str,
        "",
        "Base URL of an OpenAI-compatible model server (vLLM, SGLang, Ollama, llama.cpp, LM "
        "Studio…), e.g. http://127.0.0.1:8001/v1: POST /v1/responses calls its "
        "/chat/completions. Empty: /v1/responses answers 400 upstream_not_configured.",
    ),
    Setting(
        "upstream_key",
        str,
        "",
        "API key sent to the model server as `Authorization: Bearer …` (never shown).",
        secret=True,
    ),
    Setting(
        "model_map",
        str,
        "",
        "Model names to rename before calling the model server, as comma-separated "
        "`name=upstream-name` pairs, e.g. `gpt-4o=qwen2.5-7b`; other names pass unchanged.",
    ),
    Setting(
        "upstream_timeout_seconds",
        float,
        600.0,
        "Longest single wait on the model server (connecting, or the next bytes of its "
        "answer); past it the response fails with 504 (or response.failed when streaming) "
        "and nothing is stored.",
    ),
    Setting(
        "response_lease_seconds",
        float,
        30.0,
        "A response holds its conversation (one in flight at a time) with a lease renewed "
        "every third of this while it runs; a crashed server's lease frees the conversation "
        "after at most this long.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}
_SECRET_NAMES = frozenset(s.name for s in SETTINGS if s.secret)


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


@dataclass(frozen=True, slots=True)
class EnvKey:
    project: str
    secret: str

    def __repr__(self) -> str:
        return f"EnvKey(project={self.project!r}, secret='***')"


def parse_env_keys(text: str) -> list[EnvKey]:
    """``project:secret,project:secret`` (a bare ``secret`` belongs to the default project)."""
    keys: list[EnvKey] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        project, _, secret = entry.rpartition(":")
        if len(secret) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"API keys given by environment must be at least {MIN_SECRET_LENGTH} random "
                "characters (`convostore keys create` prints good ones)"
            )
        keys.append(EnvKey(project or DEFAULT_PROJECT, secret))
    return keys


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
    api_keys: str = ""
    key_cache_seconds: float = 1.0
    rate_limit: float = 0.0
    allow_unauthenticated: bool = False
    pool_size: int = 10
    pool_min_size: int = 1
    retention_days: int = 0
    retention_projects: str = ""
    purge_interval: float = 3600.0
    purge_batch_size: int = 200
    access_log: bool = True
    metrics: bool = True
    request_timeout_seconds: float = 30.0
    shutdown_grace_seconds: float = 30.0
    max_connections: int = 2048
    upstream: str = ""
    upstream_key: str = ""
    model_map: str = ""
    upstream_timeout_seconds: float = 600.0
    response_lease_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.request_timeout_seconds <= 0 or self.shutdown_grace_seconds < 0:
            raise SettingsError(
                "request_timeout_seconds must be above 0 and shutdown_grace_seconds not negative"
            )
        if self.max_connections < 0:
            raise SettingsError(f"max_connections cannot be negative, got {self.max_connections}")
        self._check_upstream()
        if self.retention_days < 0:
            raise SettingsError(f"retention_days cannot be negative, got {self.retention_days}")
        parse_retention(self.retention_projects)
        if self.purge_interval <= 0 or self.purge_batch_size < 1:
            raise SettingsError("purge_interval must be above 0 and purge_batch_size at least 1")
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
        if self.key_cache_seconds < 0 or self.rate_limit < 0:
            raise SettingsError("key_cache_seconds and rate_limit cannot be negative")
        parse_env_keys(self.api_keys)
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
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_NAMES:
                value = "***" if value else ""
            elif f.name in ("db", "upstream"):
                value = redact_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def _check_upstream(self) -> None:
        from convostore.upstream.config import ModelMapError, parse_model_map

        if self.upstream and urlsplit(self.upstream).scheme not in ("http", "https"):
            raise SettingsError(
                f"upstream must be an http:// or https:// URL, got {self.upstream!r}"
            )
        if self.upstream_timeout_seconds <= 0 or self.response_lease_seconds < 1:
            raise SettingsError(
                "upstream_timeout_seconds must be above 0 and response_lease_seconds at least 1"
            )
        try:
            parse_model_map(self.model_map)
        except ModelMapError as exc:
            raise SettingsError(str(exc)) from None

    @property
    def retention_by_project(self) -> dict[str, int]:
        return parse_retention(self.retention_projects)

    @property
    def env_keys(self) -> list[EnvKey]:
        return parse_env_keys(self.api_keys)

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


def parse_retention(text: str) -> dict[str, int]:
    """``acme=30,beta=7`` as ``{"acme": 30, "beta": 7}`` (days; 0 keeps forever)."""
    rules: dict[str, int] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        project, sep, days = pair.rpartition("=")
        if not sep or not project.strip() or not days.strip().isdigit():
            raise SettingsError(
                f"retention_projects: expected project=days pairs such as acme=30, got {pair!r}"
            )
        rules[project.strip()] = int(days)
    return rules
