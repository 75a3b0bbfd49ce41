"""Time convostore adds to a turn continued with ``previous_response_id`` (issue 17).

A chain of N stored responses (each one user message in, one assistant message out) is
seeded, then each measured turn continues its tail (``previous_response_id``; every turn
is a new branch off the same tail, so the chain stays N long and every turn writes its
response). The same scripted model server is also called directly with the very
messages convostore sends it. The difference of the medians is what convostore adds:
reading the chain (one recursive statement), translating, and storing the response.

    python benchmarks/responses_chain.py [--db postgresql://…] [--turns 40]

One run, one machine: read the figures as ratios between chain lengths.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support: the launcher

from convostore.settings import Settings
from convostore.store.base import Owner, ResponseDump, ResponseRecord, StoredItem
from convostore.store.factory import store_for
from tests.support import free_port, running_server

LENGTHS = (10, 100, 1000)
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
)


async def upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A model server that reads the whole request and answers at once."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": ANSWER})


def serve_upstream() -> str:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(upstream, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}/v1"


def message(item_id: str, role: str, text: str) -> StoredItem:
    kind = "output_text" if role == "assistant" else "input_text"
    part: dict[str, Any] = {"type": kind, "text": text}
    if role == "assistant":
        part.update(annotations=[], logprobs=[])
    body = {
        "id": item_id,
        "type": "message",
        "role": role,
        "status": "completed",
        "content": [part],
    }
    return StoredItem(item_id, "message", orjson.dumps(body), 0)


def seed(db: str, length: int, tag: str) -> str:
    """A chain of ``length`` responses; returns the id of its tail."""

    async def run() -> str:
        store = store_for(Settings(db=db))
        await store.open()
        await store.migrate()
        dumps = []
        previous = None
        root = f"resp_{tag}_0"
        for n in range(length):
            rid = f"resp_{tag}_{n}"
            record = ResponseRecord(
                rid, 1, "completed", b'{"object":"response","output":[]}', previous
            )
            dumps.append(
                ResponseDump(
                    Owner("default", ""),
                    record,
                    int(time.time()),
                    root,
                    [message(f"msg_{tag}_{n}_in", "user", f"question {n} " * 8)],
                    [message(f"msg_{tag}_{n}_out", "assistant", f"answer {n} " * 8)],
                )
            )
            previous = rid
        for start in range(0, len(dumps), 200):
            await store.import_responses(dumps[start : start + 200])
        await store.close()
        return previous or root

    return asyncio.run(run())


def messages_for(length: int) -> list[dict[str, str]]:
    out = []
    for n in range(length):
        out.append({"role": "user", "content": f"question {n} " * 8})
        out.append({"role": "assistant", "content": f"answer {n} " * 8})
    out.append({"role": "user", "content": "next"})
    return out


def call(http: httpx.Client, url: str, body: dict[str, Any]) -> None:
    http.post(url, json=body).raise_for_status()


def median_ms(call: Any, turns: int) -> float:
    for _ in range(3):
        call()
    times = []
    for _ in range(turns):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="a PostgreSQL URL (default: a new SQLite file)")
    parser.add_argument("--turns", type=int, default=40)
    args = parser.parse_args()
    db = args.db or str(Path(tempfile.mkdtemp()) / "chain.db")
    model_server = serve_upstream()
    tails = {length: seed(db, length, f"c{length}") for length in LENGTHS}
    print(
        f"backend: {'postgres' if db.startswith('postgres') else 'sqlite'}, "
        f"{args.turns} turns per length, medians"
    )
    print("| chain length | model server direct | through convostore | added by convostore |")
    print("| --- | --- | --- | --- |")
    with (
        running_server(db, "--upstream", model_server, "--no-access-log") as base,
        httpx.Client(timeout=60) as http,
    ):
        for length in LENGTHS:
            chat = {"model": "m", "messages": messages_for(length)}
            turn = {"model": "m", "input": "next", "previous_response_id": tails[length]}
            direct = functools.partial(call, http, f"{model_server}/chat/completions", chat)
            through = functools.partial(call, http, f"{base}/responses", turn)
            direct_ms = median_ms(direct, args.turns)
            through_ms = median_ms(through, args.turns)
            print(
                f"| {length:,} | {direct_ms:.2f} ms | {through_ms:.2f} ms | "
                f"{through_ms - direct_ms:.2f} ms |"
            )


if __name__ == "__main__":
    main()
