"""The stored responses of the Store protocol (issue 17), on every backend.

Saving with and without a conversation (items by reference, never twice), reading a
response and its input items, chains by ``previous_response_id`` in one read, deleting
(a tombstone the chain goes through; the conversation's items untouched), a deleted
conversation item kept by the responses that hold it, owners, export scans, import and
the retention purge of whole trees.
"""

from __future__ import annotations

from typing import Any

import pytest

from convostore.store.base import (
    AfterMissing,
    ConversationMissing,
    LeaseLost,
    NewConversation,
    Owner,
    PageQuery,
    ResponseDump,
    ResponseMissing,
    ResponsePurge,
    ResponseRecord,
    Store,
    StoredItem,
    Turn,
)
from tests.store.test_store import ME, Run, conversation, ids, item

OTHERS = [Owner("", "alice"), Owner("proj_1", ""), Owner("proj_1", "alice")]


def record(
    response_id: str, previous: str | None = None, status: str = "completed"
) -> ResponseRecord:
    body = b'{"id":"' + response_id.encode() + b'","object":"response"}'
    return ResponseRecord(response_id, 1_700_000_000, status, body, previous)


def body_of(items: list[StoredItem]) -> list[bytes]:
    return [i.body for i in items]


def test_save_without_conversation_and_read(run: Run[Any], store: Store) -> None:
    run(store.save_response(ME, record("resp_1"), Turn([item("msg_in")], [item("msg_out", mask=1)])))
    stored = run(store.get_response(ME, "resp_1"))
    assert stored.record == record("resp_1")
    assert ids(stored.output) == ["msg_out"] and stored.output[0].mask == 1
    page = run(store.list_response_inputs(ME, "resp_1", PageQuery(None, 10, True)))
    assert ids(page.items) == ["msg_in"] and not page.has_more
    for other in OTHERS:
        with pytest.raises(ResponseMissing):
            run(store.get_response(other, "resp_1"))
        with pytest.raises(ResponseMissing):
            run(store.response_history(other, "resp_1"))
        with pytest.raises(ResponseMissing):
            run(store.delete_response(other, "resp_1"))
    with pytest.raises(ResponseMissing):
        run(store.get_response(ME, "resp_nope"))


def test_input_pages(run: Run[Any], store: Store) -> None:
    inputs = [item(f"msg_{n}") for n in range(5)]
    run(store.save_response(ME, record("resp_1"), Turn(inputs, [item("msg_out")])))
    page = run(store.list_response_inputs(ME, "resp_1", PageQuery(None, 2, False)))
    assert ids(page.items) == ["msg_0", "msg_1"] and page.has_more
    page = run(store.list_response_inputs(ME, "resp_1", PageQuery("msg_1", 2, False)))
    assert ids(page.items) == ["msg_2", "msg_3"] and page.has_more
    page = run(store.list_response_inputs(ME, "resp_1", PageQuery("msg_3", 2, True)))
    assert ids(page.items) == ["msg_2", "msg_1"] and page.has_more
    page = run(store.list_response_inputs(ME, "resp_1", PageQuery("msg_4", 2, False)))
    assert page.items == [] and not page.has_more
    with pytest.raises(AfterMissing):  # an output item is not an input
        run(store.list_response_inputs(ME, "resp_1", PageQuery("msg_out", 2, False)))


def test_chain_history_in_order_and_branches(run: Run[Any], store: Store) -> None:
    run(store.save_response(ME, record("resp_1"), Turn([item("m1")], [item("o1")])))
    run(store.save_response(ME, record("resp_2", "resp_1"), Turn([item("m2")], [item("o2")])))
    run(store.save_response(ME, record("resp_3", "resp_2"), Turn([item("m3")], [item("o3")])))
    run(store.save_response(ME, record("resp_3b", "resp_2"), Turn([item("m3b")], [item("o3b")])))
    assert ids(run(store.response_history(ME, "resp_3"))) == ["m1", "o1", "m2", "o2", "m3", "o3"]
    assert ids(run(store.response_history(ME, "resp_3b"))) == [
        "m1", "o1", "m2", "o2", "m3b", "o3b",
    ]  # fmt: skip
    assert ids(run(store.response_history(ME, "resp_1"))) == ["m1", "o1"]
    # A previous response of another owner, or none at all, is missing.
    with pytest.raises(ResponseMissing):
        run(store.save_response(OTHERS[0], record("resp_x", "resp_1"), Turn([item("m")], [])))
    with pytest.raises(ResponseMissing):
        run(store.get_response(OTHERS[0], "resp_x"))  # nothing of it was kept
    # Deleting a response in the middle: its items go, the chain goes on through it.
    run(store.delete_response(ME, "resp_2"))
    with pytest.raises(ResponseMissing):
        run(store.get_response(ME, "resp_2"))
    with pytest.raises(ResponseMissing):
        run(store.delete_response(ME, "resp_2"))
    with pytest.raises(ResponseMissing):  # nor can a new turn continue it
        run(store.save_response(ME, record("resp_y", "resp_2"), Turn([item("m")], [])))
    assert ids(run(store.response_history(ME, "resp_3"))) == ["m1", "o1", "m3", "o3"]


def test_with_conversation_items_by_reference(run: Run[Any], store: Store) -> None:
    run(store.create_conversation(ME, NewConversation(conversation("conv_1"))))
    inputs, outputs = [item("msg_in", b'{"id":"msg_in","v":1}')], [item("msg_out")]
    run(store.save_response(ME, record("resp_1"), Turn(inputs, outputs, "conv_1")))
    page = run(store.list_items(ME, "conv_1", PageQuery(None, 10, False)))
    assert ids(page.items) == ["msg_in", "msg_out"]
    stored = run(store.get_response(ME, "resp_1"))
    assert body_of(stored.output) == [outputs[0].body]
    # Deleting the response never touches the conversation's items.
    run(store.save_response(ME, record("resp_2"), Turn([item("msg_2")], [], "conv_1")))
    run(store.delete_response(ME, "resp_2"))
    page = run(store.list_items(ME, "conv_1", PageQuery(None, 10, False)))
    assert ids(page.items) == ["msg_in", "msg_out", "msg_2"]
    # Deleting the conversation's item (then the whole conversation) keeps the response's.
    run(store.delete_item(ME, "conv_1", "msg_in"))
    page = run(store.list_response_inputs(ME, "resp_1", PageQuery(None, 10, False)))
    assert body_of(page.items) == [inputs[0].body]
    run(store.delete_conversation(ME, "conv_1"))
    assert body_of(run(store.get_response(ME, "resp_1")).output) == [outputs[0].body]
    assert body_of(run(store.response_history(ME, "resp_1"))) == [
        inputs[0].body,
        outputs[0].body,
    ]


def test_store_false_with_conversation_appends_only(run: Run[Any], store: Store) -> None:
    run(store.create_conversation(ME, NewConversation(conversation("conv_1"))))
    run(store.save_response(ME, None, Turn([item("a")], [item("b")], "conv_1")))
    page = run(store.list_items(ME, "conv_1", PageQuery(None, 10, False)))
    assert ids(page.items) == ["a", "b"]
    with pytest.raises(ConversationMissing):
        run(store.save_response(ME, record("resp_1"), Turn([item("c")], [], "conv_2")))
    with pytest.raises(ResponseMissing):
        run(store.get_response(ME, "resp_1"))


def test_save_under_lease(run: Run[Any], store: Store) -> None:
    run(store.create_conversation(ME, NewConversation(conversation("conv_1"))))
    run(store.take_lease(ME, "conv_1", "resp_1", 30))
    with pytest.raises(LeaseLost):
        run(
            store.save_response(ME, record("resp_2"), Turn([item("a")], [], "conv_1", "resp_2"))
        )
    with pytest.raises(ResponseMissing):  # rolled back with the append
        run(store.get_response(ME, "resp_2"))
    run(
        store.save_response(ME, record("resp_1"), Turn([item("a")], [], "conv_1", "resp_1"))
    )
    assert ids(run(store.get_response(ME, "resp_1")).output) == []


def test_scan_import_purge(run: Run[Any], store: Store) -> None:
    run(store.create_conversation(ME, NewConversation(conversation("conv_1"))))
    run(
        store.save_response(ME, record("resp_1"), Turn([item("m1")], [item("o1")], "conv_1"))
    )
    run(store.save_response(ME, record("resp_2", "resp_1"), Turn([item("m2")], [item("o2")])))
    run(store.save_response(Owner("p2", "u"), record("resp_3"), Turn([item("m3")], [])))
    run(store.save_response(ME, record("resp_4"), Turn([], [item("o4")])))
    run(store.delete_response(ME, "resp_4"))
    scanned = run(store.scan_responses(project=None, after_pk=0, limit=10))
    dumps = [dump for _, dump in scanned]
    assert [d.record.id for d in dumps] == ["resp_1", "resp_2", "resp_3"]
    assert [d.root_id for d in dumps] == ["resp_1", "resp_1", "resp_3"]
    assert ids(list(dumps[0].inputs)) == ["m1"] and ids(list(dumps[0].outputs)) == ["o1"]
    assert dumps[2].owner == Owner("p2", "u")
    after = scanned[0][0]
    assert [
        d.record.id for _, d in run(store.scan_responses(project="", after_pk=after, limit=10))
    ] == ["resp_2"]
    # Import: existing ids are skipped; new ones keep everything.
    moved = ResponseDump(ME, record("resp_9", "resp_1"), 5, "resp_1", [item("m9")], [item("o9")])
    assert run(store.import_responses([dumps[0], moved])) == ["resp_1"]
    assert ids(run(store.response_history(ME, "resp_9"))) == ["m1", "o1", "m9", "o9"]
    # Retention deletes whole trees by the root's last activity.
    now = 2_000_000_000_000
    assert (
        run(store.purge_responses(ResponsePurge(now, 10, "p2")))
        == 1
    )
    with pytest.raises(ResponseMissing):
        run(store.get_response(Owner("p2", "u"), "resp_3"))
    assert (
        run(
            store.purge_responses(ResponsePurge(now, 10, None, ("",)))
        )
        == 0
    )
    assert (
        run(store.purge_responses(ResponsePurge(0, 10)))
        == 0
    )
    gone = run(
        store.purge_responses(ResponsePurge(now, 10))
    )
    assert gone == 4  # resp_1, resp_2, resp_9 and the tombstone resp_4
    for response_id in ("resp_1", "resp_2", "resp_9"):
        with pytest.raises(ResponseMissing):
            run(store.get_response(ME, response_id))
    # The conversation's items stay.
    page = run(store.list_items(ME, "conv_1", PageQuery(None, 10, False)))
    assert ids(page.items) == ["m1", "o1"]


def test_background_lifecycle(run: Run[Any], store: Store) -> None:
    """start (queued), renew (in_progress), finish only while running, cancel from any
    process, and a dead runner's response marked failed by the first read after expiry."""
    from convostore.store.base import ResponseRunning

    run(store.create_conversation(ME, NewConversation(conversation("conv_1"))))
    run(store.start_response(ME, record("resp_bg", status="queued"), 30))
    assert run(store.get_response(ME, "resp_bg")).record.status == "queued"
    with pytest.raises(ResponseRunning):
        run(store.response_history(ME, "resp_bg"))
    assert run(store.renew_response("resp_bg", "in_progress", 30))
    done = record("resp_bg", status="completed")
    assert run(store.finish_response(ME, done, Turn([item("a")], [item("b")], "conv_1")))
    assert run(store.get_response(ME, "resp_bg")).record.status == "completed"
    assert ids(run(store.response_history(ME, "resp_bg"))) == ["a", "b"]
    assert not run(store.renew_response("resp_bg", "in_progress", 30))  # finished: not running
    assert not run(store.finish_response(ME, done, Turn([item("c")], [])))  # finished once only

    # Cancelled: the runner's renewal says so, its final write stores nothing.
    run(store.start_response(ME, record("resp_c", status="queued"), 30))
    for other in OTHERS:
        with pytest.raises(ResponseMissing):
            run(store.cancel_response(other, "resp_c"))
    assert run(store.cancel_response(ME, "resp_c")).record.status == "cancelled"
    assert not run(store.renew_response("resp_c", "in_progress", 30))
    assert not run(
        store.finish_response(ME, record("resp_c"), Turn([item("x")], [], "conv_1"))
    )
    page = run(store.list_items(ME, "conv_1", PageQuery(None, 10, False)))
    assert ids(page.items) == ["a", "b"]  # nothing of the cancelled response
    assert run(store.cancel_response(ME, "resp_bg")).record.status == "completed"

    # A runner that died: its response expires (here: already has), and the first read
    # marks it failed.
    run(store.start_response(ME, record("resp_dead", status="queued"), -1))
    assert run(store.get_response(ME, "resp_dead")).record.status == "failed"
    assert not run(store.renew_response("resp_dead", "in_progress", 30))
    assert run(store.response_history(ME, "resp_dead")) == []
    # One imported from a dump taken while it ran has no runner anywhere: failed too.
    moved = ResponseDump(ME, record("resp_moved", status="in_progress"), 1, "resp_moved", [], [])
    assert run(store.import_responses([moved])) == []
    assert run(store.get_response(ME, "resp_moved")).record.status == "failed"


def test_events_of_a_streamed_background_response(run: Run[Any], store: Store) -> None:
    """Migration 0060: events stored only while the response runs, in order; one terminal
    event after the last, whoever appends it; none for a response never streamed; gone
    with the response (deleted, or purged with its chain)."""
    run(store.start_response(ME, record("resp_s", status="queued"), 30))
    assert run(store.append_response_events("resp_s", 0, [b'{"n":0}', b'{"n":1}']))
    assert run(store.append_response_events("resp_s", 2, [b'{"n":2}']))
    read = run(store.response_events("resp_s", 0, 10))
    assert [(e.seq, e.body, e.terminal) for e in read] == [(1, b'{"n":1}', False), (2, b'{"n":2}', False)]
    assert [e.seq for e in run(store.response_events("resp_s", -1, 2))] == [0, 1]  # bounded
    run(store.cancel_response(ME, "resp_s"))
    assert not run(store.append_response_events("resp_s", 3, [b'{"n":3}']))  # not running
    made: list[int] = []

    def terminal(seq: int) -> bytes:
        made.append(seq)
        return b'{"end":true}'

    assert run(store.end_response_events("resp_s", terminal))
    assert not run(store.end_response_events("resp_s", terminal))  # one terminal event only
    assert made == [3]
    assert [(e.seq, e.terminal) for e in run(store.response_events("resp_s", 2, 10))] == [(3, True)]
    # Never streamed: no events, and no terminal one either.
    run(store.start_response(ME, record("resp_plain", status="queued"), 30))
    run(store.cancel_response(ME, "resp_plain"))
    assert not run(store.end_response_events("resp_plain", terminal))
    assert run(store.response_events("resp_plain", -1, 10)) == []
    # Deleted: its events go (the row stays as a tombstone for chains).
    run(store.delete_response(ME, "resp_s"))
    assert run(store.response_events("resp_s", -1, 10)) == []
    # Purged with its chain by retention.
    run(store.start_response(ME, record("resp_old", status="queued"), 30))
    assert run(store.append_response_events("resp_old", 0, [b"{}"]))
    purged = run(store.purge_responses(ResponsePurge(2**40, 100)))
    assert purged >= 1
    assert run(store.response_events("resp_old", -1, 10)) == []
