"""One complete example of EVERY member of the pinned SDK's input union, posted and read back.

The examples are generated from ``openai``'s ``ResponseInputItemParam`` (every property
present, the first branch of each union: scripts/sdk_types.py), so a member or field the
SDK gains is exercised the day the pin moves. What comes back must hold every field as
sent, and parse with the SDK's own ``ConversationItem`` model.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import TypeAdapter

from convostore import ids
from convostore.items.include import VALUES as INCLUDE_VALUES
from tests.items.test_item_types import keeps
from tests.items.test_registry import script
from tests.support import Api

sdk = script("sdk_types")
DOC = sdk.Document(sdk.union("input"))
ALL_INCLUDES = {"include[]": list(INCLUDE_VALUES)}


def _value(name: str, schema: dict[str, Any]) -> str | None:
    # Where the excerpt constrains a string the SDK leaves free.
    if name == "tunnel_id":
        return "tunnel_" + "a" * 32
    if name == "call_id":
        return "call_" + uuid.uuid4().hex[:12]
    return None


EXAMPLES = sdk.Examples(DOC, _value)
MEMBERS = [(name, member) for name, member in DOC.members()]


def _example(name: str, member: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    tag = (sdk.type_values(DOC, member) or ["?"])[0]
    item: dict[str, Any] = EXAMPLES.complete(member)
    if "id" in item:
        prefix = ids.REQUIRED_CLIENT_PREFIXES.get(tag) or ids.ITEM_PREFIXES.get(tag, "x")
        item["id"] = f"{prefix}_{uuid.uuid4().hex}"
    return tag, item


def test_the_union_is_what_the_contract_lists() -> None:
    tags = {(sdk.type_values(DOC, m) or ["?"])[0] for _, m in MEMBERS}
    assert {"configuration_update", "compaction_trigger", "item_reference", "message"} <= tags
    assert len(MEMBERS) >= 33


@pytest.mark.parametrize(("name", "member"), MEMBERS, ids=[name for name, _ in MEMBERS])
def test_every_member_round_trips(api: Api, name: str, member: dict[str, Any]) -> None:
    tag, item = _example(name, member)
    cid = api.new_conversation()
    if tag == "item_reference":
        (target,) = api.add(api.new_conversation(), {"role": "user", "content": "referenced"})
        item = {**item, "id": target["id"]}
    response = api.post(f"/v1/conversations/{cid}/items", json={"items": [item]}, params=ALL_INCLUDES)
    if tag == "compaction_trigger":
        # Validated like the rest, then refused: an instruction to the Responses API that
        # ConversationItem has no member for (CONTRACT.md §4.1).
        error = response.json()["error"]
        assert (error["param"], error["code"]) == ("items[0].type", "invalid_value"), error
        assert "instructions to the Responses API" in error["message"]
        return
    assert response.status_code == 200, (item, response.text)
    (created,) = response.json()["data"]
    if tag == "item_reference":
        assert created == target
        return
    assert keeps(item, created), (item, created)
    read = api.get(f"/v1/conversations/{cid}/items/{created['id']}", params=ALL_INCLUDES).json()
    assert read == created
    parsed = TypeAdapter(_conversation_item()).validate_python(read)
    assert parsed.type == tag


def _conversation_item() -> Any:
    from openai.types.conversations.conversation_item import ConversationItem

    return ConversationItem
