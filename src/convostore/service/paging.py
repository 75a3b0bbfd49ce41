"""Which page of a list a request asks for: the same three fields on every list route."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Page:
    """``after``: the id the page starts after (None: the first page); ``limit``: most
    entries; ``descending``: newest first (``order=desc``, the default)."""

    after: str | None
    limit: int
    descending: bool
