"""Retention (docs/retention.md): purges by last activity, per project, in bounded
batches, dry runs, the CLI and the server's background purge, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convostore.service import retention, transfer
from convostore.store.base import (
    ConversationDump,
    ConversationRow,
    ConversationScan,
    Owner,
    Store,
    StoredItem,
)
from tests.support import Api, make_app

NOW = int(time.time())
DAY = 86_400


def old_conversation(store: Store, api: Api, conversation_id: str, days_idle: float, project: str = "default", items: int = 2) -> None:
    body = [
        StoredItem(f"msg_{conversation_id}_{n}", "message", f'{{"id":"msg_{conversation_id}_{n}","type":"message","role":"user","status":"completed","content":[{{"type":"input_text","text":"purgeable words {n}"}}]}}'.encode(), 0)
        for n in range(items)
    ]
    when = int(NOW - days_idle * DAY)
    dump = ConversationDump(Owner(project, ""), ConversationRow(conversation_id, when, b'{"kind":"old"}'), when, body)
    assert api.run(store.import_conversations([dump])) == []


def ids(api: Api, project: str = "default") -> list[str]:
    store = api.app.store
    found = api.run(store.scan_conversations(ConversationScan(0, 1000, project=project)))
    return [s.conversation.id for s in found]


def test_rules() -> None:
    assert retention.rules(0, {}) == []
    assert retention.rules(30, {}) == [retention.Rule(None, 30)]
    assert retention.rules(30, {"acme": 7, "keep": 0}) == [
        retention.Rule("acme", 7),
        retention.Rule(None, 30, ("acme", "keep")),
    ]
    assert retention.rules(0, {"acme": 7}) == [retention.Rule("acme", 7)]


def test_dry_run_then_purge(api: Api) -> None:
    store = api.app.store
    old_conversation(store, api, "conv_old1", 40)
    old_conversation(store, api, "conv_old2", 31, items=5)
    old_conversation(store, api, "conv_recent", 29)
    fresh = api.new_conversation(items=[{"role": "user", "content": "purgeable words too"}])
    purger = retention.Purger(store, retention.rules(30, {}), pause=0)

    dry = api.run(purger.run(dry_run=True))
    assert dry.dry_run and (dry.conversations, dry.items) == (2, 7)
    assert dry.by_project["default"].oldest_activity == NOW - 40 * DAY
    assert sorted(ids(api)) == sorted(["conv_old1", "conv_old2", "conv_recent", fresh])

    done = api.run(purger.run())
    assert (done.conversations, done.items) == (2, 7)
    assert sorted(ids(api)) == sorted(["conv_recent", fresh])
    assert api.get("/v1/conversations/conv_old1").status_code == 404
    # gone from the search index and the metadata filter as well
    found = api.get("/v1/conversations/search", params={"q": "purgeable", "limit": 100}).json()["data"]
    assert {h["conversation_id"] for h in found} == {"conv_recent", fresh}
    listed = api.get("/v1/conversations", params={"metadata[kind]": "old"}).json()["data"]
    assert [c["id"] for c in listed] == ["conv_recent"]
    assert api.run(purger.run()).conversations == 0


def test_activity_keeps_a_conversation(api: Api) -> None:
    store = api.app.store
    old_conversation(store, api, "conv_revived", 50)
    api.add("conv_revived", {"role": "user", "content": "I am back"})  # updated_at = now
    old_conversation(store, api, "conv_renamed", 50)
    api.post("/v1/conversations/conv_renamed", json={"metadata": {"k": "v"}})
    old_conversation(store, api, "conv_pruned", 50)
    api.delete("/v1/conversations/conv_pruned/items/msg_conv_pruned_0")
    old_conversation(store, api, "conv_idle", 50)
    report = api.run(retention.Purger(store, retention.rules(30, {}), pause=0).run())
    assert report.conversations == 1
    assert sorted(ids(api)) == ["conv_pruned", "conv_renamed", "conv_revived"]


def test_a_delete_rechecks_activity(api: Api) -> None:
    store = api.app.store
    old_conversation(store, api, "conv_race", 40)
    (scanned,) = api.run(store.scan_conversations(ConversationScan(0, 10, updated_before=NOW - 30 * DAY)))
    api.add("conv_race", {"role": "user", "content": "just in time"})  # between the scan and the delete
    assert api.run(store.purge_conversations([scanned.pk], NOW - 30 * DAY)) == []
    assert ids(api) == ["conv_race"]


def test_per_project_rules(api: Api) -> None:
    store = api.app.store
    for project in ("acme", "beta", "default"):
        old_conversation(store, api, f"conv_{project}_15", 15, project)
        old_conversation(store, api, f"conv_{project}_45", 45, project)
    rules = retention.rules(30, {"acme": 10, "beta": 0})
    report = api.run(retention.Purger(store, rules, pause=0).run())
    assert {p: g.conversations for p, g in report.by_project.items()} == {"acme": 2, "default": 1}
    assert ids(api, "acme") == []
    assert sorted(ids(api, "beta")) == ["conv_beta_15", "conv_beta_45"]
    assert ids(api, "default") == ["conv_default_15"]


def test_bounded_batches(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    store = api.app.store
    for n in range(13):
        old_conversation(store, api, f"conv_b{n:02}", 100, items=n % 4)
    monkeypatch.setattr(retention, "MAX_BATCH_ITEMS", 4)
    sizes: list[int] = []
    original = store.purge_conversations

    async def spy(pks: list[int], updated_before: int) -> list[int]:
        sizes.append(len(pks))
        return await original(pks, updated_before)

    monkeypatch.setattr(store, "purge_conversations", spy)
    report = api.run(retention.Purger(store, retention.rules(30, {}), batch_size=3, pause=0).run())
    assert report.conversations == 13 and ids(api) == []
    assert max(sizes) <= 3 and len(sizes) >= 5


def test_background_purge_in_the_server(store: Store) -> None:
    app = make_app(store, retention_days=1, purge_interval=0.05)
    api = Api(app)
    try:
        old_conversation(store, api, "conv_stale", 3)
        kept = api.new_conversation()
        deadline = time.monotonic() + 10
        counted = "convostore_purged_conversations_total 1.0"
        while counted not in api.get("/metrics").text and time.monotonic() < deadline:
            api.run(asyncio.sleep(0.05))  # the server's loop runs while the test waits
        assert counted in api.get("/metrics").text
        assert ids(api) == [kept]
        assert app.purger is not None and not app.purger.done()
    finally:
        api.close()
    assert app.purger is None


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convostore", *args], capture_output=True, text=True, timeout=120, check=False)


def test_cli_purge(api: Api) -> None:
    store = api.app.store
    old_conversation(store, api, "conv_cli_old", 10, "acme", items=3)
    old_conversation(store, api, "conv_cli_new", 1, "acme")
    db = str(getattr(store, "dsn", None) or getattr(store, "path"))  # noqa: B009
    api.run(store.close())
    try:
        refused = cli("purge", "--db", db)
        assert refused.returncode == 2 and "no retention is set" in refused.stderr
        dry = cli("purge", "--db", db, "--retention-projects", "acme=5", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "acme: would delete 1 conversations (3 items)" in dry.stdout
        assert "total: would delete 1 conversations (3 items)" in dry.stdout
        # Not a terminal and no --yes: it says what it would delete, and deletes nothing.
        unasked = cli("purge", "--db", db, "--retention-projects", "acme=5")
        assert unasked.returncode == 1, unasked.stderr
        assert "acme: would delete 1 conversations (3 items)" in unasked.stdout
        assert "not deleting 1 conversations without a confirmation" in unasked.stderr
        assert "--yes" in unasked.stderr and "Traceback" not in unasked.stderr
        api.run(store.open())
        assert sorted(ids(api, "acme")) == ["conv_cli_new", "conv_cli_old"]
        api.run(store.close())
        real = cli("purge", "--db", db, "--retention-projects", "acme=5", "--yes")
        assert real.returncode == 0, real.stderr
        assert "total: deleted 1 conversations (3 items)" in real.stdout
        assert "deleted 1 of 1 conversations" in real.stderr  # progress, off a terminal
    finally:
        api.run(store.open())
    assert ids(api, "acme") == ["conv_cli_new"]


def test_settings_refuse_bad_rules() -> None:
    from convostore.settings import Settings, SettingsError

    for bad in ("acme", "acme=x", "=3", "acme=-1"):
        with pytest.raises(SettingsError):
            Settings(retention_projects=bad)
    with pytest.raises(SettingsError):
        Settings(retention_days=-1)
    assert Settings(retention_projects=" acme = 30 , beta=0 ").retention_by_project == {"acme": 30, "beta": 0}


def test_export_of_a_purged_store_is_consistent(api: Api) -> None:
    store = api.app.store
    old_conversation(store, api, "conv_gone", 40)
    kept = api.new_conversation(items=[{"role": "user", "content": "x"}])
    api.run(retention.Purger(store, retention.rules(30, {}), pause=0).run())

    async def lines() -> list[bytes]:
        return [chunk async for chunk in transfer.export_lines(store)]

    assert [line.count(b"\n") for line in api.run(lines())] == [1]
    assert kept.encode() in api.run(lines())[0]


def test_background_purge_in_a_real_server(tmp_path: Path) -> None:
    """The served app (uvicorn's lifespan) starts the purge and stops it on shutdown."""
    import httpx

    from convostore.store.sqlite import SQLiteStore
    from tests.support import running_server

    db = tmp_path / "served.db"
    line = (
        b'{"object":"conversation.export","version":1,"id":"conv_stale","project":"default",'
        b'"user_key":"","created_at":1000,"updated_at":1000,"metadata":{},"items":[]}\n'
    )

    async def prepare() -> None:
        store = SQLiteStore(db)
        await store.open()
        await store.migrate()
        await transfer.import_lines(store, [line], require_end=False)
        await store.close()

    asyncio.run(prepare())
    with running_server(db, "--retention-days", "1", "--purge-interval", "0.1") as url:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if httpx.get(f"{url}/conversations/conv_stale").status_code == 404:
                break
            time.sleep(0.1)
        assert httpx.get(f"{url}/conversations/conv_stale").status_code == 404


def test_stored_responses_go_by_whole_chains(api: Api) -> None:
    """Issue 17: a chain of stored responses goes when its newest response is older than
    the limit, never in part; a conversation the responses wrote to stays."""
    from convostore.store.base import ResponseDump, ResponseRecord

    store = api.app.store

    def response(response_id: str, previous: str | None, root: str, days_idle: float, project: str = "default") -> ResponseDump:
        when = int(NOW - days_idle * DAY)
        record = ResponseRecord(response_id, when, "completed", b'{"object":"response"}', previous)
        item = StoredItem(f"msg_{response_id}", "message", b'{"id":"msg_%s"}' % response_id.encode(), 0)
        return ResponseDump(Owner(project, ""), record, when, root, [item], [])

    dumps = [
        response("resp_old", None, "resp_old", 40),
        response("resp_old_2", "resp_old", "resp_old", 40),
        # A chain begun long ago and continued yesterday: the root's activity is recent.
        response("resp_kept", None, "resp_kept", 1),
        response("resp_kept_2", "resp_kept", "resp_kept", 40),
        response("resp_other", None, "resp_other", 40, project="keep"),
    ]
    assert api.run(store.import_responses(dumps)) == []
    purger = retention.Purger(store, retention.rules(30, {"keep": 0}), pause=0)
    report = api.run(purger.run())
    assert report.responses == 2
    owner = Owner("default", "")
    for gone in ("resp_old", "resp_old_2"):
        with pytest.raises(Exception, match=gone):
            api.run(store.get_response(owner, gone))
    for kept, project in (("resp_kept", "default"), ("resp_kept_2", "default"), ("resp_other", "keep")):
        assert api.run(store.get_response(Owner(project, ""), kept)).record.id == kept
    assert api.run(purger.run(dry_run=True)).responses == 0
