"""The search index's rows of an append, written by the append's own statement
(migration 0110, issue 21).

The server reads each item's searchable text from its body
(:func:`~convostore.store.search_text.item_text`, the same text as PostgreSQL's
``convostore_item_text``) and sends the texts and the owner's tag as two parameters; a
CTE of the append inserts the ``item_search`` rows, tagged by ``convostore_tagged_tsv``
as before, so PostgreSQL runs no jsonpath and no md5 per item. An item sent without text
(none found, or a body the server could not read) is left to the ``items_search_insert``
trigger, which indexes at the end of the statement every item the statement did not.
"""

from __future__ import annotations

from collections.abc import Sequence

from convostore.store.base import Owner, StoredItem
from convostore.store.search_text import item_text, owner_tag


def cte(seq: str, tag: str, texts: str) -> str:
    """``s AS (…)``: inserts the rows of the texts ``texts`` (a text[] parameter, in the
    items' order, NULL for none) tagged with ``tag``; the k-th text (from 1) is the item
    at position ``seq`` + k - 1 of the conversation ``c.pk``."""
    return (
        "s AS (INSERT INTO item_search (conv, seq, tsv)"
        f" SELECT c.pk, {seq} + x.n - 1, convostore_tagged_tsv({tag}, x.text) FROM c,"
        f" unnest({texts}::text[]) WITH ORDINALITY AS x(text, n)"
        " WHERE x.text IS NOT NULL ORDER BY x.n)"
    )


def _text(body: bytes) -> str | None:
    try:
        return item_text(body)
    except ValueError:  # not JSON to orjson: the trigger reads it (and PostgreSQL judges it)
        return None


def args(owner: Owner, items: Sequence[StoredItem]) -> tuple[str, list[str | None]]:
    """The parameters of :func:`cte`: the owner's tag and the items' texts."""
    return owner_tag(owner.project, owner.user), [_text(item.body) for item in items]
