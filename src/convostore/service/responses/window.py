"""The model's view of a conversation when it must fit the context window (issue 18).

With ``truncation: "auto"`` or ``context_management``, a turn never reads the whole
conversation: :func:`read_recent` pages through the items newest first (the items index,
``order=desc``), and stops at the latest compaction item convostore made (the view starts
there) or once it holds about twice the window in estimated tokens, whichever comes first.
The work per turn is bounded by the window, not by the conversation's length.

:func:`fit` then leaves out the oldest items until history plus input fits the budget
(window minus ``max_output_tokens``), cutting only where no ``function_call`` is parted
from its ``function_call_output`` and no ``reasoning`` item from the item it belongs to
(the one after it), and preferring cuts before a user message (a chat template may insist
that a user message comes first). This turn's input is never cut: if it alone does not
fit, the answer is OpenAI's 400 ``context_length_exceeded``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from convostore import errors
from convostore.service.responses import compaction, history
from convostore.store.base import Owner, Store, StoredItem
from convostore.upstream.tokens import BYTES_PER_TOKEN, MESSAGE_OVERHEAD

READ_FACTOR = 2  # read back to about this many windows (in estimated tokens)
_NOT_TEXT = frozenset(("id", "type", "status", "call_id", "role", "created_by"))


@dataclass(frozen=True, slots=True)
class Recent:
    """The newest items of a conversation, oldest first; ``complete`` when they start at
    the conversation's first item or at its latest compaction (nothing older is needed)."""

    items: list[StoredItem]
    complete: bool


def too_long() -> errors.InvalidRequest:
    return errors.InvalidRequest(
        "Your input exceeds the context window of this model. Please adjust your input and "
        "try again.",
        param="input",
        code="context_length_exceeded",
    )


def item_text(item: Any) -> str:
    """What of an item the model reads: its strings, ids and tags left out."""
    out: list[str] = []
    _strings(item, out)
    return "\n".join(out)


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key not in _NOT_TEXT:
                _strings(inner, out)
    elif isinstance(value, list):
        for inner in value:
            _strings(inner, out)


def _rough(item: StoredItem) -> int:
    """A cheap upper bound of an item's tokens, for deciding how far back to read."""
    return len(item.body) // BYTES_PER_TOKEN + MESSAGE_OVERHEAD


async def read_recent(store: Store, owner: Owner, conversation_id: str, window: int) -> Recent:
    """The conversation's newest items back to its latest compaction, or to about
    :data:`READ_FACTOR` windows' worth of tokens, oldest first."""
    read = await history.read_items(
        store,
        owner,
        conversation_id,
        descending=True,
        last=compaction.is_ours_stored,
        weigh=_rough,
        limit=window * READ_FACTOR,
    )
    return Recent(read.items[::-1], not read.cut)


def since_compaction(history: list[StoredItem]) -> list[StoredItem]:
    """The items from the latest compaction convostore made on (all when there is none)."""
    for index in range(len(history) - 1, -1, -1):
        item = history[index]
        if item.type == "compaction" and compaction.is_ours_stored(item):
            return history[index:]
    return history


def valid_cuts(
    history: Sequence[dict[str, Any]], inputs: Sequence[dict[str, Any]], complete: bool
) -> list[bool]:
    """``ok[i]``: the history may be sent from item ``i`` on (``i == len``: none of it)."""
    n = len(history)
    calls: dict[str, int] = {}
    blocked = [0] * (n + 2)  # a difference array over cut positions
    orphan = -1
    last_output: dict[str, int] = {}
    for index, item in enumerate(history):
        kind = item.get("type")
        if kind == "function_call":
            calls.setdefault(item.get("call_id", ""), index)
        elif kind == "function_call_output":
            call_id = item.get("call_id", "")
            if call_id in calls:
                last_output[call_id] = index
            else:
                orphan = index
    for item in inputs:
        if item.get("type") == "function_call_output" and item.get("call_id") in calls:
            last_output[item["call_id"]] = n
    for call_id, start in calls.items():
        end = last_output.get(call_id)
        if end is not None and end > start:  # cuts in (start, end] part the call from it
            blocked[start + 1] += 1
            blocked[end + 1] -= 1
    ok: list[bool] = []
    running = 0
    for cut in range(n + 1):
        running += blocked[cut]
        good = running == 0 and cut > orphan
        if cut > 0 and history[cut - 1].get("type") == "reasoning":
            good = False
        if cut == 0 and not complete:
            good = False
        ok.append(good)
    return ok


def answered_from(
    history: Sequence[dict[str, Any]], inputs: Sequence[dict[str, Any]], complete: bool
) -> int:
    """Where the history must start to hold the ``function_call`` items whose outputs
    ``inputs`` give (the latest allowed cut before them); ``len(history)`` if none."""
    given = {item.get("call_id") for item in inputs if item.get("type") == "function_call"}
    wanted = {
        item.get("call_id") for item in inputs if item.get("type") == "function_call_output"
    } - given
    first = next(
        (
            index
            for index, item in enumerate(history)
            if item.get("type") == "function_call" and item.get("call_id") in wanted
        ),
        None,
    )
    if first is None:
        return len(history)
    ok = valid_cuts(history, inputs, complete)
    return max((cut for cut in range(first + 1) if ok[cut]), default=0)


def fit(
    history: Sequence[dict[str, Any]],
    tokens: Sequence[int],
    inputs: Sequence[dict[str, Any]],
    fixed: int,
    budget: int,
    complete: bool,
) -> int:
    """Where the history sent starts: the oldest allowed cut whose items fit ``budget``
    beside ``fixed`` tokens (instructions, tools, input); 400 when none does."""
    n = len(history)
    ok = valid_cuts(history, inputs, complete)
    suffix = [0] * (n + 1)
    for index in range(n - 1, -1, -1):
        suffix[index] = suffix[index + 1] + tokens[index]
    fitting = [cut for cut in range(n + 1) if ok[cut] and fixed + suffix[cut] <= budget]
    if not fitting:
        raise too_long()
    if fitting[0] == 0:
        return 0
    at_user = [
        cut
        for cut in fitting
        if cut < n and history[cut].get("type") == "message" and history[cut].get("role") == "user"
    ]
    return at_user[0] if at_user else fitting[0]


def decode(items: Sequence[StoredItem]) -> list[dict[str, Any]]:
    return [orjson.loads(item.body) for item in items]
