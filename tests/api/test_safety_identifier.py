"""``safety_identifier`` on create conversation (CONTRACT.md D22), on both backends."""

from __future__ import annotations

from convostore.service import transfer
from tests.support import Api


def _listed(api: Api, conversation_id: str) -> dict[str, object]:
    page = api.get("/v1/conversations", params={"limit": 100}).json()["data"]
    (entry,) = [c for c in page if c["id"] == conversation_id]
    return entry


def test_stored_not_on_the_wire_shown_to_operators(api: Api) -> None:
    created = api.post("/v1/conversations", json={"safety_identifier": "user-123", "metadata": {"a": "b"}})
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == {"id", "object", "created_at", "metadata"}  # the SDK's Conversation
    cid = body["id"]
    assert set(api.get(f"/v1/conversations/{cid}").json()) == {"id", "object", "created_at", "metadata"}
    assert _listed(api, cid)["safety_identifier"] == "user-123"
    # Updating metadata keeps it.
    api.post(f"/v1/conversations/{cid}", json={"metadata": {}})
    assert _listed(api, cid)["safety_identifier"] == "user-123"
    dumped = b"".join(api.run(_collect(api, [cid])))
    assert b'"safety_identifier":"user-123"' in dumped
    plain = api.new_conversation(safety_identifier=None)
    assert _listed(api, plain)["safety_identifier"] is None
    assert b"safety_identifier" not in b"".join(api.run(_collect(api, [plain])))


async def _collect(api: Api, ids: list[str]) -> list[bytes]:
    return [chunk async for chunk in transfer.export_lines(api.app.store, ids=ids)]


def test_bounds(api: Api) -> None:
    assert api.new_conversation(safety_identifier="s" * 64)
    for value, code, message in (
        (
            "s" * 65,
            "string_above_max_length",
            "Invalid 'safety_identifier': string too long. Expected a string with maximum length 64, "
            "but got a string with length 65 instead.",
        ),
        (5, "invalid_type", "Invalid type for 'safety_identifier': expected a string, but got an integer instead."),
    ):
        error = api.post("/v1/conversations", json={"safety_identifier": value}).json()["error"]
        assert error == {"message": message, "type": "invalid_request_error", "param": "safety_identifier", "code": code}
    # Only on create: the update body does not take it.
    cid = api.new_conversation()
    error = api.post(f"/v1/conversations/{cid}", json={"metadata": {}, "safety_identifier": "x"}).json()["error"]
    assert error["code"] == "unknown_parameter"
