"""Time a turn spends on its history with ``truncation: "auto"`` (issue 18), against the
conversation's length.

Conversations of 1,000 and 10,000 stored items (user and assistant messages of about 60
tokens) are seeded; each measured turn runs what convostore does before calling the
model server with truncation on: read the history newest first back to the window, count
it, choose where the model's view starts and build the messages (``Context.turn``), with a
4,096-token window. For contrast, ``disabled`` reads the whole history the same way
(``read_history``). The model server is an in-process transport without a tokenizer, so
counting is the estimate and no network time is included.

    python benchmarks/context_window.py [--db postgresql://…] [--turns 50]

The bound holds when the 10,000-item median is within 1.5x of the 1,000-item one.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from convostore import ids
from convostore.items.registry import Registry
from convostore.service.limits import Limits
from convostore.service.materialize import Materializer
from convostore.service.responses import Responses, history
from convostore.service.responses.request import ResponseRequest
from convostore.settings import Settings
from convostore.store.base import (
    ConversationRow,
    ItemAppend,
    NewConversation,
    Owner,
    Store,
    StoredItem,
)
from convostore.store.factory import store_for
from convostore.upstream import ChatUpstream, UpstreamConfig

LENGTHS = (1_000, 10_000)
WINDOW = 4096
OWNER = Owner("default", "")
TEXT = "a sentence of about ten words that the model once read. " * 4


def item(role: str) -> StoredItem:
    kind = "output_text" if role == "assistant" else "input_text"
    body = {
        "id": ids.new_id("msg"),
        "type": "message",
        "role": role,
        "status": "completed",
        "content": [{"type": kind, "text": TEXT}],
    }
    return StoredItem(body["id"], "message", orjson.dumps(body), 0)


async def seed(store: Store, length: int) -> str:
    conversation = ids.new_id("conv")
    await store.create_conversation(
        OWNER, NewConversation(ConversationRow(conversation, int(time.time()), b"{}"))
    )
    batch: list[StoredItem] = []
    for index in range(length):
        batch.append(item("user" if index % 2 == 0 else "assistant"))
        if len(batch) == 500:
            await store.append_items(OWNER, ItemAppend(conversation, batch))
            batch = []
    if batch:
        await store.append_items(OWNER, ItemAppend(conversation, batch))
    return conversation


def no_tokenizer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(404, json={"error": "not found"})


async def measure(store: Store, turns: int) -> dict[str, Any]:
    config = UpstreamConfig(url="http://model.invalid/v1", context_windows={"m": WINDOW})
    upstream = ChatUpstream(config, transport=httpx.MockTransport(no_tokenizer))
    service = Responses(store, Materializer(store, Registry(), Limits()), config, upstream)
    conversations = {length: await seed(store, length) for length in LENGTHS}
    auto: dict[int, list[float]] = {length: [] for length in LENGTHS}
    whole: dict[int, list[float]] = {length: [] for length in LENGTHS}
    sent: dict[int, int] = {}
    for round_ in range(turns + 1):  # lengths alternate: drift on a shared machine cancels
        order = list(conversations.items())
        for length, conversation in order if round_ % 2 else order[::-1]:
            req = ResponseRequest(model="m", input=[], conversation_id=conversation)
            req.truncation = "auto"
            req.max_output_tokens = 256
            inputs = [item("user")]
            started = time.perf_counter()
            turn = await service.context.turn(OWNER, req, inputs)
            took = time.perf_counter() - started
            sent[length] = len(turn.messages)
            started = time.perf_counter()
            await history.read_history(store, OWNER, conversation)
            if round_:  # the first round warms caches up
                auto[length].append(took)
                whole[length].append(time.perf_counter() - started)
    figures: dict[int, Any] = {
        length: {
            "auto_ms": statistics.median(auto[length]) * 1000,
            "disabled_read_ms": statistics.median(whole[length]) * 1000,
            "messages_sent": sent[length],
        }
        for length in LENGTHS
    }
    await service.aclose()
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="", help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--turns", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = args.db or f"sqlite:///{folder}/bench.db"
        store = store_for(Settings(db=db))
        await store.open()
        await store.migrate()
        try:
            figures = await measure(store, args.turns)
        finally:
            await store.close()
    small, large = (figures[n]["auto_ms"] for n in LENGTHS)
    for length in LENGTHS:
        row = figures[length]
        print(
            f"{length:>6} items: truncation auto {row['auto_ms']:.2f} ms/turn "
            f"({row['messages_sent']} messages sent); disabled reads the whole history in "
            f"{row['disabled_read_ms']:.2f} ms"
        )
    ratio = large / small
    print(f"ratio 10,000 / 1,000 items (auto): {ratio:.2f}x (bound: 1.5x)")
    sys.exit(0 if ratio <= 1.5 else 1)


if __name__ == "__main__":
    asyncio.run(main())
