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
an append with a body the server could not read, which then sends no text at all) is
left to the ``items_search_insert`` trigger, which runs at the end of the statement and
indexes its items unless the statement set ``convostore.items_indexed``.
"""

from __future__ import annotations

from collections.abc import Sequence

from convostore.store.base import Owner, StoredItem
from convostore.store.search_text import item_text, owner_tag, tagged_tsvector


def cte(seq: str, tag: str, texts: str, vectors: str, flag: str) -> str:
    """``f AS (…), s AS (…)``: ``f`` sets ``convostore.items_indexed`` to the parameter
    ``flag`` ('on': the statement indexes its items, the trigger only clears it; '': the
    trigger indexes them); ``s`` inserts the rows of ``vectors`` (text[], tagged
    tsvectors in their text form) and, where one is NULL, of ``texts`` (text[], tagged
    with ``tag`` here), in the items' order; the k-th (from 1) is the item at position
    ``seq`` + k - 1 of the conversation ``c.pk``. Items with neither get no row."""
    return (
        f"f AS (SELECT set_config('convostore.items_indexed', {flag}::text, true)),"
        " s AS (INSERT INTO item_search (conv, seq, tsv)"
        f" SELECT c.pk, {seq} + x.n - 1,"
        f" coalesce(x.vector::tsvector, convostore_tagged_tsv({tag}, x.text)) FROM c, f,"
        f" unnest({texts}::text[], {vectors}::text[]) WITH ORDINALITY AS x(text, vector, n)"
        " WHERE x.text IS NOT NULL OR x.vector IS NOT NULL ORDER BY x.n)"
    )


def args(
    owner: Owner, items: Sequence[StoredItem]
) -> tuple[str, list[str | None], list[str | None], str]:
    """The parameters of :func:`cte`: the owner's tag, the items' texts, their vectors,
    the flag. When a body is not JSON to the server, nothing is sent and the trigger
    reads every item of the statement (PostgreSQL judges that body)."""
    tag = owner_tag(owner.project, owner.user)
    texts: list[str | None] = []
    vectors: list[str | None] = []
    for item in items:
        try:
            text = item_text(item.body)
        except ValueError:
            return tag, [None] * len(items), [None] * len(items), ""
        vector = None if text is None else tagged_tsvector(tag, text)
        texts.append(None if vector is not None else text)
        vectors.append(vector)
    return tag, texts, vectors, "on"
