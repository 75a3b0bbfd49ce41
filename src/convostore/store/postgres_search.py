"""The search index's rows of an append, written by the append's own statement
(migration 0110, issue 21).

The server reads each item's searchable text from its body
(:func:`~convostore.store.search_text.item_text`, the same text as PostgreSQL's
``convostore_item_text``). A plain text (most chat messages) it also cuts into the
tagged tsvector itself (:func:`~convostore.store.search_text.tagged_tsvector`, the same
lexemes and positions as ``convostore_tagged_tsv``), which PostgreSQL only parses; any
other text is sent as text, and PostgreSQL tags ``to_tsvector('simple', …)`` of it as
before. Either way a CTE of the append inserts the ``item_search`` rows: no jsonpath,
md5 or tsvector text round trip per item. An item sent with neither (no text found, or
a body the server could not read) is left to the ``items_search_insert`` trigger,
which indexes at the end of the statement every item the statement did not.
"""

from __future__ import annotations

from collections.abc import Sequence

from convostore.store.base import Owner, StoredItem
from convostore.store.search_text import item_text, owner_tag, tagged_tsvector


def cte(seq: str, tag: str, texts: str, vectors: str) -> str:
    """``s AS (…)``: inserts the rows of the parameters ``vectors`` (text[], tagged
    tsvectors in their text form) and, where one is NULL, ``texts`` (text[], tagged with
    ``tag`` here), in the items' order; the k-th (from 1) is the item at position
    ``seq`` + k - 1 of the conversation ``c.pk``. Items with neither get no row."""
    return (
        "s AS (INSERT INTO item_search (conv, seq, tsv)"
        f" SELECT c.pk, {seq} + x.n - 1,"
        f" coalesce(x.vector::tsvector, convostore_tagged_tsv({tag}, x.text)) FROM c,"
        f" unnest({texts}::text[], {vectors}::text[]) WITH ORDINALITY AS x(text, vector, n)"
        " WHERE x.text IS NOT NULL OR x.vector IS NOT NULL ORDER BY x.n)"
    )


def args(
    owner: Owner, items: Sequence[StoredItem]
) -> tuple[str, list[str | None], list[str | None]]:
    """The parameters of :func:`cte`: the owner's tag, the items' texts, their vectors."""
    tag = owner_tag(owner.project, owner.user)
    texts: list[str | None] = []
    vectors: list[str | None] = []
    for item in items:
        try:
            text = item_text(item.body)
        except ValueError:  # not JSON to orjson: the trigger reads it (PostgreSQL judges it)
            text = None
        vector = None if text is None else tagged_tsvector(tag, text)
        texts.append(None if vector is not None else text)
        vectors.append(vector)
    return tag, texts, vectors
