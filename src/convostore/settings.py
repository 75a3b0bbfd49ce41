"""Typed settings, each declared once: a field of :class:`Settings`.

A field's type and default are the setting's; :func:`setting` adds its help text, its
choices and whether it is secret. The rest is derived from the fields: :data:`SETTINGS`
(one :class:`Setting` per field) gives the CLI its ``serve`` options and the
``CONVOSTORE_*`` variables, :func:`markdown_table` the table of ``docs/settings.md``
(``scripts/gen_settings_doc.py``; a test keeps the file in step), and
:meth:`Settings.resolve` applies the precedence CLI flag > ``CONVOSTORE_*`` environment
variable > default.

A setting written as text with a syntax of its own (``api_keys``, ``retention_projects``,
``model_map``) is parsed here as well, so a bad value is refused before anything starts;
the parsed form is a property (``api_key_pairs``, ``retention_by_project``,
``model_names``). Nothing is read at import.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, get_type_hints
from urllib.parse import urlsplit

from convostore import dburl
from convostore.redact import redact_url

ENV_PREFIX = "CONVOSTORE_"
DEFAULT_PROJECT = "default"
MIN_SECRET_LENGTH = 24

T = TypeVar("T")


def setting(default: T, help: str, *, choices: tuple[str, ...] = (), secret: bool = False) -> T:
    """A field of :class:`Settings` with its help text, its choices, and whether it is a
    secret (never shown in reprs, logs or docs)."""
    metadata = {"help": help, "choices": choices, "secret": secret}
    return field(default=default, metadata=metadata)


class SettingsError(ValueError):
    """A setting has a value convostore refuses to run with."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of convostore, with its type, default and help text."""

    db: str = setting("convostore.db", "SQLite file path, or a postgresql:// URL.")
    host: str = setting("127.0.0.1", "Address to listen on.")
    port: int = setting(8000, "TCP port to listen on.")
    workers: int = setting(1, "Server processes to run (they share the database).")
    max_body_bytes: int = setting(
        32 * 1024 * 1024,
        "Largest request body accepted; larger ones get 413. The spec allows a 10 MiB "
        "function_call_output string, so keep this above that.",
    )
    max_id_length: int = setting(
        256,
        "Longest client item id and x-ms-user-isolation-key header accepted (400 above). "
        "OpenAI's ids are a few dozen characters.",
    )
    max_json_depth: int = setting(
        64,
        "Deepest JSON nesting accepted in a request body, free-form fields such as a tool's "
        "input_schema included (400 above; the JSON encoder stops at 254).",
    )
    max_item_parts: int = setting(
        1000,
        "Most entries of any array directly under an item (a message's content parts, a "
        "reasoning item's summary) (400 above).",
    )
    max_item_bytes: int = setting(
        32 * 1024 * 1024,
        "Largest item as stored (its JSON, in bytes), however it arrives: from a client or "
        "written back from the model server (400 above).",
    )
    unknown_item_fields: str = setting(
        "keep",
        "A key the server does not know inside an item of a known type (a field newer than "
        "its schemas, at any depth): 'keep' stores it and returns it exactly as sent, never "
        "interpreted; 'refuse' answers 400 unknown_parameter, as OpenAI does. Unknown keys at "
        "the top level of a body and unknown item types are refused either way.",
        choices=("keep", "refuse"),
    )
    sqlite_synchronous: str = setting(
        "normal",
        "SQLite durability: 'normal' keeps every acknowledged write across a process crash "
        "(kill -9); 'full' also across power loss, with an fsync per write; 'off' risks "
        "acknowledged writes on a crash of the machine.",
        choices=("off", "normal", "full"),
    )
    log_level: str = setting("info", "Log level.", choices=("debug", "info", "warning", "error"))
    log_format: str = setting(
        "json",
        "Format of every log line (convostore's, the access log, uvicorn's, the model-server "
        "client's), in every worker: one JSON object a line, or readable text.",
        choices=("json", "text"),
    )
    migrate: bool = setting(True, "Apply pending database migrations at start.")
    api_keys: str = setting(
        "",
        "API keys given by environment (for containers), as comma-separated "
        "`project:secret` pairs; they work beside the keys of `convostore keys create`.",
        secret=True,
    )
    api_keys_file: str = setting(
        "",
        "A file holding the api_keys (pairs separated by commas or lines), read at start: "
        "unlike --api-keys, not shown by ps. Instead of api_keys, not beside it.",
    )
    key_cache_seconds: float = setting(
        1.0,
        "How long a server process trusts its cached lookup of a key: the bound on how long "
        "a revoked key keeps working, on every process.",
    )
    rate_limit: float = setting(
        0.0,
        "Requests per second allowed per API key and server process (bursts up to the same "
        "number); 0 turns it off. Over it: 429 with Retry-After.",
    )
    allow_unauthenticated: bool = setting(
        False,
        "Serve without API keys on a non-loopback address. Without it, such a server refuses "
        "to start.",
    )
    pool_size: int = setting(
        10,
        "PostgreSQL: most connections one server process opens (its pool's size). A server "
        "opens at most workers x pool_size; keep the sum over all servers below the "
        "database's max_connections. Ignored for SQLite.",
    )
    pool_min_size: int = setting(
        1,
        "PostgreSQL: connections each server process opens at start and keeps open "
        "(0..pool_size). Ignored for SQLite.",
    )
    retention_days: int = setting(
        0,
        "Delete conversations whose last activity (creation, append, metadata update, item "
        "delete) is older than this many days; 0 keeps them forever. The server purges in "
        "the background; `convostore purge` runs one pass.",
    )
    retention_projects: str = setting(
        "",
        "Per-project retention in days, overriding --retention-days, as comma-separated "
        "`project=days` pairs, e.g. `acme=30,beta=7`; `project=0` keeps that project's "
        "conversations forever.",
    )
    purge_interval: float = setting(
        3600.0,
        "Seconds between two background purges of a server process (when a retention is set).",
    )
    purge_batch_size: int = setting(
        200,
        "Most conversations deleted in one transaction by a purge (a batch also stops at "
        "10,000 items); purges pause between batches so requests never wait long.",
    )
    idempotency_hours: float = setting(
        24.0,
        "How long the answer to a POST sent with an Idempotency-Key is kept: a retry with "
        "the same key and body within this time gets that answer and changes nothing. "
        "Older answers are purged in the background every --purge-interval seconds.",
    )
    access_log: bool = setting(
        True,
        "Write one JSON line per request to stderr (request id, method, route, status, "
        "duration; never bodies, query strings or credentials).",
    )
    metrics: bool = setting(
        True,
        "Serve Prometheus metrics at GET /metrics (with an API key of any project on a keyed "
        "server, see public_probes).",
    )
    public_probes: bool = setting(
        False,
        "Answer GET /readyz and GET /metrics without an API key on a keyed server, for a "
        "scraper or orchestrator that cannot send one: they reveal every project's traffic "
        "and item counts, so keep the port private then. GET /healthz never needs a key.",
    )
    request_timeout_seconds: float = setting(
        30.0,
        "A request's line and headers, and then its body, must each arrive within this many "
        "seconds: a slower body gets 408, slower headers a closed connection, so slow clients "
        "cannot hold the server.",
    )
    shutdown_grace_seconds: float = setting(
        30.0,
        "On SIGTERM or SIGINT the server stops accepting connections and lets requests in "
        "flight finish for up to this many seconds, then cancels the rest and closes the "
        "database.",
    )
    max_connections: int = setting(
        2048,
        "Most open client connections per server process. Past it a new connection takes "
        "the place of the oldest one whose first request has not begun (silent, or its "
        "headers unfinished), or, when there is none, "
        "gets 503 too_many_connections with Retry-After; a connection already admitted is "
        "always served. 0: no limit.",
    )
    max_connections_per_peer: int = setting(
        256,
        "Most open connections from one client IP address per server process; the next one "
        "gets 503 too_many_connections with Retry-After. Behind a reverse proxy every client "
        "has the proxy's address: raise it above the proxy's pool, or 0 for no limit.",
    )
    idle_connection_seconds: float = setting(
        5.0,
        "A new connection must send its first byte within this many seconds or is closed "
        "(sockets that say nothing cost nothing to open); at most request_timeout_seconds.",
    )
    send_timeout_seconds: float = setting(
        30.0,
        "An answer the client stops reading (no byte taken for this many seconds while the "
        "socket's send buffer is full) is abandoned and the connection closed, freeing its "
        "memory.",
    )
    page_max_bytes: int = setting(
        8 * 1024 * 1024,
        "Most bytes of stored items one page of list items or search holds: a page stops "
        "before the item that would cross it (a page always holds at least one item) and "
        "says has_more, so clients that page by has_more get every item.",
    )
    # -- POST /v1/responses in front of a model server (issue 10, docs/responses.md) --
    upstream: str = setting(
        "",
        "Base URL of an OpenAI-compatible model server (vLLM, SGLang, Ollama, llama.cpp, LM "
        "Studio…), e.g. http://127.0.0.1:8001/v1: POST /v1/responses calls its "
        "/chat/completions. Empty: /v1/responses answers 400 upstream_not_configured.",
    )
    upstream_key: str = setting(
        "",
        "API key sent to the model server as `Authorization: Bearer …` (never shown).",
        secret=True,
    )
    upstream_key_file: str = setting(
        "",
        "A file holding the upstream_key, read at start: unlike --upstream-key, not shown by "
        "ps. Instead of upstream_key, not beside it.",
    )
    model_map: str = setting(
        "",
        "Model names to rename before calling the model server, as comma-separated "
        "`name=upstream-name` pairs, e.g. `gpt-4o=qwen2.5-7b`; other names pass unchanged.",
    )
    upstream_api: str = setting(
        "chat",
        "Which API of the model server to call: `chat` (its /chat/completions, every model "
        "server has it) or `responses` (its own /responses, sent the history as input "
        "with store false, its events passed through).",
        choices=("chat", "responses"),
    )
    upstream_image_url_prefixes: str = setting(
        "https:,data:image/",
        "What an input_image's image_url must begin with to be sent to the model server, "
        "as comma-separated prefixes (compared without case); others get 400. Model servers "
        "fetch image URLs, so http:, file: or an intranet address would make them fetch for "
        "a client. Empty: no image URL is sent.",
    )
    context_window: str = setting(
        "",
        "The model's context window in tokens, for truncation auto and compaction, as "
        "comma-separated `model=tokens` pairs (the client's model name) and an optional bare "
        "`tokens` for every other model, e.g. `qwen2.5-7b=32768,8192`. A model not named "
        "here is asked of the model server (vLLM's /v1/models max_model_len, llama.cpp's "
        "/props n_ctx).",
    )
    upstream_timeout_seconds: float = setting(
        600.0,
        "Longest single wait on the model server (connecting, or the next bytes of its "
        "answer); past it the response fails with 504 (or response.failed when streaming) "
        "and nothing is stored.",
    )
    response_lease_seconds: float = setting(
        30.0,
        "A response holds its conversation (one in flight at a time) with a lease renewed "
        "every third of this while it runs; a crashed server's lease frees the conversation "
        "after at most this long.",
    )

    response_stream_events_max: int = setting(
        20000,
        "Most events kept for one streamed background response (background and stream "
        "true), which clients resume from the database; one that streams more fails.",
    )
    response_stream_poll_seconds: float = setting(
        0.2,
        "How often a client following a streamed background response run by another "
        "server process reads the database for new events (one indexed read).",
    )

    def __post_init__(self) -> None:
        self._read_secret_files()
        if self.request_timeout_seconds <= 0 or self.shutdown_grace_seconds < 0:
            raise SettingsError(
                "request_timeout_seconds must be above 0 and shutdown_grace_seconds not negative"
            )
        if self.max_connections < 0 or self.max_connections_per_peer < 0:
            raise SettingsError("max_connections and max_connections_per_peer cannot be negative")
        if self.idle_connection_seconds <= 0 or self.send_timeout_seconds <= 0:
            raise SettingsError("idle_connection_seconds and send_timeout_seconds must be above 0")
        if self.page_max_bytes < 1024:
            raise SettingsError(f"page_max_bytes must be at least 1024, got {self.page_max_bytes}")
        self._check_upstream()
        if self.retention_days < 0:
            raise SettingsError(f"retention_days cannot be negative, got {self.retention_days}")
        _ = self.retention_by_project
        if not 0 < self.idempotency_hours <= 24 * 365:
            raise SettingsError(
                f"idempotency_hours must be above 0 and at most a year, got {self.idempotency_hours}"
            )
        if self.purge_interval <= 0 or self.purge_batch_size < 1:
            raise SettingsError("purge_interval must be above 0 and purge_batch_size at least 1")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port must be 0..65535, got {self.port}")
        if self.workers < 1:
            raise SettingsError(f"workers must be at least 1, got {self.workers}")
        try:
            database = dburl.parse(self.db)
        except dburl.DatabaseUrlError as exc:
            raise SettingsError(str(exc)) from None
        if database.target == dburl.MEMORY and self.workers > 1:
            raise SettingsError(
                "an in-memory database cannot be shared by several workers: give --db a file"
            )
        if min(self.max_id_length, self.max_item_parts) < 1:
            raise SettingsError("max_id_length and max_item_parts must be at least 1")
        if not 8 <= self.max_json_depth <= 200:
            raise SettingsError(f"max_json_depth must be 8..200, got {self.max_json_depth}")
        if self.max_item_bytes < 1024:
            raise SettingsError(f"max_item_bytes must be at least 1024, got {self.max_item_bytes}")
        if self.max_body_bytes < 1024:
            raise SettingsError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}")
        if self.key_cache_seconds < 0 or self.rate_limit < 0:
            raise SettingsError("key_cache_seconds and rate_limit cannot be negative")
        _ = self.api_key_pairs
        if self.pool_size < 1:
            raise SettingsError(f"pool_size must be at least 1, got {self.pool_size}")
        if not 0 <= self.pool_min_size <= self.pool_size:
            raise SettingsError(
                f"pool_min_size must be 0..pool_size ({self.pool_size}), got {self.pool_min_size}"
            )
        for each in SETTINGS:
            value = getattr(self, each.name)
            if each.choices and value not in each.choices:
                raise SettingsError(
                    f"{each.name} must be one of {', '.join(each.choices)}, got {value!r}"
                )

    def __repr__(self) -> str:
        shown = []
        for each in SETTINGS:
            value = getattr(self, each.name)
            if each.secret:
                value = "***" if value else ""
            elif each.name in ("db", "upstream"):
                value = redact_url(value)
            shown.append(f"{each.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def _read_secret_files(self) -> None:
        """api_keys and upstream_key from their files (issue 15, L9): a secret given on
        the command line is visible to every user of the machine in ps."""
        for name in ("api_keys", "upstream_key"):
            path = getattr(self, name + "_file")
            if not path:
                continue
            if getattr(self, name):
                raise SettingsError(f"give {name} or {name}_file, not both")
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise SettingsError(f"{name}_file: cannot read {path}: {exc}") from None
            value = ",".join(text.split()) if name == "api_keys" else text.strip()
            object.__setattr__(self, name, value)

    def _check_upstream(self) -> None:
        if self.upstream and urlsplit(self.upstream).scheme not in ("http", "https"):
            raise SettingsError(
                f"upstream must be an http:// or https:// URL, got {redact_url(self.upstream)!r}"
            )
        if self.upstream and "@" in urlsplit(self.upstream).netloc:
            # httpx would send it as Basic auth in place of --upstream-key, silently.
            raise SettingsError(
                "upstream must not carry credentials (user:password@): give the model "
                "server's key with --upstream-key-file or CONVOSTORE_UPSTREAM_KEY"
            )
        if self.response_stream_events_max < 16 or self.response_stream_poll_seconds <= 0:
            raise SettingsError(
                "response_stream_events_max must be at least 16 and "
                "response_stream_poll_seconds above 0"
            )
        if self.upstream_timeout_seconds <= 0 or self.response_lease_seconds < 1:
            raise SettingsError(
                "upstream_timeout_seconds must be above 0 and response_lease_seconds at least 1"
            )
        _ = self.model_names
        _ = self.context_windows

    @property
    def retention_by_project(self) -> dict[str, int]:
        """``retention_projects`` ``acme=30,beta=7`` as ``{"acme": 30, "beta": 7}`` (days;
        0 keeps forever)."""
        rules: dict[str, int] = {}
        for pair in _entries(self.retention_projects):
            project, sep, days = pair.rpartition("=")
            if not sep or not project.strip() or not days.strip().isdigit():
                raise SettingsError(
                    f"retention_projects: expected project=days pairs such as acme=30, got {pair!r}"
                )
            rules[project.strip()] = int(days)
        return rules

    @property
    def image_url_prefixes(self) -> tuple[str, ...]:
        """``upstream_image_url_prefixes`` as a tuple, empty entries dropped."""
        return tuple(p.strip() for p in self.upstream_image_url_prefixes.split(",") if p.strip())

    @property
    def model_names(self) -> dict[str, str]:
        """``model_map`` ``gpt-4o=qwen2.5-7b,…`` as a dict (client name → upstream name)."""
        mapping: dict[str, str] = {}
        for pair in _entries(self.model_map):
            name, sep, target = pair.partition("=")
            if not sep or not name.strip() or not target.strip():
                raise SettingsError(
                    f"model_map: expected name=upstream-name pairs such as gpt-4o=qwen2.5-7b, "
                    f"got {pair!r}"
                )
            mapping[name.strip()] = target.strip()
        return mapping

    @property
    def context_windows(self) -> dict[str, int]:
        """``context_window`` ``model=tokens,…,tokens`` as a dict; ``""`` is the default."""
        windows: dict[str, int] = {}
        for entry in _entries(self.context_window):
            name, sep, tokens = entry.rpartition("=")
            tokens = tokens.strip()
            if (sep and not name.strip()) or not tokens.isdigit() or int(tokens) < 1:
                raise SettingsError(
                    "context_window: expected model=tokens pairs and an optional bare tokens "
                    f"default, such as qwen2.5-7b=32768,8192, got {entry!r}"
                )
            windows[name.strip()] = int(tokens)
        return windows

    @property
    def api_key_pairs(self) -> list[tuple[str, str]]:
        """``api_keys`` ``project:secret,…`` as (project, secret) pairs; a bare ``secret``
        belongs to the default project."""
        keys: list[tuple[str, str]] = []
        for entry in _entries(self.api_keys):
            project, _, secret = entry.rpartition(":")
            if len(secret) < MIN_SECRET_LENGTH:
                raise SettingsError(
                    f"API keys given by environment must be at least {MIN_SECRET_LENGTH} random "
                    "characters (`convostore keys create` prints good ones)"
                )
            keys.append((project or DEFAULT_PROJECT, secret))
        return keys

    @property
    def backend(self) -> str:
        return self.database.backend

    @property
    def database(self) -> dburl.Database:
        """The SQLite file or PostgreSQL URL that ``db`` names (convostore.dburl)."""
        return dburl.parse(self.db)

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
        for each in SETTINGS:
            if cli.get(each.name) is not None:
                values[each.name] = each.convert(cli[each.name])
            elif each.env in env:
                values[each.name] = each.convert(env[each.env])
        unknown = set(cli) - {each.name for each in SETTINGS}
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that makes :meth:`resolve` rebuild these settings (for workers),
        less the secrets: a process's environment is readable by its user in /proc and by
        every program it starts, so workers read the secrets from files (the ``*_file``
        settings; ``convostore serve`` writes a private one for secrets given otherwise)."""
        return {
            each.env: each.text(getattr(self, each.name)) for each in SETTINGS if not each.secret
        }


def _entries(text: str) -> Iterator[str]:
    """The non-empty entries of a comma-separated setting."""
    return filter(None, (part.strip() for part in text.split(",")))


@dataclass(frozen=True, slots=True)
class Setting:
    """One field of :class:`Settings` as the CLI, the environment and the docs see it."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    secret: bool = False

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def text(self, value: Any) -> str:
        """``value`` as written in the environment and the docs."""
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    def convert(self, raw: Any) -> Any:
        """A flag's or an environment variable's value as this setting's type."""
        if self.type is bool and isinstance(raw, str):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise SettingsError(f"{self.env}: expected true or false, got {raw!r}")
        try:
            return self.type(raw)
        except (TypeError, ValueError):
            raise SettingsError(
                f"{self.flag} / {self.env}: expected {self.type.__name__}, got {raw!r}"
            ) from None


def _derive() -> tuple[Setting, ...]:
    types = get_type_hints(Settings)
    return tuple(Setting(f.name, types[f.name], f.default, **f.metadata) for f in fields(Settings))


SETTINGS: tuple[Setting, ...] = _derive()
"""Every setting, in declaration order (derived from the fields of :class:`Settings`)."""


def markdown_table() -> str:
    """The settings reference of docs/settings.md (a test keeps the file in step)."""
    rows = ["| flag | environment | default | meaning |", "| --- | --- | --- | --- |"]
    for each in SETTINGS:
        meaning = each.help
        if each.choices:
            meaning += " One of: " + ", ".join(f"`{c}`" for c in each.choices) + "."
        rows.append(f"| `{each.flag}` | `{each.env}` | `{each.text(each.default)}` | {meaning} |")
    return "\n".join(rows) + "\n"
