"""Keys newer than the server's schemas (CONTRACT.md D9 revised) and the SDK drift of
December 2026 (D23), through the real API on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Api

ALL = {"include[]": ["message.input_image.image_url", "reasoning.encrypted_content"]}

# An unknown key at every depth of a message: the item, a part, a nested object, a list.
NESTED = {
    "type": "message",
    "role": "user",
    "future_item_field": {"a": [1, 2.5, None, True, "x"], "b": {}},
    "content": [
        {
            "type": "input_text",
            "text": "hello",
            "future_part_field": "kept",
            "prompt_cache_breakpoint": {"mode": "explicit", "future_nested": [{"z": 1}]},
        }
    ],
}


def _round_trip(api: Api, item: dict[str, Any]) -> dict[str, Any]:
    cid = api.new_conversation()
    (created,) = api.add(cid, item, params=ALL)
    got = api.get(f"/v1/conversations/{cid}/items/{created['id']}", params=ALL).json()
    assert got == created
    assert api.all_items(cid, **ALL) == [created]
    return created


def test_unknown_nested_keys_round_trip_verbatim(api: Api) -> None:
    created = _round_trip(api, NESTED)
    assert created["future_item_field"] == NESTED["future_item_field"]
    part = created["content"][0]
    assert part["future_part_field"] == "kept"
    assert part["prompt_cache_breakpoint"] == {"mode": "explicit", "future_nested": [{"z": 1}]}
    # Also at creation of a conversation, and in the raw bytes as sent (key order kept).
    conv = api.post("/v1/conversations", json={"items": [NESTED]}).json()["id"]
    raw = api.get(f"/v1/conversations/{conv}/items").content
    assert b'"future_item_field":{"a":[1,2.5,null,true,"x"],"b":{}}' in raw


def test_known_keys_are_still_validated_next_to_kept_ones(api: Api) -> None:
    cid = api.new_conversation()
    bad = {**NESTED, "content": [{"type": "input_text", "text": 5, "future": 1}]}
    error = api.post(f"/v1/conversations/{cid}/items", json={"items": [bad]}).json()["error"]
    assert (error["param"], error["code"]) == ("items[0].content[0].text", "invalid_type")
    assert api.all_items(cid) == []


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"type": "brand_new_item", "future": 1}, "items[0]"),
        ({"role": "user", "content": [{"type": "input_hologram", "text": "x"}]}, "items[0].content[0]"),
    ],
)
def test_unknown_types_stay_refused(api: Api, item: dict[str, Any], param: str) -> None:
    cid = api.new_conversation()
    error = api.post(f"/v1/conversations/{cid}/items", json={"items": [item]}).json()["error"]
    assert (error["param"], error["code"]) == (param, "invalid_value")


def test_unknown_top_level_keys_stay_refused(api: Api) -> None:
    cid = api.new_conversation()
    for path, body in (
        ("/v1/conversations", {"items": [], "metdata": {}}),
        (f"/v1/conversations/{cid}/items", {"items": [], "extra": 1}),
        (f"/v1/conversations/{cid}", {"metadata": {}, "extra": 1}),
    ):
        error = api.post(path, json=body).json()["error"]
        assert error["code"] == "unknown_parameter", (path, error)


def test_refuse_setting_restores_strict_refusal(strict_api: Api) -> None:
    strict = strict_api
    cid = strict.new_conversation()
    for item, param in (
        (NESTED, "items[0].future_item_field"),
        ({"role": "user", "content": [{"type": "input_text", "text": "x", "y": 1}]}, "items[0].content[0].y"),
    ):
        error = strict.post(f"/v1/conversations/{cid}/items", json={"items": [item]}).json()["error"]
        assert error == {
            "message": f"Unknown parameter: '{param}'.",
            "type": "invalid_request_error",
            "param": param,
            "code": "unknown_parameter",
        }
    assert strict.all_items(cid) == []
    # What the newest SDK knows is known, not merely kept: accepted under refuse too.
    strict.add(cid, {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "async": False})


# The seven requests of issue 14 that openai 3.63 / openai-agents 0.24 send.
DRIFT_ITEMS = {
    "function_call_async": {
        "type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}", "async": False,
    },
    "custom_tool_call_async": {
        "type": "custom_tool_call", "call_id": "call_2", "name": "g", "input": "x", "async": None,
    },
    "prompt_cache_breakpoint_ttl": {
        "role": "user",
        "content": [{"type": "input_text", "text": "hi", "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "12h"}}],
    },
    "image_generation_call_fields": {
        "type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "aGk=",
        "action": "edit", "background": "transparent", "output_format": "webp", "quality": "high",
        "revised_prompt": "a cat", "size": "1024x1536",
    },
    "web_search_call_incomplete": {
        "type": "web_search_call", "id": "ws_1", "status": "incomplete",
        "action": {"type": "search", "query": "q"},
    },
    "configuration_update": {
        "type": "configuration_update", "reasoning": {"effort": "high"}, "text": {"format": {"type": "text"}},
    },
    "custom_tool_call_status": {
        "type": "custom_tool_call", "call_id": "call_3", "name": "g", "input": "x", "status": "completed",
    },
}


@pytest.mark.parametrize("name", sorted(DRIFT_ITEMS))
def test_what_the_newest_sdk_sends_is_accepted_and_returned(api: Api, name: str) -> None:
    sent = DRIFT_ITEMS[name]
    created = _round_trip(api, sent)
    for key, value in sent.items():
        if key == "content":
            assert created["content"][0]["prompt_cache_breakpoint"] == value[0]["prompt_cache_breakpoint"]
        else:
            assert created[key] == value, key


def test_configuration_update_ids(api: Api) -> None:
    created = _round_trip(api, {"type": "configuration_update", "reasoning": {"effort": "low"}})
    assert created["id"].startswith("cfgu_") and len(created["id"]) == 5 + 48
    assert set(created) == {"id", "type", "reasoning"}
    text = {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True}}
    mine = _round_trip(api, {"type": "configuration_update", "id": "cfgu_mine", "text": text})
    assert mine == {"id": "cfgu_mine", "type": "configuration_update", "text": text}
    cid = api.new_conversation()
    bad = {"type": "configuration_update", "reasoning": {"effort": "extreme"}}
    error = api.post(f"/v1/conversations/{cid}/items", json={"items": [bad]}).json()["error"]
    assert (error["param"], error["code"]) == ("items[0].reasoning.effort", "invalid_value")


def test_safety_identifier_is_not_an_item_field_but_newer_enums_are_checked(api: Api) -> None:
    cid = api.new_conversation()
    bad = {**DRIFT_ITEMS["web_search_call_incomplete"], "status": "paused"}
    error = api.post(f"/v1/conversations/{cid}/items", json={"items": [bad]}).json()["error"]
    assert (error["param"], error["code"]) == ("items[0].status", "invalid_value")
    assert "'incomplete'" in error["message"]


def test_kept_values_are_bounded_by_the_body_nesting_cap(api: Api) -> None:
    """A kept value is bounded like any JSON of a body (``--max-json-depth``, 64 by
    default): the body, its items array and the item take 3 levels."""
    cid = api.new_conversation()
    deep: object = "leaf"
    for _ in range(61):
        deep = [deep]
    ok = {"role": "user", "content": "x", "future": deep}
    assert api.add(cid, ok)[0]["future"] == deep
    error = api.post(f"/v1/conversations/{cid}/items", json={"items": [{**ok, "future": [deep]}]}).json()["error"]
    assert error["code"] == "invalid_value"
    assert "nested deeper than 64 levels" in error["message"]
    assert len(api.all_items(cid)) == 1
