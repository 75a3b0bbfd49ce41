"""SQL of the extensions that both backends share (issue 7), written with ``?`` marks.

:func:`convostore.store.sql.numbered` turns the marks into PostgreSQL's ``$1, $2…``; none
of the statements below has a ``?`` anywhere else.

A list is one range scan in ``(created_at, pk)`` order: of
``conversations_owner_created`` without a metadata filter, else of
``conversation_metadata_lookup`` for the first pair, the other pairs being point probes
of ``conversation_metadata``'s primary key. ``after`` is turned into its
``(created_at, pk)`` first, so pages are keyset reads: O(log n + limit) on a million
conversations, however deep the page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from convostore.store.base import (
    ConversationAfterMissing,
    ConversationBeforeMissing,
    ConversationFilter,
    ConversationPage,
    ConversationRow,
    ConversationScan,
    ItemSearch,
    ListedConversation,
    Owner,
    PageQuery,
    ScannedConversation,
    ScannedItem,
    SearchHit,
    SearchPage,
    StoredItem,
    StoreError,
    fill_page,
)

# The columns of a listed conversation (store.base.ListedConversation), in field order.
_LISTED = "c.id, c.created_at, c.metadata, c.updated_at, c.item_count, c.safety_identifier"


def anchor_sql() -> str:
    return "SELECT created_at, pk FROM conversations WHERE id = ? AND project = ? AND user_key = ?"


def list_sql(
    owner: Owner,
    where: ConversationFilter,
    anchor: tuple[int, int] | None,
    limit: int,
    descending: bool,
    before: tuple[int, int] | None = None,
) -> tuple[str, list[Any]]:
    """The statement of one page and its arguments. ``anchor`` (``after``) and ``before``
    bound the range; with ``before`` the scan runs backwards from it (D24: the page just
    before it), so its rows come nearest-first and :func:`conversation_page` puts them back in
    the requested order. It answers ``id, created_at, metadata,
    updated_at, item_count, safety_identifier`` (a :class:`ListedConversation`)."""
    args: list[Any] = [owner.project, owner.user]
    if where.metadata:
        (key, value), rest = where.metadata[0], where.metadata[1:]
        sql = (
            f"SELECT {_LISTED} FROM conversation_metadata m"
            " JOIN conversations c ON c.pk = m.conv"
            " WHERE m.project = ? AND m.user_key = ? AND m.key = ? AND m.value = ?"
        )
        args += [key, value]
        created, pk = "m.created_at", "m.conv"
    else:
        rest = ()
        sql = f"SELECT {_LISTED} FROM conversations c WHERE c.project = ? AND c.user_key = ?"
        created, pk = "c.created_at", "c.pk"
    if where.created_after is not None:
        sql += f" AND {created} >= ?"
        args.append(where.created_after)
    if where.created_before is not None:
        sql += f" AND {created} < ?"
        args.append(where.created_before)
    compare, against = ("<", ">") if descending else (">", "<")
    if anchor is not None:
        sql += f" AND ({created}, {pk}) {compare} (?, ?)"
        args += list(anchor)
    if before is not None:
        sql += f" AND ({created}, {pk}) {against} (?, ?)"
        args += list(before)
    order = "DESC" if descending != (before is not None) else "ASC"
    for key, value in rest:
        sql += (
            " AND EXISTS (SELECT 1 FROM conversation_metadata x"
            f" WHERE x.conv = {pk} AND x.key = ? AND x.value = ?)"
        )
        args += [key, value]
    sql += f" ORDER BY {created} {order}, {pk} {order} LIMIT ?"
    args.append(limit + 1)
    return sql, args


def scan_sql(scan: ConversationScan, *, id_list: str) -> tuple[str, list[Any]]:
    """Conversations in pk order for export and purge. ``id_list`` is how the backend
    writes "one of these ids" with a single mark (``IN (SELECT value FROM json_each(?))``
    or ``= ANY(?)``). The last column is the number of items held (``item_count``,
    kept by every write since migration 0011: exact, and free to read)."""
    sql = (
        "SELECT c.pk, c.project, c.user_key, c.id, c.created_at, c.metadata, c.updated_at,"
        " c.item_count, c.safety_identifier FROM conversations c WHERE c.pk > ?"
    )
    args: list[Any] = [scan.after_pk]
    if scan.project is not None:
        sql += " AND c.project = ?"
        args.append(scan.project)
    for excluded in scan.exclude_projects:
        sql += " AND c.project <> ?"
        args.append(excluded)
    if scan.ids is not None:
        sql += f" AND c.id {id_list}"
        args.append(list(scan.ids))
    if scan.updated_before is not None:
        sql += " AND c.updated_at < ?"
        args.append(scan.updated_before)
    sql += " ORDER BY c.pk LIMIT ?"
    args.append(scan.limit)
    return sql, args


def cursors(paging: PageQuery) -> tuple[tuple[str | None, type[StoreError]], ...]:
    """The cursors of a page of conversations (``after``, ``before``), each with the fact
    raised when it names no conversation of the owner; :func:`anchor` reads each one's row
    of :func:`anchor_sql`."""
    return (
        (paging.after, ConversationAfterMissing),
        (paging.before, ConversationBeforeMissing),
    )


def anchor(found: Any, cursor: str | None, missing: type[StoreError]) -> tuple[int, int] | None:
    """The ``(created_at, pk)`` of a cursor from its row of :func:`anchor_sql`."""
    if cursor is None:
        return None
    if found is None:
        raise missing(cursor)
    return int(found[0]), int(found[1])


def conversation_page(rows: list[Any], paging: PageQuery) -> ConversationPage:
    """A page of :func:`list_sql`'s rows (it asks one more than ``limit``) in the requested
    order, and whether more lie further in the direction of travel."""
    page = rows[: paging.limit]
    backwards = paging.before is not None
    return ConversationPage(listed(page[::-1] if backwards else page), len(rows) > paging.limit)


def listed(rows: Iterable[Any]) -> list[ListedConversation]:
    """The rows of :func:`list_sql`'s query as records (both backends)."""
    return [ListedConversation(r[0], r[1], r[2], r[3], r[4], safety_identifier=r[5]) for r in rows]


def scanned(rows: Iterable[Any]) -> list[ScannedConversation]:
    """The rows of :func:`scan_sql`'s query as records (both backends)."""
    return [
        ScannedConversation(
            r[0],
            Owner(r[1], r[2]),
            ConversationRow(r[3], r[4], r[5], safety_identifier=r[8]),
            r[6],
            r[7],
        )
        for r in rows
    ]


def scanned_items(rows: Iterable[Any]) -> list[ScannedItem]:
    """The rows ``(conversation pk, seq, id, type, body, mask)`` of a scan of items as
    records (both backends)."""
    return [ScannedItem(r[0], r[1], StoredItem(r[2], r[3], r[4], r[5])) for r in rows]


def search_page(rows: Iterable[Any], search: ItemSearch) -> SearchPage:
    """A page of a search from its rows ``(pk, conversation id, item id, type, body,
    mask)``, newest first, cut by :func:`convostore.store.base.fill_page` (both backends)."""
    page, has_more = fill_page(rows, search.limit, search.max_bytes, lambda r: len(r[4]))
    return SearchPage([SearchHit(r[1], StoredItem(r[2], r[3], r[4], r[5])) for r in page], has_more)
