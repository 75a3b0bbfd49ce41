"""Every statement the SQLite store runs on a request path is a point or range lookup on
a key that bounds its work: O(log n), never O(conversations) or O(items).

The store's own operations run with a trace on its connection; each statement they ran
(with its real values) is then EXPLAINed. ``items`` may only be searched by
``conv`` (with ``seq`` or ``id``), by ``id`` or by ``rowid``; ``conversations`` only by
``id`` or ``rowid``. A search of ``conversations`` by owner alone walks every
conversation of a project: the soak of issue 6 found ``find_items`` doing exactly that,
and getting slower with every conversation created.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

from convostore.store.base import (
    ConversationRow,
    ForkRequest,
    ItemAppend,
    MetadataUpdate,
    NewConversation,
    Owner,
    PageQuery,
    ResponseRecord,
    StoredItem,
    Turn,
)
from convostore.store.sqlite import SQLiteStore

OWNER = Owner("proj_plan", "")

# What a plan line may say about each table (EXPLAIN QUERY PLAN's wording).
ALLOWED = {
    "items": re.compile(
        r"SEARCH \w+ USING (COVERING )?INDEX (items_conv_seq|items_conv_id|items_id) \((conv=\?|id=\?)"
        r"|SEARCH \w+ USING INTEGER PRIMARY KEY \(rowid="
    ),
    "conversations": re.compile(
        r"SEARCH \w+ USING (COVERING )?INDEX sqlite_autoindex_conversations_1 \(id=\?\)"
        r"|SEARCH \w+ USING INTEGER PRIMARY KEY \(rowid="
    ),
    # Stored responses (issue 17): by id, or pk; their items by response, or (conv, id).
    "responses": re.compile(
        r"SEARCH \w+ USING (COVERING )?INDEX (sqlite_autoindex_responses_1|responses_id_owner)"
        r" \(id=\?"
        r"|SEARCH \w+ USING INTEGER PRIMARY KEY \(rowid="
    ),
    "response_items": re.compile(
        r"SEARCH \w+ USING (PRIMARY KEY|(COVERING )?INDEX response_items_id) \(resp=\?"
        r"|SEARCH \w+ USING (COVERING )?INDEX response_items_conv \(conv=\? AND id=\?\)"
    ),
    # Events of streamed background responses: by response, then sequence number.
    "response_events": re.compile(r"SEARCH \w+ USING PRIMARY KEY \(resp=\?"),
}


async def run_hot_paths(store: SQLiteStore) -> None:
    for n in range(50):
        await store.create_conversation(
            OWNER, NewConversation(ConversationRow(f"conv_{n:04d}", 1_700_000_000 + n, b"{}"))
        )
    await store.create_conversation(
        OWNER,
        NewConversation(
            ConversationRow("conv_x", 1_700_000_100, b'{"a":"b"}'),
            [StoredItem("msg_0", "message", b'{"id":"msg_0"}', 0)],
        ),
    )
    await store.append_items(
        OWNER,
        ItemAppend("conv_x", [StoredItem(f"msg_{n}", "message", b"{}", 0) for n in range(1, 30)]),
    )
    await store.get_conversation(OWNER, "conv_x")
    await store.set_metadata(OWNER, MetadataUpdate("conv_x", b'{"c":"d"}'))
    await store.get_item(OWNER, "conv_x", "msg_3")
    for descending in (False, True):
        await store.list_items(OWNER, "conv_x", PageQuery(None, 20, descending))
        await store.list_items(OWNER, "conv_x", PageQuery("msg_10", 20, descending))
    await store.find_items(OWNER, ["msg_1", "msg_2", "msg_nope"])
    await store.delete_item(OWNER, "conv_x", "msg_4")
    for until in ("msg_10", None):  # a fork reads the (conv, seq) range it copies (issue 18)
        await store.fork_conversation(
            OWNER, ForkRequest("conv_x", f"conv_f{until}", 1, None, until)
        )
    await store.delete_conversation(OWNER, "conv_0001")
    # Stored responses (issue 17): many, a chain, some by reference to a conversation.
    previous = None
    for n in range(40):
        record = ResponseRecord(f"resp_{n}", 0, "completed", b"{}", previous)
        ask = StoredItem(f"msg_r{n}_in", "message", b"{}", 0)
        answer = StoredItem(f"msg_r{n}_out", "message", b"{}", 0)
        conversation = "conv_x" if n % 4 == 0 else None
        await store.save_response(OWNER, record, Turn([ask], [answer], conversation))
        previous = record.id
    await store.response_history(OWNER, "resp_39")
    await store.get_response(OWNER, "resp_20")
    await store.list_response_inputs(OWNER, "resp_20", PageQuery(None, 20, True))
    await store.list_response_inputs(OWNER, "resp_20", PageQuery("msg_r20_in", 20, False))
    await store.delete_item(OWNER, "conv_x", "msg_r0_in")  # kept for resp_0 by the trigger
    await store.delete_response(OWNER, "resp_10")
    await store.start_response(OWNER, ResponseRecord("resp_bg", 0, "queued", b"{}"), 30)
    await store.renew_response("resp_bg", "in_progress", 30)
    await store.append_response_events("resp_bg", 0, [b'{"type":"a"}', b'{"type":"b"}'])
    await store.response_events("resp_bg", 0, 100)
    await store.cancel_response(OWNER, "resp_bg")
    await store.end_response_events("resp_bg", lambda seq: b'{"type":"response.failed"}')


def test_request_path_statements_are_bounded_lookups(tmp_path: Path) -> None:
    statements: list[str] = []

    async def scenario() -> None:
        store = SQLiteStore(tmp_path / "plan.db")
        await store.open()
        try:
            await store.migrate()
            store.db.set_trace_callback(statements.append)
            await run_hot_paths(store)
            store.db.set_trace_callback(None)
        finally:
            await store.close()

    asyncio.run(scenario())
    queries = [
        s
        for s in statements
        if s.split(None, 1)[0].upper() in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
    ]
    assert any("i.id IN" in q for q in queries), "find_items was not traced"
    assert any("WITH RECURSIVE chain" in q for q in queries), "response_history was not traced"
    db = sqlite3.connect(tmp_path / "plan.db")
    problems = []
    for query in queries:
        for row in db.execute("EXPLAIN QUERY PLAN " + query):
            detail: str = row[3]
            match = re.match(r"(SCAN|SEARCH) (\w+)", detail)
            if not match:
                continue
            table = match.group(2)
            aliases = {
                "i": "items",
                "a": "items",
                "c": "conversations",
                "r": "response_items",
                "p": "responses",
                "e": "response_events",
            }
            table = aliases.get(table, table)
            allowed = ALLOWED.get(table)
            if allowed is not None and not allowed.match(detail):
                problems.append(f"{query}\n    -> {detail}")
    db.close()
    assert not problems, "\n".join(problems)
