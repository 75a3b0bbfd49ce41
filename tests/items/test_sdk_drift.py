"""The drift check (scripts/sdk_drift.py) against the pinned SDK: nothing the SDK can send
or read is refused, and the check does see a missing type, field or value."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest

from convostore.items.registry import load_schemas
from tests import spec_schema
from tests.items.test_registry import ROOT, script


@pytest.fixture(scope="module")
def drift():  # type: ignore[no-untyped-def]
    return script("sdk_drift")


def labels(drift: Any, schemas: dict[str, Any]) -> dict[str, str]:
    return {p.label: p.message for p in drift.Drift(schemas).run()}


def test_the_server_accepts_everything_the_pinned_sdk_has(drift: Any) -> None:
    problems = drift.Drift().run()
    assert problems == [], "\n".join(map(str, problems))


def test_the_command_says_so() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sdk_drift.py")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "no drift"


def test_a_missing_field_value_or_type_is_reported(drift: Any) -> None:
    schemas = copy.deepcopy(load_schemas())
    del schemas["FunctionToolCall"]["properties"]["async"]
    schemas["WebSearchToolCall"]["properties"]["status"]["enum"].remove("incomplete")
    schemas["InputItem"]["oneOf"] = [m for m in schemas["InputItem"]["oneOf"] if "ConfigurationUpdate" not in m["$ref"]]
    found = labels(drift, schemas)
    assert found["function_call.async"] == "Unknown parameter: 'items[0].async'."
    assert found["web_search_call.status='incomplete'"].startswith("Invalid value: 'incomplete'.")
    assert found["configuration_update"].startswith("Invalid value: 'configuration_update'.")
    # The output side is checked too: ConversationItem's members against the stored form.
    assert "web_search_call.status='incomplete'" in {p.label for p in drift.Drift(schemas).run() if p.where == "output"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sdk_drift.py"), "--schemas", "/dev/stdin"],
        input=json.dumps(schemas), capture_output=True, text=True, check=False,
    )
    assert done.returncode == 1 and "function_call.async" in done.stdout


def test_the_excerpt_alone_lags_behind_the_sdk(drift: Any) -> None:
    """What issue 14 found, seen by the check on the excerpt's schemas (before D23)."""
    gen = script("gen_item_schemas")
    excerpt = gen.build(json.loads((spec_schema.spec_dir() / spec_schema.SPEC_FILE).read_text()))
    found = labels(drift, excerpt)
    for label in (
        "function_call.async",
        "custom_tool_call.async",
        "message.content[]<input_text>.prompt_cache_breakpoint.ttl='12h'",
        "image_generation_call.action='edit'",
        "web_search_call.status='incomplete'",
        "configuration_update",
        "compaction_trigger.id",
    ):
        assert label in found or any(k.startswith(label.split("=")[0]) for k in found), label


def test_a_body_field_the_sdk_sends_is_checked(drift: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from convostore.service import bodies

    schemas = copy.deepcopy(bodies.SCHEMAS)
    del schemas["CreateConversationBody"]["properties"]["safety_identifier"]
    old = bodies.Body("CreateConversationBody", bodies.compile_bodies(schemas)["CreateConversationBody"])
    monkeypatch.setitem(drift.BODY_CHECKS, "create_conversation", old.check)
    found = labels(drift, load_schemas())
    assert found["safety_identifier"] == "Unknown parameter: 'safety_identifier'."
