"""The search index's rows of an append, written by the append's own statement
(migration 0110, issue 21).

The server reads each item's searchable text from its body
(:func:`~convostore.store.search_text.item_text`, the same text as PostgreSQL's
``convostore_item_text``) and sends the texts and the owner's tag with the statement; a
CTE of the statement inserts the ``item_search`` rows, tagged by
``convostore_tagged_tsv`` as before. PostgreSQL runs no jsonpath and no md5 per item.
The statement also sets ``convostore.items_indexed``, so the ``items_search_insert``
trigger, which runs at the end of every statement that inserts items, only clears it;
when a body is not JSON to the server, nothing is sent and the trigger indexes the
statement's items as before (PostgreSQL judges that body).
"""

from __future__ import annotations

from collections.abc import Sequence

from convostore.store.base import Owner, StoredItem
from convostore.store.search_text import item_text, owner_tag


def cte(seq: str, tag: str, texts: str, flag: str) -> str:
    """``f AS (…), s AS (…)``: ``f`` sets ``convostore.items_indexed`` to the parameter
    ``flag`` ('on': the statement indexes its items, the trigger only clears it; '': the
    trigger indexes them); ``s`` inserts the rows of ``texts`` (text[], in the items'
    order, NULL for none) tagged with ``tag``; the k-th (from 1) is the item at position
    ``seq`` + k - 1 of the conversation ``c.pk``."""
    return (
        f"f AS (SELECT set_config('convostore.items_indexed', {flag}::text, true)),"
        " s AS (INSERT INTO item_search (conv, seq, tsv)"
        f" SELECT c.pk, {seq} + x.n - 1, convostore_tagged_tsv({tag}, x.text) FROM c, f,"
        f" unnest({texts}::text[]) WITH ORDINALITY AS x(text, n)"
        " WHERE x.text IS NOT NULL ORDER BY x.n)"
    )


def args(owner: Owner, items: Sequence[StoredItem]) -> tuple[str, list[str | None], str]:
    """The parameters of :func:`cte`: the owner's tag, the items' texts, the flag."""
    tag = owner_tag(owner.project, owner.user)
    try:
        return tag, [item_text(item.body) for item in items], "on"
    except ValueError:  # a body orjson cannot read: the trigger reads them all
        return tag, [None] * len(items), ""
