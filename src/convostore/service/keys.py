"""API keys: issue, list, revoke, and authenticate requests (CONTRACT.md D13).

Secrets are ``sk-cs-`` + 43 URL-safe characters from ``secrets.token_urlsafe(32)``:
256 random bits. Only ``HMAC-SHA256(domain key, secret)`` is stored. A slow password
hash (bcrypt, scrypt, argon2) exists to make guessing *low-entropy* passwords from a
stolen hash expensive; a 256-bit random secret cannot be guessed at any speed, so a
fast keyed hash loses nothing and keeps authentication to a microsecond instead of tens
of milliseconds per cache miss. The HMAC key separates these hashes from any other use
of SHA-256.

Authentication stays off the database on the hot path: a lookup (hit or miss) is cached
per process for ``key_cache_seconds`` (default 1 s). That is also the bound on how long a
revocation takes to reach every server process, on SQLite and on PostgreSQL; a key
revoked is refused by every process at most that long after the revocation commits.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from convostore import errors
from convostore.clock import SYSTEM, Clock
from convostore.settings import DEFAULT_PROJECT
from convostore.store.base import KeyRow, Store, StoreUnavailable

__all__ = ["DEFAULT_PROJECT", "Authenticator", "Keys", "Principal", "hash_secret"]

log = logging.getLogger("convostore")

SECRET_PREFIX = "sk-cs-"
_HASH_KEY = b"convostore/api-key/v1"


def hash_secret(secret: str) -> bytes:
    return hmac.new(_HASH_KEY, secret.encode(), hashlib.sha256).digest()


def display_prefix(secret: str) -> str:
    """What may be shown of a secret: enough to recognise it, useless to an attacker."""
    return f"{secret[:10]}…{secret[-4:]}"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is: the key's id and project."""

    key_id: str
    project: str


class Keys:
    """The operator's view: create, list, revoke (used by ``convostore keys``)."""

    def __init__(self, store: Store):
        self.store = store

    async def create(self, project: str, name: str) -> tuple[KeyRow, str]:
        if not project:
            raise ValueError("a key needs a project")
        secret = new_secret()
        row = KeyRow(
            id="key_" + secrets.token_hex(12),
            hash=hash_secret(secret),
            prefix=display_prefix(secret),
            project=project,
            name=name,
            created_at=int(time.time()),
        )
        await self.store.create_key(row)
        return row, secret

    async def list(self, project: str | None = None) -> list[KeyRow]:
        return await self.store.list_keys(project)

    async def revoke(self, key_id: str) -> bool:
        return await self.store.revoke_key(key_id, int(time.time()))


class _Bucket:
    """A token bucket: ``rate`` requests a second, bursts of up to ``rate``."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, rate: float, now: float):
        self.tokens = rate
        self.stamp = now


class Authenticator:
    """Turns the key a request carries into a :class:`Principal`, with a short cache."""

    def __init__(
        self,
        store: Store,
        *,
        env_keys: Iterable[tuple[str, str]] = (),
        cache_seconds: float = 1.0,
        rate_limit: float = 0.0,
        clock: Clock = SYSTEM,
    ):
        self.store = store
        self.cache_seconds = cache_seconds
        self.rate_limit = rate_limit
        self._env = {
            hash_secret(secret): Principal(f"env_{n}", project)
            for n, (project, secret) in enumerate(env_keys)
        }
        self._cache: dict[bytes, tuple[float, Principal | None]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._open_checked = -math.inf
        self._open = not self._env
        self.clock = clock  # what the cache and the rate limit are timed by

    async def is_open(self) -> bool:
        """True while no key was ever created: then requests need none (loopback only).

        Revoked keys count, so revoking the last key locks everyone out rather than
        opening the server. Fail closed: once this process has seen a key it stays keyed
        for good, so emptying the keys table (by hand, a restore, a bad migration) locks
        everyone out instead of silently opening the server (issue 15, L7)."""
        if not self._open:
            return False
        now = self.clock.monotonic()
        if now - self._open_checked >= self.cache_seconds:
            self._open = not await self.store.has_keys()
            self._open_checked = now
            if not self._open:
                log.info("API keys exist now: this server process requires one from now on")
        return self._open

    async def authenticate(self, secret: str | None) -> Principal | None:
        """The principal of a request; ``None`` when the server runs open."""
        if await self.is_open():
            return None
        if not secret:
            raise errors.Unauthorized(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or in an api-key header.",
                code="invalid_api_key",
            )
        principal = await self._lookup(hash_secret(secret))
        if principal is None:
            raise errors.Unauthorized(
                f"Incorrect API key provided: {_masked(secret)}.", code="invalid_api_key"
            )
        if self.rate_limit > 0:
            self._spend(principal.key_id)
        return principal

    async def _lookup(self, key_hash: bytes) -> Principal | None:
        found = self._env.get(key_hash)
        if found is not None:
            return found
        now = self.clock.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        row = await self.store.find_key(key_hash)
        principal = None
        if row is not None and row.revoked_at is None:
            principal = Principal(row.id, row.project)
            # Best effort: a read-only or full database must not lock everyone out.
            with contextlib.suppress(StoreUnavailable):
                await self.store.touch_key(row.id, int(self.clock.time()))
        if len(self._cache) > 10_000:  # garbage keys must not grow the cache without bound
            self._cache.clear()
        self._cache[key_hash] = (now, principal)
        return principal

    def _spend(self, key_id: str) -> None:
        now = self.clock.monotonic()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(self.rate_limit, now)
        bucket.tokens = min(self.rate_limit, bucket.tokens + (now - bucket.stamp) * self.rate_limit)
        bucket.stamp = now
        if bucket.tokens < 1:
            wait = max(1, math.ceil((1 - bucket.tokens) / self.rate_limit))
            raise errors.RateLimited(
                f"Rate limit reached for this API key ({self.rate_limit:g} requests per second). "
                f"Please try again in {wait}s.",
                retry_after=wait,
            )
        bucket.tokens -= 1


def _masked(secret: str) -> str:
    if len(secret) <= 8:
        return "*" * len(secret)
    return f"{secret[:6]}{'*' * 8}{secret[-4:]}"
