"""The items a turn sends, for either upstream API, and what they are when the history
must fit the model (issue 18): ``truncation: "auto"``,
``context_management`` compaction, a ``compaction_trigger``, and
``POST /v1/responses/compact``.

The history is read bounded (:func:`.window.read_recent`) and counted
(:class:`convostore.upstream.tokens.Tokens`). When compaction is due (the view passes the
threshold, or the input holds a trigger) the model server summarises the view and this
turn's input, and a ``compaction`` item (:mod:`.compaction`) is made: it is the
response's first output item (stored after the input, before the answer, as OpenAI
orders a response's output), and the model is sent it then this turn's input verbatim;
later turns see from it on. A client chaining by hand may drop every item before it.
Then, with ``truncation: "auto"``, the oldest items that do not fit are left out of what
is sent (:func:`.window.fit`); the stored conversation never changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from convostore import errors
from convostore.service.responses import compaction, history, messages, output, window
from convostore.service.responses.request import ResponseRequest
from convostore.store.base import Owner, Store, StoredItem
from convostore.upstream import ChatUpstream, UpstreamConfig
from convostore.upstream.tokens import Tokens

THRESHOLD_SHARE = 0.8  # compact_threshold absent: compact past this share of the budget
FIXED_OVERHEAD = 16  # the generation prompt and the like, beside the messages


@dataclass(slots=True)
class Turn:
    """The items a turn sends (history then input, each named for errors; made
    chat messages by :func:`.history.turn_messages` or Responses ``input`` by
    :func:`.native.body`), and the compaction item it made (the response's first output
    item)."""

    entries: list[messages.Entry]
    compacted: StoredItem | None = None
    usage: dict[str, Any] | None = None


def managed(req: ResponseRequest) -> bool:
    return (
        req.truncation == "auto" or req.compact_threshold is not None or req.compact_at is not None
    )


class Context:
    def __init__(
        self,
        store: Store,
        config: UpstreamConfig,
        upstream: ChatUpstream | None,
        stored_form: Callable[[dict[str, Any]], StoredItem],
        calling: Callable[[Any], Any],
    ):
        self.store = store
        self.config = config
        self.upstream = upstream
        self.stored_form = stored_form
        self.calling = calling
        self.tokens = Tokens(config, lambda: self._client())

    def _client(self) -> Any:
        assert self.upstream is not None
        return self.upstream.client

    async def window(self, model: str) -> int:
        size = await self.tokens.window(model)
        if size is None:
            raise errors.InvalidRequest(
                "This server does not know the context window of model "
                f"'{model}': its model server does not report it. The operator can set it "
                "with --context-window MODEL=TOKENS.",
                param="model",
                code="context_window_unknown",
            )
        return size

    async def view(
        self, owner: Owner, req: ResponseRequest, size: int
    ) -> tuple[list[StoredItem], bool]:
        """The history from the latest compaction on, read bounded for a conversation."""
        if req.conversation_id is not None:
            recent = await window.read_recent(self.store, owner, req.conversation_id, size)
            return recent.items, recent.complete
        if req.previous_response_id is not None:
            chain = await history.read_chain(self.store, owner, req.previous_response_id)
            return window.since_compaction(chain), True
        return [], True

    async def turn(self, owner: Owner, req: ResponseRequest, inputs: list[StoredItem]) -> Turn:
        """The items the model is sent for this turn, whichever API it is sent through:
        managed (:func:`managed`) as the module says, otherwise the whole history from
        its latest compaction on, then the input."""
        if managed(req):
            return await self._managed(owner, req, inputs)
        held: list[StoredItem] = []
        if req.conversation_id is not None:
            held = await history.read_history(self.store, owner, req.conversation_id)
        elif req.previous_response_id is not None:
            held = await history.read_chain(self.store, owner, req.previous_response_id)
        entries = history.entries(held, inputs)
        entries = entries[max(0, compaction.latest([entry.item for entry in entries])) :]
        compaction.apply_updates(req, [entry.item for entry in entries])
        return Turn(entries)

    async def _managed(self, owner: Owner, req: ResponseRequest, inputs: list[StoredItem]) -> Turn:
        size = await self.window(req.model)
        held, complete = await self.view(owner, req, size)
        history.entries(held, inputs)  # duplicates refused before anything is called
        budget = size - (req.max_output_tokens or 0)
        held_items = window.decode(held)
        shown = window.decode(inputs)
        compacted: StoredItem | None = None
        usage: dict[str, Any] | None = None
        due = req.compact_at is not None
        if not due and req.compact_threshold is not None:
            threshold = req.compact_threshold or int(budget * THRESHOLD_SHARE)
            counts = await self.count(req, held_items + shown)
            due = sum(counts) + await self.fixed(req) > threshold
        start = compaction.latest(shown)
        if due and self.config.api == "chat":
            # an input the model server cannot take is refused before the summary is paid for
            messages.to_messages(
                [_input_entry(item, _client_index(req, i)) for i, item in enumerate(shown)],
                instructions=None,
                all_reasoning=False,
                image_prefixes=self.config.image_url_prefixes,
            )
        if due:
            # the summary covers this turn's input too: a client that keeps only what
            # follows the compaction item (it comes first in the output) loses nothing
            compacted, usage = await self.compact(req, held_items + shown, size, complete)
            # sent after the summary: the calls this input answers, then the input
            keep = len(held) if start >= 0 else window.answered_from(held_items, shown, complete)
            held_items = window.decode([compacted]) + held_items[keep:]
            held, complete = [compacted, *held[keep:]], True
        if start >= 0:  # a compaction item given as input: the view starts there too
            if compacted is None:
                held_items, held, complete = [], [], True
            shown = shown[start:]
        compaction.apply_updates(req, held_items + shown)
        if req.truncation == "auto":
            counts = await self.count(req, held_items)
            fixed = await self.fixed(req) + sum(await self.count(req, shown))
            cut = window.fit(held_items, counts, shown, fixed, budget, complete)
            held_items = held_items[cut:]
            held = held[cut:]
        elif not complete:
            raise window.too_long()  # disabled: the model server would refuse it
        entries = [
            messages.Entry(item, "conversation", f"conversation item '{stored.id}'")
            for item, stored in zip(held_items, held, strict=True)
        ]
        base = len(inputs) - len(shown)
        entries += [
            _input_entry(item, _client_index(req, base + i)) for i, item in enumerate(shown)
        ]
        return Turn(entries, compacted, usage)

    async def count(self, req: ResponseRequest, items: Sequence[dict[str, Any]]) -> list[int]:
        return await self.tokens.count(req.model, [window.item_text(item) for item in items])

    async def fixed(self, req: ResponseRequest) -> int:
        """Tokens of what every request carries beside the items."""
        texts = [req.instructions or ""]
        if req.tools:
            texts.append(orjson.dumps(req.tools).decode())
        if req.text.get("format", {}).get("type") != "text":
            texts.append(orjson.dumps(req.text["format"]).decode())
        return sum(await self.tokens.count(req.model, texts)) + FIXED_OVERHEAD

    async def compact(
        self,
        req: ResponseRequest,
        items: list[dict[str, Any]],
        size: int,
        complete: bool,
    ) -> tuple[StoredItem, dict[str, Any] | None]:
        """A compaction item summarising ``items`` from their latest compaction on (that
        one always kept: it holds all before it; the oldest after it left out if they do
        not fit)."""
        wanted = compaction.summary_tokens(size)
        start = compaction.latest(items)
        pinned = items[start : start + 1] if start >= 0 else []
        rest = items[start + 1 :] if start >= 0 else items
        counts = await self.count(req, rest)
        fixed = sum(await self.count(req, pinned)) + FIXED_OVERHEAD
        fixed += (await self.tokens.count(req.model, [compaction.PROMPT]))[0]
        cut = window.fit(rest, counts, [], fixed, size - wanted, complete or bool(pinned))
        kept = [*pinned, *rest[cut:]]
        entries = [messages.Entry(item, "conversation", "conversation item") for item in kept]
        text = compaction.transcript(
            messages.to_messages(entries, instructions=None, all_reasoning=True)
        )
        model = self.config.model_for(req.model)
        assert self.upstream is not None
        if self.config.api == "responses":  # the model server may speak nothing else
            body = compaction.summary_input(model, text, wanted)
            answer = await self.calling(self.upstream.complete(body, self.config.responses_url))
            summary = compaction.summary_of_response(answer)
            raw = answer.get("usage")
            usage = raw if isinstance(raw, dict) else None
        else:
            body = compaction.summary_body(model, text, wanted)
            answer = await self.calling(self.upstream.complete(body))
            summary = compaction.summary_of(answer)
            usage = output.usage(answer.get("usage"))
        if summary is None:
            raise errors.BadGateway("The model server answered the compaction without a summary.")
        return self.stored_form(compaction.new_item(summary)), usage


def _client_index(req: ResponseRequest, index: int) -> int:
    """Where input item ``index`` stood in the client's input (a trigger is not an item)."""
    return index + (req.compact_at is not None and index >= req.compact_at)


def _input_entry(item: dict[str, Any], index: int) -> messages.Entry:
    return messages.Entry(item, f"input[{index}]", f"'input[{index}]'")
