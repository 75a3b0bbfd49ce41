"""List a caller's conversations and search the text of its items (extensions, issue 7).

OpenAI's Conversations API has neither; these follow its list conventions (``after``,
``limit``, ``order``, ``has_more``) and never change an official route.
"""

from __future__ import annotations

import re

from convostore import errors
from convostore.service import bodies
from convostore.store.base import (
    ConversationFilter,
    ConversationPage,
    ItemSearch,
    Owner,
    PageQuery,
    SearchPage,
    SearchQuery,
    Store,
)

QUERY_MAX_LENGTH = 1000
QUERY_MAX_PHRASES = 16
PREFIX_MIN_LENGTH = 3  # letters or digits before a `*` (issue 15)
# A quoted phrase ("…", the closing quote may be missing) or a run of non-blanks.
_CHUNK = re.compile(r'"([^"]*)"?|([^\s"]+)')
# Letters and digits (FTS5 unicode61 and PostgreSQL's parser both split on the rest); a
# trailing * asks for a prefix.
_TERM = re.compile(r"[^\W_]+\*?")

CURSOR_SEPARATOR = "/"


def search_query(text: str) -> SearchQuery:
    """``q`` as phrases of terms: words are ANDed, ``"two words"`` is a phrase, and a
    chunk such as ``gpt-4o`` is the phrase of its parts, as it was indexed."""
    if len(text) > QUERY_MAX_LENGTH:
        raise errors.string_length("q", len(text), minimum=None, maximum=QUERY_MAX_LENGTH)
    phrases: list[tuple[str, ...]] = []
    for quoted, bare in _CHUNK.findall(text):
        terms = [t.lower() for t in _TERM.findall(quoted or bare)]
        if terms:  # only the last term of a phrase can be a prefix
            phrases.append((*(t.rstrip("*") for t in terms[:-1]), terms[-1]))
    if not phrases:
        raise errors.InvalidRequest(
            "Invalid 'q': expected at least one word (letters or digits) to search for.",
            param="q",
            code="invalid_value",
        )
    for phrase in phrases:
        if phrase[-1].endswith("*") and len(phrase[-1]) - 1 < PREFIX_MIN_LENGTH:
            raise errors.InvalidRequest(
                f"Invalid 'q': a prefix search ('word*') needs at least {PREFIX_MIN_LENGTH}"
                f" letters or digits before the '*', got '{phrase[-1][:40]}'.",
                param="q",
                code="invalid_value",
            )
    if len(phrases) > QUERY_MAX_PHRASES:
        raise errors.InvalidRequest(
            f"Invalid 'q': at most {QUERY_MAX_PHRASES} words or phrases, got {len(phrases)}.",
            param="q",
            code="invalid_value",
        )
    return SearchQuery(tuple(dict.fromkeys(phrases)))


def conversation_filter(
    metadata: list[tuple[str, str]], created_after: int | None, created_before: int | None
) -> ConversationFilter:
    if len(metadata) > bodies.METADATA_MAX_PAIRS:
        raise errors.too_many_properties("metadata", len(metadata), bodies.METADATA_MAX_PAIRS)
    for key, value in metadata:
        if len(key) > bodies.METADATA_KEY_MAX:
            raise errors.property_name_too_long("metadata", key, bodies.METADATA_KEY_MAX)
        if len(value) > bodies.METADATA_VALUE_MAX:
            raise errors.string_length(
                f"metadata.{key}", len(value), minimum=None, maximum=bodies.METADATA_VALUE_MAX
            )
    # The filter table keeps U+0000 as U+FFFD (migration 0003): so does the filter.
    pairs = tuple((k.replace("\x00", "\ufffd"), v.replace("\x00", "\ufffd")) for k, v in metadata)
    return ConversationFilter(pairs, created_after, created_before)


class Listing:
    def __init__(self, store: Store, page_max_bytes: int | None = None):
        self.store = store
        self.page_max_bytes = page_max_bytes  # of a search page (conversations are small)

    async def conversations(
        self,
        owner: Owner,
        metadata: list[tuple[str, str]],
        created_after: int | None,
        created_before: int | None,
        page: PageQuery,
    ) -> ConversationPage:
        where = conversation_filter(metadata, created_after, created_before)
        if page.after is not None and "\x00" in page.after:  # no id holds U+0000 (nor PostgreSQL)
            raise errors.conversation_after_not_found(page.after)
        if page.before is not None and "\x00" in page.before:
            raise errors.conversation_before_not_found(page.before)
        return await self.store.list_conversations(owner, where, page)

    async def search(self, owner: Owner, q: str, *, after: str | None, limit: int) -> SearchPage:
        query = search_query(q)
        anchor = None
        if after is not None:
            conversation_id, sep, item_id = after.partition(CURSOR_SEPARATOR)
            if not sep or not item_id or "\x00" in after:
                raise errors.search_after_not_found(after)
            anchor = (conversation_id, item_id)
        return await self.store.search_items(
            owner, ItemSearch(query, limit, anchor, self.page_max_bytes)
        )
