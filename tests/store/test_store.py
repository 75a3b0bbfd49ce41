"""The store conformance suite: the :class:`Store` protocol, on every backend.

Each test runs once per backend (the ``store`` fixture): SQLite on a new file and
PostgreSQL on a new database of a real server. The store is driven directly, on an
event loop of the test's own, as the service drives it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from convostore.store import migrate
from convostore.store.base import (
    AfterMissing,
    ConversationMissing,
    ConversationRow,
    ItemAppend,
    ItemConflict,
    ItemMissing,
    MetadataUpdate,
    NewConversation,
    Owner,
    PageQuery,
    Store,
    StoredItem,
)
from convostore.store.postgres import PostgresStore
from convostore.store.sqlite import SQLiteStore

T = TypeVar("T")
Run = Callable[[Awaitable[T]], T]

ME = Owner()
OWNERS = [Owner(), Owner("", "alice"), Owner("proj_1", ""), Owner("proj_1", "alice")]


def item(item_id: str, body: bytes | None = None, mask: int = 0) -> StoredItem:
    return StoredItem(item_id, "message", body or f'{{"id":"{item_id}"}}'.encode(), mask)


def conversation(conversation_id: str, metadata: bytes = b"{}") -> ConversationRow:
    return ConversationRow(conversation_id, 1_700_000_000, metadata)


def twin(store: Store) -> Store:
    """Another store over the same database (another process, as far as the database knows)."""
    if isinstance(store, PostgresStore):
        return PostgresStore(store.dsn, max_size=4)
    assert isinstance(store, SQLiteStore)
    return SQLiteStore(store.path)


def backend_of(store: Store) -> str:
    name: str = getattr(store, "backend")  # noqa: B009 (not part of the protocol)
    return name


def ids(items: list[StoredItem]) -> list[str]:
    return [i.id for i in items]


def all_ids(run: Run[Any], store: Store, conversation_id: str, owner: Owner = ME) -> list[str]:
    """Every item id in ascending order, following ``after`` like a client."""
    out: list[str] = []
    after = None
    while True:
        page = run(store.list_items(owner, conversation_id, PageQuery(after, 7, False)))
        out += ids(page.items)
        if not page.has_more:
            return out
        after = out[-1]


# -- migrations ------------------------------------------------------------------------------


def test_migrate_records_versions_once(store: Store, loop: asyncio.AbstractEventLoop) -> None:
    versions = [m.version for m in migrate.load(backend_of(store))]
    loop.run_until_complete(store.open())
    try:
        assert loop.run_until_complete(store.schema_version()) == 0
        assert loop.run_until_complete(store.migrate()) == versions
        assert loop.run_until_complete(store.schema_version()) == versions[-1]
        assert loop.run_until_complete(store.migrate()) == []
    finally:
        loop.run_until_complete(store.close())


def test_concurrent_migrations_apply_once(store: Store, loop: asyncio.AbstractEventLoop) -> None:
    """Servers that start together each migrate: exactly one applies the versions."""
    stores = [store, *(twin(store) for _ in range(3))]

    async def main() -> list[list[int]]:
        for s in stores:
            await s.open()
        try:
            return list(await asyncio.gather(*(s.migrate() for s in stores)))
        finally:
            for s in stores:
                await s.close()

    results = loop.run_until_complete(main())
    applied = [r for r in results if r]
    assert len(applied) == 1, results
    assert applied[0] == [m.version for m in migrate.load(backend_of(store))]


# -- conversations ---------------------------------------------------------------------------


def test_create_get_keeps_metadata_bytes(run: Run[Any], store: Store) -> None:
    metadata = b'{"z": "1",  "a": "\xc3\xa9\xe2\x82\xac"}'  # key order, spacing, UTF-8 kept as sent
    run(store.create_conversation(ME, NewConversation(conversation("conv_a", metadata))))
    got = run(store.get_conversation(ME, "conv_a"))
    assert got == ConversationRow("conv_a", 1_700_000_000, metadata)
    assert run(store.list_items(ME, "conv_a", PageQuery(None, 20, True))).items == []


def test_get_missing(run: Run[Any], store: Store) -> None:
    with pytest.raises(ConversationMissing):
        run(store.get_conversation(ME, "conv_nope"))


def test_set_metadata_replaces(run: Run[Any], store: Store) -> None:
    run(store.create_conversation(ME, NewConversation(conversation("conv_a", b'{"a":"1"}'))))
    row = run(store.set_metadata(ME, MetadataUpdate("conv_a", b'{"b":"2"}')))
    assert row == ConversationRow("conv_a", 1_700_000_000, b'{"b":"2"}')
    assert run(store.get_conversation(ME, "conv_a")).metadata == b'{"b":"2"}'
    with pytest.raises(ConversationMissing):
        run(store.set_metadata(ME, MetadataUpdate("conv_nope", b"{}")))


def test_delete_conversation_removes_it_and_its_items(run: Run[Any], store: Store) -> None:
    run(
        store.create_conversation(
            ME, NewConversation(conversation("conv_a"), [item("msg_1"), item("msg_2")])
        )
    )
    run(store.create_conversation(ME, NewConversation(conversation("conv_b"), [item("msg_2")])))
    run(store.delete_conversation(ME, "conv_a"))
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: store.get_conversation(ME, "conv_a"),
        lambda: store.set_metadata(ME, MetadataUpdate("conv_a", b"{}")),
        lambda: store.delete_conversation(ME, "conv_a"),
        lambda: store.append_items(ME, ItemAppend("conv_a", [item("msg_3")])),
        lambda: store.append_items(ME, ItemAppend("conv_a", [])),
        lambda: store.list_items(ME, "conv_a", PageQuery(None, 20, False)),
        lambda: store.list_items(ME, "conv_a", PageQuery("msg_1", 20, False)),
        lambda: store.get_item(ME, "conv_a", "msg_1"),
        lambda: store.delete_item(ME, "conv_a", "msg_1"),
    ]
    for call in calls:
        with pytest.raises(ConversationMissing):
            run(call())
    # Its items are gone; the copy another conversation holds stays (D4).
    found = run(store.find_items(ME, ["msg_1", "msg_2"]))
    assert sorted(found) == ["msg_2"]
    assert all_ids(run, store, "conv_b") == ["msg_2"]


# -- appends and order ----------------------------------------------------------------------


def test_append_keeps_request_order_after_everything(run: Run[Any], store: Store) -> None:
    run(
        store.create_conversation(
            ME, NewConversation(conversation("conv_a"), [item("msg_c1"), item("msg_c2")])
        )
    )
    run(store.append_items(ME, ItemAppend("conv_a", [item("msg_3"), item("msg_1"), item("msg_2")])))
    run(store.append_items(ME, ItemAppend("conv_a", [])))
    run(store.append_items(ME, ItemAppend("conv_a", [item("msg_0")])))
    expected = ["msg_c1", "msg_c2", "msg_3", "msg_1", "msg_2", "msg_0"]
    assert all_ids(run, store, "conv_a") == expected
    page = run(store.list_items(ME, "conv_a", PageQuery(None, 100, True)))
    assert ids(page.items) == expected[::-1]
    assert page.has_more is False


def test_items_round_trip_unchanged(run: Run[Any], store: Store) -> None:
    big = b'{"text":"' + b"x" * 2_000_000 + b'"}'
    odd = '{"b":1, "a":"caf\u00e9 \u2603 \U0001f600"}'.encode()
    sent = [item("msg_big", big, mask=0), item("msg_odd", odd, mask=255)]
    run(store.create_conversation(ME, NewConversation(conversation("conv_a"), sent)))
    page = run(store.list_items(ME, "conv_a", PageQuery(None, 20, False)))
    assert page.items == sent
    assert run(store.get_item(ME, "conv_a", "msg_odd")) == sent[1]
    assert run(store.find_items(ME, ["msg_big"])) == {"msg_big": sent[0]}


def test_append_to_missing_conversation(run: Run[Any], store: Store) -> None:
    with pytest.raises(ConversationMissing):
        run(store.append_items(ME, ItemAppend("conv_nope", [item("msg_1")])))
    with pytest.raises(ConversationMissing):
        run(store.append_items(ME, ItemAppend("conv_nope", [])))


# -- pages -------------------------------------------------------------------------------------


@pytest.fixture
def filled(run: Run[Any], store: Store) -> list[str]:
    """conv_a with 25 items msg_00..msg_24, added in batches of 1 to 4."""
    names = [f"msg_{n:02d}" for n in range(25)]
    run(
        store.create_conversation(
            ME, NewConversation(conversation("conv_a"), [item(n) for n in names[:3]])
        )
    )
    start = 3
    for size in (1, 4, 2, 3, 4, 1, 2, 4, 1):
        run(
            store.append_items(
                ME, ItemAppend("conv_a", [item(n) for n in names[start : start + size]])
            )
        )
        start += size
    assert start == len(names)
    return names


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("limit", [1, 7, 24, 25, 100])
def test_pages_follow_the_cursor(
    run: Run[Any], store: Store, filled: list[str], descending: bool, limit: int
) -> None:
    expected = filled[::-1] if descending else filled
    seen: list[str] = []
    after = None
    while True:
        page = run(store.list_items(ME, "conv_a", PageQuery(after, limit, descending)))
        assert len(page.items) == min(limit, len(expected) - len(seen))
        seen += ids(page.items)
        assert page.has_more == (len(seen) < len(expected))
        if not page.has_more:
            break
        after = seen[-1]
    assert seen == expected


def test_after_is_exclusive_in_both_orders(run: Run[Any], store: Store, filled: list[str]) -> None:
    asc = run(store.list_items(ME, "conv_a", PageQuery("msg_10", 3, False)))
    assert ids(asc.items) == ["msg_11", "msg_12", "msg_13"]
    assert asc.has_more
    desc = run(store.list_items(ME, "conv_a", PageQuery("msg_10", 3, True)))
    assert ids(desc.items) == ["msg_09", "msg_08", "msg_07"]
    last = run(store.list_items(ME, "conv_a", PageQuery("msg_24", 3, False)))
    assert (last.items, last.has_more) == ([], False)
    first = run(store.list_items(ME, "conv_a", PageQuery("msg_00", 3, True)))
    assert (first.items, first.has_more) == ([], False)


def test_after_missing(run: Run[Any], store: Store, filled: list[str]) -> None:
    run(store.create_conversation(ME, NewConversation(conversation("conv_b"), [item("msg_other")])))
    run(store.delete_item(ME, "conv_a", "msg_05"))
    for after in ("msg_nope", "msg_other", "msg_05"):
        for descending in (False, True):
            with pytest.raises(AfterMissing):
                run(store.list_items(ME, "conv_a", PageQuery(after, 5, descending)))
    with pytest.raises(ConversationMissing):  # the conversation is checked first
        run(store.list_items(ME, "conv_nope", PageQuery("msg_nope", 5, False)))


# -- single items --------------------------------------------------------------------------


def test_get_and_delete_item(run: Run[Any], store: Store, filled: list[str]) -> None:
    assert run(store.get_item(ME, "conv_a", "msg_04")) == item("msg_04")
    row = run(store.delete_item(ME, "conv_a", "msg_04"))
    assert row == conversation("conv_a")
    with pytest.raises(ItemMissing):
        run(store.get_item(ME, "conv_a", "msg_04"))
    with pytest.raises(ItemMissing):
        run(store.delete_item(ME, "conv_a", "msg_04"))
    with pytest.raises(ConversationMissing):
        run(store.get_item(ME, "conv_nope", "msg_03"))
    with pytest.raises(ConversationMissing):
        run(store.delete_item(ME, "conv_nope", "msg_03"))
    # A deleted id may come back, and new items still go after everything.
    run(store.append_items(ME, ItemAppend("conv_a", [item("msg_04"), item("msg_25")])))
    assert all_ids(run, store, "conv_a") == [n for n in filled if n != "msg_04"] + [
        "msg_04",
        "msg_25",
    ]


def test_item_conflict_stores_nothing(run: Run[Any], store: Store) -> None:
    run(store.create_conversation(ME, NewConversation(conversation("conv_a"), [item("msg_1")])))
    run(store.create_conversation(ME, NewConversation(conversation("conv_b"), [item("msg_x")])))
    with pytest.raises(ItemConflict):  # already in the conversation
        run(
            store.append_items(
                ME, ItemAppend("conv_a", [item("msg_2"), item("msg_1"), item("msg_3")])
            )
        )
    with pytest.raises(ItemConflict):  # twice in one request (D21 c)
        run(store.append_items(ME, ItemAppend("conv_a", [item("msg_4"), item("msg_4")])))
    assert all_ids(run, store, "conv_a") == ["msg_1"]
    assert run(store.find_items(ME, ["msg_2", "msg_3", "msg_4"])) == {}
    with pytest.raises(ItemConflict):
        run(
            store.create_conversation(
                ME, NewConversation(conversation("conv_c"), [item("msg_5"), item("msg_5")])
            )
        )
    with pytest.raises(ConversationMissing):
        run(store.get_conversation(ME, "conv_c"))
    # The same id in another conversation is no conflict (D21 a, d).
    run(store.append_items(ME, ItemAppend("conv_a", [item("msg_x")])))
    assert all_ids(run, store, "conv_a") == ["msg_1", "msg_x"]
    # The conversation still takes appends at the right place.
    run(store.append_items(ME, ItemAppend("conv_a", [item("msg_2")])))
    assert all_ids(run, store, "conv_a") == ["msg_1", "msg_x", "msg_2"]


# -- owners ------------------------------------------------------------------------------------


def test_find_items_is_owner_scoped(run: Run[Any], store: Store) -> None:
    for n, owner in enumerate(OWNERS):
        run(
            store.create_conversation(
                owner, NewConversation(conversation(f"conv_{n}"), [item(f"msg_{n}")])
            )
        )
    run(
        store.create_conversation(ME, NewConversation(conversation("conv_x"), [item("msg_shared")]))
    )
    run(
        store.create_conversation(ME, NewConversation(conversation("conv_y"), [item("msg_shared")]))
    )
    assert run(store.find_items(ME, [])) == {}
    for n, owner in enumerate(OWNERS):
        found = run(store.find_items(owner, [f"msg_{m}" for m in range(4)] + ["msg_unknown"]))
        assert found == {f"msg_{n}": item(f"msg_{n}")}
    assert run(store.find_items(ME, ["msg_shared"])) == {"msg_shared": item("msg_shared")}
    assert run(store.find_items(Owner("", "bob"), ["msg_shared"])) == {}


def owner_calls(store: Store, o: Owner) -> list[Callable[[], Awaitable[Any]]]:
    """Every call that names conversation conv_a (and its item msg_1), as owner ``o``."""
    return [
        lambda: store.get_conversation(o, "conv_a"),
        lambda: store.set_metadata(o, MetadataUpdate("conv_a", b'{"x":"y"}')),
        lambda: store.append_items(o, ItemAppend("conv_a", [item("msg_2")])),
        lambda: store.list_items(o, "conv_a", PageQuery(None, 5, True)),
        lambda: store.list_items(o, "conv_a", PageQuery("msg_1", 5, True)),
        lambda: store.get_item(o, "conv_a", "msg_1"),
        lambda: store.delete_item(o, "conv_a", "msg_1"),
        lambda: store.delete_conversation(o, "conv_a"),
    ]


def test_owners_are_isolated(run: Run[Any], store: Store) -> None:
    run(
        store.create_conversation(
            OWNERS[3], NewConversation(conversation("conv_a"), [item("msg_1")])
        )
    )
    for other in OWNERS[:3]:
        for call in owner_calls(store, other):
            with pytest.raises(ConversationMissing):
                run(call())
    assert run(store.get_conversation(OWNERS[3], "conv_a")).metadata == b"{}"
    assert all_ids(run, store, "conv_a", OWNERS[3]) == ["msg_1"]


# -- concurrency ---------------------------------------------------------------------------


def check_batches(listed: list[str], batches: list[list[str]]) -> None:
    """Every item listed once; each batch contiguous and in its own order."""
    assert sorted(listed) == sorted(i for batch in batches for i in batch)
    position = {item_id: n for n, item_id in enumerate(listed)}
    for batch in batches:
        start = position[batch[0]]
        assert listed[start : start + len(batch)] == batch


def test_concurrent_appends_stay_contiguous(run: Run[Any], store: Store) -> None:
    """Many appends at once on one conversation (on PostgreSQL: over the whole pool)."""
    run(store.create_conversation(ME, NewConversation(conversation("conv_a"), [item("msg_first")])))
    batches = [[f"msg_{r:03d}_{k}" for k in range(3)] for r in range(60)]

    async def append(batch: list[str]) -> None:
        await store.append_items(ME, ItemAppend("conv_a", [item(i) for i in batch]))

    async def main() -> None:
        await asyncio.gather(*(append(b) for b in batches))

    run(main())
    listed = all_ids(run, store, "conv_a")
    assert listed[0] == "msg_first"
    check_batches(listed[1:], batches)


def test_concurrent_appends_from_two_stores(run: Run[Any], store: Store) -> None:
    """Two stores on one database, as two server processes would be, appending at once."""
    run(store.create_conversation(ME, NewConversation(conversation("conv_a"))))
    other = twin(store)
    batches = [[f"msg_{r:03d}_{k}" for k in range(4)] for r in range(40)]

    async def main() -> list[BaseException | None]:
        await other.open()
        try:
            return list(
                await asyncio.gather(
                    *(
                        (store if n % 2 else other).append_items(
                            ME, ItemAppend("conv_a", [item(i) for i in batch])
                        )
                        for n, batch in enumerate(batches)
                    ),
                    store.append_items(ME, ItemAppend("conv_a", [item("msg_000_0")])),  # conflicts
                    return_exceptions=True,
                )
            )
        finally:
            await other.close()

    results = run(main())
    # The lone msg_000_0 and the batch holding it: whichever came second conflicted.
    assert sum(isinstance(r, ItemConflict) for r in results) == 1, results
    assert all(r is None or isinstance(r, ItemConflict) for r in results), results
    listed = all_ids(run, store, "conv_a")
    stored = [b for b in batches if b[1] in listed]
    if len(stored) < len(batches):
        stored.append(["msg_000_0"])
    check_batches(listed, stored)


def test_append_racing_delete(run: Run[Any], store: Store) -> None:
    """An append racing a delete either lands before it (and goes with it) or finds nothing."""
    run(store.create_conversation(ME, NewConversation(conversation("conv_a"))))
    other = twin(store)

    async def main() -> list[BaseException | None]:
        await other.open()
        try:
            appends = [
                (store if n % 2 else other).append_items(
                    ME, ItemAppend("conv_a", [item(f"msg_{n}")])
                )
                for n in range(20)
            ]
            return list(
                await asyncio.gather(
                    *appends[:10],
                    other.delete_conversation(ME, "conv_a"),
                    *appends[10:],
                    return_exceptions=True,
                )
            )
        finally:
            await other.close()

    results = run(main())
    assert all(r is None or isinstance(r, ConversationMissing) for r in results), results
    assert results[10] is None  # the delete succeeded
    assert run(store.find_items(ME, [f"msg_{n}" for n in range(20)])) == {}
