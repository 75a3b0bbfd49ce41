"""Store facts become API errors in one table (service/store_errors.py), on both backends."""

from __future__ import annotations

import inspect

import pytest

from convostore import errors
from convostore.service import store_errors
from convostore.store import base
from convostore.store.base import StoreError, StoreUnavailable
from tests.support import Api


def store_facts() -> list[type[StoreError]]:
    return [
        kind
        for _, kind in inspect.getmembers(base, inspect.isclass)
        # StoreUnavailable and its kinds (OutcomeUnknown) are the database being down or
        # cut off, answered 503 where they are caught: not facts about the data.
        if issubclass(kind, StoreError)
        and kind is not StoreError
        and not issubclass(kind, StoreUnavailable)
    ]


@pytest.mark.parametrize("kind", store_facts(), ids=lambda k: k.__name__)
def test_every_store_fact_has_a_row(kind: type[StoreError]) -> None:
    assert kind in store_errors.STORE_ERRORS, f"add {kind.__name__} to STORE_ERRORS"
    error = store_errors.api_error(kind("conv_x"))
    assert isinstance(error, errors.ApiError) and 400 <= error.status < 500


def test_the_most_specific_row_wins_and_unavailable_is_not_a_fact() -> None:
    assert (
        store_errors.api_error(base.AfterMissing("msg_1")).message
        == "No item found with id 'msg_1'"
    )
    assert (
        store_errors.api_error(base.SearchAfterMissing("c/i")).message
        == "No search result found with id 'c/i'"
    )
    assert store_errors.api_error(StoreUnavailable("down")) is None
    duplicate = store_errors.api_error(base.ItemConflict("x"), store_errors.WRITE_BACK_ERRORS)
    assert duplicate is not None and duplicate.param == "input"


def test_real_store_facts_are_answered_with_the_ids_asked_for(api: Api) -> None:
    """Each store raises the fact with the id the request named; the table words it."""
    conversation_id = api.new_conversation(items=[{"role": "user", "content": "hi"}])
    missing = api.get("/v1/conversations/conv_nope/items")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Conversation with id 'conv_nope' not found."
    item = api.get(f"/v1/conversations/{conversation_id}/items/msg_nope")
    assert item.json()["error"]["message"] == "Item with id 'msg_nope' not found in conversation."
    after = api.get(f"/v1/conversations/{conversation_id}/items", params={"after": "msg_gone"})
    assert (after.status_code, after.json()["error"]["param"]) == (404, "after")
    listed = api.get("/v1/conversations", params={"after": "conv_gone"})
    assert listed.json()["error"]["message"] == "No conversation found with id 'conv_gone'"
    searched = api.get(
        "/v1/conversations/search", params={"q": "hi", "after": f"{conversation_id}/msg_gone"}
    )
    assert (
        searched.json()["error"]["message"]
        == f"No search result found with id '{conversation_id}/msg_gone'"
    )
