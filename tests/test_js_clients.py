"""The TypeScript clients against a real ``convostore serve``: ``openai`` 7.60 (npm) and
``@openai/agents`` 0.20's ``OpenAIConversationsSession`` (tests/js/clients.mjs).

They are installed from the npm registry at the versions pinned in tests/js/package.json
and package-lock.json (``.ci/run`` runs ``npm ci --prefix tests/js``). Node.js and the
installed packages are required under CI (``CI`` set): there a missing one fails the test,
elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import spec_schema
from tests.support import running_server

JS = Path(__file__).resolve().parent / "js"


def _require(ok: bool, why: str) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI runs the TypeScript client tests and they cannot run: {why}")
    pytest.skip(why)


def _pinned(package: str) -> str:
    version: str = json.loads((JS / "package.json").read_text())["dependencies"][package]
    return version


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    _require(found is not None, "node is not installed (Debian: apt-get install nodejs)")
    assert found is not None
    for package in ("openai", "@openai/agents"):
        manifest = JS / "node_modules" / package / "package.json"
        _require(manifest.exists(), f"{package} is not installed: npm ci --prefix tests/js")
        installed = json.loads(manifest.read_text())["version"]
        assert installed == _pinned(package), f"{package} {installed} installed, {_pinned(package)} pinned: npm ci --prefix tests/js"
    return found


def run_clients(node: str, tmp_path: Path) -> dict[str, Any]:
    with running_server(tmp_path / "convostore.db") as base_url:
        done = subprocess.run(
            [node, str(JS / "clients.mjs"), base_url], cwd=JS, capture_output=True, text=True, timeout=120, check=False
        )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_typescript_sdk_and_agents_session(node: str, tmp_path: Path) -> None:
    seen = run_clients(node, tmp_path)
    spec_schema.validate("ConversationResource", seen["created"])
    assert seen["created"]["metadata"] == {"topic": "js"}
    assert seen["updated"]["metadata"] == {"topic": "ts"}
    # What the TypeScript SDK sends of the newest fields comes back (D23).
    function_call, _, cached, update = seen["added"]
    assert function_call["async"] is False
    assert cached["content"][0]["prompt_cache_breakpoint"] == {"mode": "explicit", "ttl": "30m"}
    assert update["type"] == "configuration_update" and update["id"].startswith("cfgu_")
    # Auto-pagination through `after`, 7 at a time: every item once, in order.
    listed = seen["listed"]
    assert len(listed) == 1 + 4 + 25
    assert len({item["id"] for item in listed}) == len(listed)
    for item in listed:
        spec_schema.validate_item(item)
    assert [i["content"][0]["text"] for i in listed[5:]] == [f"reply {n}" for n in range(25)]
    assert seen["not_found"]["message"] == "Conversation with id 'conv_missing' not found."
    # The agents session: its compaction item is stored and read back, and the history
    # after the latest one is what the runner reads.
    assert seen["session_types"] == ["message", "message", "compaction", "message", "message"]
    assert seen["compaction"]["encrypted_content"] == "gAAAA-compacted-history"
    assert seen["compaction"]["id"].startswith("cmp_")
    assert seen["since_compaction"] == ["after compaction", "fresh"]
    assert seen["last_two"] == ["message", "message"]
    assert (seen["popped"], seen["after_pop"]) == ("fresh", 4)
