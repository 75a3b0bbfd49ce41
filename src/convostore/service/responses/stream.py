"""Chat Completions chunks → the Responses event sequence, as OpenAI sends it.

One :class:`Translator` per streamed response. It numbers every event
(``sequence_number`` from 0) and opens one output item at a time, in the order the
deltas arrive: a delta of another kind (reasoning, text, a refusal, a new tool call)
closes the open item with its ``…done`` events before the next is added, so each item's
events are contiguous. The shapes of the items are :mod:`output`'s, so a streamed
response ends with the same items a non-streamed one would hold::

    response.created, response.in_progress
    (response.output_item.added, response.output_item.done: a compaction made first)
    response.output_item.added (reasoning)   response.content_part.added (reasoning_text)
      response.reasoning_text.delta …         response.reasoning_text.done
      response.content_part.done              response.output_item.done
    response.output_item.added (message)     response.content_part.added (output_text)
      response.output_text.delta …            response.output_text.done
      response.content_part.done              response.output_item.done
    response.output_item.added (function_call)
      response.function_call_arguments.delta … response.function_call_arguments.done
      response.output_item.done
    response.completed | response.incomplete | response.failed

With ``reasoning.summary`` the reasoning item uses the ``reasoning_summary_part`` and
``reasoning_summary_text`` events instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from convostore.service.responses import obfuscation, output
from convostore.service.responses.output import Item, Shape

Event = dict[str, Any]


class StreamMisordered(Exception):
    """The model server sent a delta for a tool call after another item began."""


@dataclass(slots=True)
class _Open:
    kind: str  # "reasoning", "message" or "function_call"
    index: int  # output_index
    item: Item
    part: str | None = None  # message: "output_text" or "refusal", the open part
    text: list[str] = field(default_factory=list)
    logprobs: list[Any] = field(default_factory=list)
    parts: list[Item] = field(default_factory=list)  # message: the closed parts
    tool_index: int | None = None


class Translator:
    def __init__(
        self,
        shape: Shape,
        new_id: Callable[[str], str],
        finalize: Callable[[Item], Item],
        visible: Callable[[Item], Item],
        *,
        show_logprobs: bool,
        obfuscate: bool,
    ):
        self.shape = shape
        self.new_id = new_id
        self.finalize = finalize  # the item as it is stored (registry-normalised)
        self.visible = visible  # the stored item as this request may see it (include)
        self.show_logprobs = show_logprobs
        self.obfuscate = obfuscate
        self.sequence = 0
        self.items: list[Item] = []  # closed output items, final form
        self.open: _Open | None = None
        self.tools_seen: set[int] = set()
        self.first_tool: int | None = None
        self.finish_reason: str | None = None
        self.usage: Any = None

    def event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def lead(self, item: Item) -> list[Event]:
        """An output item made before the model answers (a compaction), already final:
        added and done at once, before the model's items (whose indices follow it)."""
        assert self.open is None
        index = len(self.items)
        self.items.append(item)
        shown = self.visible(item)
        return [
            self.event("response.output_item.added", output_index=index, item=shown),
            self.event("response.output_item.done", output_index=index, item=shown),
        ]

    # -- chunks ------------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = output.reasoning_of(delta)
            if reasoning:
                events += self._reasoning(reasoning)
            content = delta.get("content")
            if isinstance(content, str) and content:
                probs = output.logprobs(choice) if self.shape.logprobs else []
                events += self._part("output_text", content, probs)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                events += self._part("refusal", refusal, [])
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    events += self._tool(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def finish(self) -> list[Event]:
        """Close the open item (the last one is incomplete when the output was cut short)."""
        incomplete = self.finish_reason in output.INCOMPLETE_REASONS
        return self._close(incomplete=incomplete)

    def partial(self) -> list[Item]:
        """The output so far, for a failed response: closed items and the open one."""
        items = list(self.items)
        if self.open is not None:
            item = dict(self.open.item)
            if "status" in item:
                item["status"] = "incomplete"
            items.append(item)
        return items

    # -- items ------------------------------------------------------------------------------

    def _start(self, kind: str, item: Item) -> tuple[_Open, list[Event]]:
        events = self._close(incomplete=False)
        opened = _Open(kind, len(self.items), item)
        self.open = opened
        events.append(
            self.event("response.output_item.added", output_index=opened.index, item=dict(item))
        )
        return opened, events

    def _reasoning(self, delta: str) -> list[Event]:
        events: list[Event] = []
        opened = self.open
        if opened is None or opened.kind != "reasoning":
            opened, events = self._start(
                "reasoning", {"id": self.new_id("rs"), "type": "reasoning", "summary": []}
            )
            ids = {"item_id": opened.item["id"], "output_index": opened.index}
            if self.shape.summary:
                events.append(
                    self.event(
                        "response.reasoning_summary_part.added",
                        **ids,
                        summary_index=0,
                        part={"type": "summary_text", "text": ""},
                    )
                )
            else:
                events.append(
                    self.event(
                        "response.content_part.added",
                        **ids,
                        content_index=0,
                        part={"type": "reasoning_text", "text": ""},
                    )
                )
        opened.text.append(delta)
        ids = {"item_id": opened.item["id"], "output_index": opened.index}
        if self.shape.summary:
            events.append(
                self._delta(
                    "response.reasoning_summary_text.delta", **ids, summary_index=0, delta=delta
                )
            )
        else:
            events.append(
                self._delta("response.reasoning_text.delta", **ids, content_index=0, delta=delta)
            )
        return events

    def _part(self, part: str, delta: str, probs: list[Any]) -> list[Event]:
        events: list[Event] = []
        opened = self.open
        if opened is None or opened.kind != "message":
            opened, events = self._start(
                "message", output.message_item(self.new_id("msg"), [], "in_progress")
            )
        ids = {"item_id": opened.item["id"], "output_index": opened.index}
        if opened.part != part:
            events += self._close_part(opened)
            opened.part = part
            empty = (
                output.text_part("")
                if part == "output_text"
                else {"type": "refusal", "refusal": ""}
            )
            events.append(
                self.event(
                    "response.content_part.added",
                    **ids,
                    content_index=len(opened.parts),
                    part=empty,
                )
            )
        opened.text.append(delta)
        opened.logprobs += probs
        index = len(opened.parts)
        if part == "output_text":
            shown = probs if self.show_logprobs else []
            events.append(
                self._delta(
                    "response.output_text.delta",
                    **ids,
                    content_index=index,
                    delta=delta,
                    logprobs=shown,
                )
            )
        else:
            events.append(
                self._delta("response.refusal.delta", **ids, content_index=index, delta=delta)
            )
        return events

    def _tool(self, call: dict[str, Any]) -> list[Event]:
        index = call.get("index", 0)
        if not isinstance(index, int):
            index = 0
        if self.first_tool is None:
            self.first_tool = index
        if not self.shape.parallel and index != self.first_tool:
            return []  # parallel_tool_calls: false keeps the first call only
        function = call.get("function") or {}
        events: list[Event] = []
        opened = self.open
        if opened is None or opened.kind != "function_call" or opened.tool_index != index:
            if index in self.tools_seen:
                raise StreamMisordered(f"a delta for tool call {index} came after it was closed")
            self.tools_seen.add(index)
            item = output.call_item(
                self.new_id("fc"),
                call.get("id") or output.new_call_id(),
                function.get("name") or "",
                "",
                "in_progress",
            )
            opened, events = self._start("function_call", item)
            opened.tool_index = index
        elif function.get("name") and not opened.item["name"]:
            opened.item["name"] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            opened.text.append(arguments)
            events.append(
                self._delta(
                    "response.function_call_arguments.delta",
                    item_id=opened.item["id"],
                    output_index=opened.index,
                    delta=arguments,
                )
            )
        return events

    def _close_part(self, opened: _Open) -> list[Event]:
        if opened.part is None:
            return []
        text = "".join(opened.text)
        ids = {"item_id": opened.item["id"], "output_index": opened.index}
        index = len(opened.parts)
        if opened.part == "output_text":
            part = output.text_part(text, opened.logprobs)
            shown = opened.logprobs if self.show_logprobs else []
            events = [
                self.event(
                    "response.output_text.done",
                    **ids,
                    content_index=index,
                    text=text,
                    logprobs=shown,
                ),
                self.event(
                    "response.content_part.done",
                    **ids,
                    content_index=index,
                    part={**part, "logprobs": shown},
                ),
            ]
        else:
            part = {"type": "refusal", "refusal": text}
            events = [
                self.event("response.refusal.done", **ids, content_index=index, refusal=text),
                self.event("response.content_part.done", **ids, content_index=index, part=part),
            ]
        opened.parts.append(part)
        opened.part, opened.text, opened.logprobs = None, [], []
        return events

    def _close(self, *, incomplete: bool) -> list[Event]:
        opened, self.open = self.open, None
        if opened is None:
            return []
        ids = {"item_id": opened.item["id"], "output_index": opened.index}
        status = "incomplete" if incomplete else "completed"
        events: list[Event] = []
        if opened.kind == "reasoning":
            text = "".join(opened.text)
            if self.shape.summary:
                part = {"type": "summary_text", "text": text}
                events += [
                    self.event(
                        "response.reasoning_summary_text.done", **ids, summary_index=0, text=text
                    ),
                    self.event(
                        "response.reasoning_summary_part.done", **ids, summary_index=0, part=part
                    ),
                ]
            else:
                part = {"type": "reasoning_text", "text": text}
                events += [
                    self.event("response.reasoning_text.done", **ids, content_index=0, text=text),
                    self.event("response.content_part.done", **ids, content_index=0, part=part),
                ]
            final = output.reasoning_item(opened.item["id"], text, self.shape)
        elif opened.kind == "message":
            events += self._close_part(opened)
            final = output.message_item(opened.item["id"], opened.parts, status)
        else:
            arguments = "".join(opened.text)
            events.append(
                self.event(
                    "response.function_call_arguments.done",
                    **ids,
                    name=opened.item["name"],
                    arguments=arguments,
                )
            )
            item = opened.item
            final = output.call_item(item["id"], item["call_id"], item["name"], arguments, status)
        final = self.finalize(final)
        self.items.append(final)
        events.append(
            self.event(
                "response.output_item.done", output_index=opened.index, item=self.visible(final)
            )
        )
        return events

    def _delta(self, kind: str, **fields: Any) -> Event:
        if self.obfuscate:
            fields["obfuscation"] = obfuscation.padding(fields["delta"])
        return self.event(kind, **fields)
