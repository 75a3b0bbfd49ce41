"""What the search index holds for an item, and how a query asks for it (issue 15).

Both backends index an item as its *words*: runs of letters and digits of its text
(docs/search.md), folded to lower case, each prefixed with its owner's *tag*. The tag is
a hash of the project and the isolation key, so an owner's terms sort together in the
index (FTS5's term b-tree, PostgreSQL's GIN entry tree), and a query, whose terms carry
the caller's tag, reads only the caller's part of the index: a search's cost, and its
timing, depend on the caller's items alone. Two owners whose tags collide (40 bits)
share that part; the join on the owner still returns each only its own items.

The same words are made from a query (:func:`fts5_query`, :func:`tsquery`), with the
same regular expression and folding, so a query term and an indexed word compare
exactly.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from convostore.store.base import SearchQuery

#: The characters of an item's text that are indexed (PostgreSQL's tsvector holds 1 MB).
TEXT_LIMIT = 100_000

# The part types whose `text` is searchable, and `refusal`'s.
TEXT_PART_TYPES = ("input_text", "output_text", "text", "summary_text", "reasoning_text")

# Letters and digits; the same expression splits queries (service/listing.py).
WORD = re.compile(r"[^\W_]+")

TAG_LENGTH = 10  # hex digits: 40 bits


def owner_tag(project: str, user: str) -> str:
    """``t`` and the first hex digits of md5(project, U+001F, isolation key): PostgreSQL
    computes the same in SQL (migration 0015)."""
    digest = hashlib.md5(f"{project}\x1f{user}".encode(), usedforsecurity=False).hexdigest()
    return "t" + digest[:TAG_LENGTH]


_TOP_FIELD = {"function_call": "arguments", "function_call_output": "output"}


def _jsonb_order(kid: tuple[str, Any]) -> tuple[int, bytes]:
    raw = kid[0].encode()
    return len(raw), raw  # jsonb keeps an object's keys shortest first, then bytewise


def item_text(body: bytes) -> str | None:
    """An item's searchable text exactly as PostgreSQL's ``convostore_item_text(body)``
    computes it (migration 0003), or None when it has none: the string ``text`` of every
    object typed input_text, output_text, text, summary_text or reasoning_text, then the
    string ``refusal`` of every object typed refusal, each in the order of jsonpath's
    ``$.**`` over the jsonb value (depth first, the node before its children, an object's
    keys in jsonb's order), then a function_call's string ``arguments``, a
    function_call_output's string ``output``; joined by spaces, at most
    :data:`TEXT_LIMIT` characters. The server sends it with an append, so PostgreSQL
    runs no jsonpath per item (migration 0110). Raises ValueError on a body that is not
    JSON (PostgreSQL would refuse it too)."""
    root = orjson.loads(body.replace(b"\\u0000", b"\\u0020"))
    texts: list[str] = []
    refusals: list[str] = []
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            kind = node.get("type")
            if kind in TEXT_PART_TYPES:
                found = node.get("text")
                if isinstance(found, str):
                    texts.append(found)
            elif kind == "refusal":
                found = node.get("refusal")
                if isinstance(found, str):
                    refusals.append(found)
            kids = [(key, value) for key, value in node.items() if isinstance(value, dict | list)]
            if len(kids) > 1:
                kids.sort(key=_jsonb_order, reverse=True)
            else:
                kids.reverse()
            stack.extend(value for _, value in kids)
        elif isinstance(node, list):
            stack.extend(reversed(node))
    texts += refusals
    if isinstance(root, dict):
        kind = root.get("type")
        field = _TOP_FIELD.get(kind) if isinstance(kind, str) else None
        if field is not None and isinstance(root.get(field), str):
            texts.append(root[field])
    return " ".join(texts)[:TEXT_LIMIT] if texts else None


def words(text: str) -> list[str]:
    return [word.lower() for word in WORD.findall(text)]


def indexed_words(tag: str, texts: list[str]) -> str:
    """The index's text for an item: its words, tagged, separated by spaces; from the
    first :data:`TEXT_LIMIT` characters of its texts joined by spaces."""
    text = " ".join(texts)[:TEXT_LIMIT].replace("\x00", " ")
    return " ".join(tag + word for word in words(text))


def _phrases(tag: str, query: SearchQuery) -> list[tuple[list[str], bool]]:
    found = []
    for phrase in query.phrases:
        terms = [tag + word for term in phrase for word in words(term.rstrip("*"))]
        if terms:
            found.append((terms, phrase[-1].endswith("*")))
    return found


def fts5_query(tag: str, query: SearchQuery) -> str:
    """SQLite FTS5: every phrase quoted, ANDed; a last term ending in ``*`` is a prefix.
    Words hold no quote, so quoting them is enough."""
    return " AND ".join(
        '"' + " ".join(terms) + '"' + (" *" if prefix else "")
        for terms, prefix in _phrases(tag, query)
    )


def tsquery(tag: str, query: SearchQuery) -> str:
    """PostgreSQL ``to_tsquery('simple', …)``: terms of a phrase joined by ``<->``,
    phrases by ``&``; a prefix term ends in ``:*``."""
    parts = []
    for terms, prefix in _phrases(tag, query):
        quoted = [f"'{term}'" for term in terms]
        if prefix:
            quoted[-1] += ":*"
        parts.append("(" + " <-> ".join(quoted) + ")")
    return " & ".join(parts)
