"""Export and import (docs/export.md): lossless round trips on SQLite and PostgreSQL,
batch and chunk boundaries, the CLI in real processes, and SQLite → PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from convostore.service import transfer
from convostore.store.base import ConversationScan, Owner, Store
from tests.conftest import drop_store, make_store
from tests.support import Api, make_app


async def dump(store: Store, **kwargs: Any) -> bytes:
    return b"".join([chunk async for chunk in transfer.export_lines(store, **kwargs)])


async def whole_dump(store: Store) -> bytes:
    """What `convostore export` writes: keys, conversations, responses, the trailer."""
    return b"".join([chunk async for chunk in transfer.export_dump(store)])


def populate(api: Api) -> list[str]:
    """Conversations of several owners and shapes: empty, with gaps, copies, odd metadata."""
    made = [api.new_conversation()]
    made.append(
        api.new_conversation(
            metadata={"topic": "ünïcode ✓", "k": "v"},
            items=[{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}],
        )
    )
    gappy = api.new_conversation(items=[{"role": "user", "content": f"n{n}"} for n in range(5)])
    doomed = api.all_items(gappy)[2]["id"]
    api.delete(f"/v1/conversations/{gappy}/items/{doomed}")
    made.append(gappy)
    made.append(
        api.new_conversation(
            items=[
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x": 1.5e300}'},
                {"type": "function_call_output", "call_id": "c1", "output": "\u0000 nul and \\ slash"},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "abc"},
            ]
        )
    )
    made.append(api.new_conversation(items=[{"type": "item_reference", "id": api.all_items(made[1])[0]["id"]}]))
    # D22 and D9: a safety_identifier, and keys newer than the schemas, round-trip as sent.
    newer = {"role": "user", "content": [{"type": "input_text", "text": "x", "future": {"k": [1, 2.5]}}], "later": None}
    made.append(api.post("/v1/conversations", json={"safety_identifier": "user-123", "items": [newer]}).json()["id"])
    bob = api.post("/v1/conversations", json={"items": [{"role": "user", "content": "bob's"}]}, headers={"x-ms-user-isolation-key": "bob"})
    made.append(bob.json()["id"])
    return made


def test_round_trip_is_identical(api: Api, backend: str, tmp_path: Path) -> None:
    made = populate(api)
    first = api.run(dump(api.app.store))
    lines = first.splitlines()
    assert len(lines) == len(made)
    assert [orjson.loads(line)["id"] for line in lines] == made
    target = make_store(backend, tmp_path / "target")
    other = Api(make_app(target))
    try:
        report = other.run(transfer.import_lines(target, first.splitlines(keepends=True), require_end=False))
        assert (report.imported, report.skipped) == (len(made), 0)
        assert other.run(dump(target)) == first
        # what clients see is the same too
        for conversation_id in made[:-1]:
            assert other.get(f"/v1/conversations/{conversation_id}").json() == api.get(f"/v1/conversations/{conversation_id}").json()
            assert other.all_items(conversation_id) == api.all_items(conversation_id)
        bob = {"x-ms-user-isolation-key": "bob"}
        assert other.get(f"/v1/conversations/{made[-1]}", headers=bob).status_code == 200
        assert other.get(f"/v1/conversations/{made[-1]}").status_code == 404
        # and searchable, listable
        assert other.get("/v1/conversations/search", params={"q": "hello"}).json()["data"]
        assert other.get("/v1/conversations", params={"metadata[k]": "v"}).json()["data"][0]["id"] == made[1]
        # importing again skips everything
        again = other.run(transfer.import_lines(target, first.splitlines(keepends=True), require_end=False))
        assert (again.imported, again.skipped) == (0, len(made))
        assert other.run(dump(target)) == first
    finally:
        other.close()
        drop_store(target)


def test_line_format(api: Api) -> None:
    conversation_id = api.new_conversation(metadata={"a": "b"}, items=[{"role": "user", "content": "x"}])
    (line,) = api.run(dump(api.app.store)).splitlines()
    data = orjson.loads(line)
    assert list(data) == ["object", "version", "id", "project", "user_key", "created_at", "updated_at", "metadata", "items"]
    assert data["object"] == "conversation.export" and data["version"] == 1
    assert data["id"] == conversation_id and data["metadata"] == {"a": "b"}
    assert data["items"] == api.all_items(conversation_id)


def test_batches_and_chunks(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Boundaries of conversation batches and item chunks fall everywhere."""
    monkeypatch.setattr(transfer, "CONVERSATIONS_PER_BATCH", 3)
    monkeypatch.setattr(transfer, "FIRST_CHUNK", 2)
    monkeypatch.setattr(transfer, "MAX_CHUNK", 4)
    sizes = [0, 1, 7, 0, 0, 3, 4, 0, 9, 1, 2]
    made = []
    for size in sizes:
        items = [{"role": "user", "content": f"m{n}"} for n in range(min(size, 20))]
        made.append(api.new_conversation(items=items))
    lines = api.run(dump(api.app.store)).splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == made
    for line, conversation_id in zip(lines, made, strict=True):
        assert orjson.loads(line)["items"] == api.all_items(conversation_id)


def test_filters(api: Api) -> None:
    made = populate(api)
    picked = api.run(dump(api.app.store, ids=[made[3], made[1], "conv_missing"])).splitlines()
    assert [orjson.loads(line)["id"] for line in picked] == [made[1], made[3]]
    assert api.run(dump(api.app.store, project="nobody")) == b""
    assert len(api.run(dump(api.app.store, project="default")).splitlines()) == len(made)
    assert api.run(api.app.store.count_conversations(project=None, ids=[made[0]])) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"object": "other"}', "not a 'conversation.export' object"),
        (b'{"object": "conversation.export", "version": 99}', "format version 99"),
        (b'{"object": "conversation.export", "version": 1, "id": "c"}', "missing"),
    ],
)
def test_bad_lines(line: bytes, message: str) -> None:
    with pytest.raises(transfer.DumpError, match=message):
        transfer.parse_line(line, 1)


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "convostore", *args], input=stdin, capture_output=True, timeout=120, check=False
    )


def db_of(store: Store) -> str:
    return str(getattr(store, "dsn", None) or getattr(store, "path"))  # noqa: B009


def test_cli_round_trip_between_backends(api: Api, backend: str, tmp_path: Path, pg_url: str) -> None:
    """export from this backend, import into PostgreSQL and into SQLite, export: identical."""
    made = populate(api)
    api.run(api.app.store.close())  # the CLI processes open the database themselves
    exported = cli("export", "--db", db_of(api.app.store))
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr.decode().strip() == f"exported {len(made)} conversations (12 items) and 0 API keys"
    dump_file = tmp_path / "dump.jsonl"
    dump_file.write_bytes(exported.stdout)
    for target in (pg_url, str(tmp_path / "copy.db")):
        assert cli("migrate", "--db", target).returncode == 0  # import needs a database
        imported = cli("import", str(dump_file), "--db", target)
        assert imported.returncode == 0, imported.stderr
        assert f"imported {len(made)} conversations" in imported.stderr.decode()
        again = cli("export", "--db", target)
        assert again.returncode == 0 and again.stdout == exported.stdout, target
    assert cli("migrate", "--db", str(tmp_path / "piped.db")).returncode == 0
    piped = cli("import", "-", "--db", str(tmp_path / "piped.db"), stdin=exported.stdout)
    assert piped.returncode == 0, piped.stderr
    one = cli("export", "--db", db_of(api.app.store), "--conversation", made[1])
    *records, end = [orjson.loads(line) for line in one.stdout.splitlines()]
    assert [r["id"] for r in records] == [made[1]]  # no keys when conversations are picked
    assert end == {"object": "export.end", "version": 1, "counts": {"api_key": 0, "conversation": 1, "item": 2, "response.export": 0}}
    api.run(api.app.store.open())


def test_cli_import_refuses_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"object": "conversation.export", "version": 1}\n')
    assert cli("migrate", "--db", str(tmp_path / "x.db")).returncode == 0
    result = cli("import", str(bad), "--db", str(tmp_path / "x.db"))
    assert result.returncode == 1
    assert b"line 1: missing" in result.stderr and b"Traceback" not in result.stderr


def test_import_keeps_owner_projects(api: Api) -> None:
    line = orjson.dumps(
        {
            "object": "conversation.export", "version": 1, "id": "conv_imported", "project": "acme",
            "user_key": "u1", "created_at": 1_600_000_000, "updated_at": 1_600_000_100,
            "metadata": {}, "items": [{"id": "msg_1", "type": "message", "role": "user", "status": "completed", "content": [{"type": "input_text", "text": "hi"}]}],
        }
    )
    store = api.app.store
    report = api.run(transfer.import_lines(store, [line + b"\n"], require_end=False))
    assert (report.imported, report.items) == (1, 1)
    (scanned,) = api.run(store.scan_conversations(ConversationScan(0, 10, project="acme")))
    assert scanned.owner == Owner("acme", "u1") and scanned.updated_at == 1_600_000_100
    assert api.run(dump(store, project="acme")) == line + b"\n"


def test_the_same_conversation_twice_in_one_dump(api: Api) -> None:
    api.new_conversation(items=[{"role": "user", "content": "once"}])
    line = api.run(dump(api.app.store))
    store = api.app.store
    api.delete(f"/v1/conversations/{orjson.loads(line)['id']}")
    report = api.run(transfer.import_lines(store, [line, line], require_end=False))
    assert (report.imported, report.skipped, report.items) == (1, 1, 1)
    assert api.run(dump(store)) == line


def test_stored_responses_round_trip(api: Api, backend: str, tmp_path: Path) -> None:
    """Issue 17: stored responses are one line each (``response.export``) after the
    conversations, their items whole (also those a conversation holds); import keeps
    ids, owner, chain and times, and export → import → export is identical."""
    from convostore.store.base import ResponseRecord, StoredItem, Turn

    store = api.app.store
    conversation_id = api.new_conversation()
    owner = Owner("default", "")

    def item(item_id: str) -> StoredItem:
        body = b'{"id":"%s","type":"message","role":"user","status":"completed","content":[{"type":"input_text","text":"t"}]}' % item_id.encode()
        return StoredItem(item_id, "message", body, 0)

    def record(response_id: str, previous: str | None) -> ResponseRecord:
        return ResponseRecord(response_id, 1_700_000_000, "completed", b'{"id":"%s","object":"response","output":[]}' % response_id.encode(), previous)

    api.run(store.save_response(owner, record("resp_1", None), Turn([item("msg_a")], [item("msg_b")], conversation_id)))
    api.run(store.save_response(owner, record("resp_2", "resp_1"), Turn([item("msg_c")], [item("msg_d")])))
    api.run(store.save_response(Owner("default", "bob"), record("resp_3", None), Turn([item("msg_e")], [])))
    first = api.run(whole_dump(store))
    # The trailer counts the responses, so a dump cut among them is caught (issue 19).
    assert orjson.loads(first.splitlines()[-1])["counts"]["response.export"] == 3
    lines = [orjson.loads(line) for line in first.splitlines()]
    assert [line["object"] for line in lines] == ["conversation.export"] + ["response.export"] * 3 + ["export.end"]
    assert [i["id"] for i in lines[1]["input"] + lines[1]["output"]] == ["msg_a", "msg_b"]
    assert (lines[2]["previous_response_id"], lines[2]["root_id"]) == ("resp_1", "resp_1")
    assert api.run(dump(store, ids=[conversation_id])).count(b"response.export") == 0
    target = make_store(backend, tmp_path / "target")
    other = Api(make_app(target))
    try:
        report = other.run(transfer.import_lines(target, first.splitlines(keepends=True)))
        assert (report.imported, report.responses, report.skipped_responses) == (1, 3, 0)
        assert other.run(whole_dump(target)) == first
        history = other.run(target.response_history(owner, "resp_2"))
        assert [i.id for i in history] == ["msg_a", "msg_b", "msg_c", "msg_d"]
        again = other.run(transfer.import_lines(target, first.splitlines(keepends=True)))
        assert (again.responses, again.skipped_responses) == (0, 3)
    finally:
        other.close()
        drop_store(target)
