"""What the Python of a 20-item append costs, in-process (issue 21).

    python benchmarks/append_python_cost.py [N] [--profile] [--python-only]

Times ``services.items.create`` (the service the route ``POST
/v1/conversations/{id}/items`` calls) with the body of the ``append20`` workload (20
~250-byte messages, user ``input_text`` and easy assistant ones alternating), from the
body's bytes (``orjson.loads`` and the nesting check, as ``Request.json`` does) to the
answer's bytes, N times (default 600, after 100 warm-up calls):

* ``python``: against a store whose ``append_items`` keeps nothing, so what is timed is
  the body's decode and check, the items' validation, materialization, ids and the
  answer: the per-item Python of issue 21;
* ``sqlite``: the same through a migrated :class:`SQLiteStore` in a temporary folder.

Prints the median and quartiles of the calling thread's CPU (``time.thread_time``) per
call in µs. ``--profile`` prints a cProfile of the ``python`` loop instead. To compare two
trees, run it alternately with each one first on ``PYTHONPATH``.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite.workloads import items_body

from convostore.api import render
from convostore.service import build_services
from convostore.service.limits import Limits
from convostore.store.base import (
    ConversationRow,
    ItemAppend,
    NewConversation,
    Owner,
)
from convostore.store.sqlite import SQLiteStore

OWNER = Owner("proj", "")
LIMITS = Limits()


class KeepsNothing:
    """Only what an append without named ids asks of a store: the append, kept nowhere."""

    async def append_items(self, owner: Owner, append: ItemAppend) -> None:
        return None


def bodies(n: int) -> list[bytes]:
    return [items_body(k * 20, 20).encode() for k in range(n)]


async def run(store: Any, conversation: str, raw: list[bytes]) -> list[float]:
    items = build_services(store, limits=LIMITS).items

    def answer(stored: Any) -> bytes:
        return render.item_list(stored, 0, has_more=False)

    # As Request.json does (check_body_depth in trees since issue 21's change).
    check_body_depth = getattr(LIMITS, "check_body_depth", lambda raw, v: LIMITS.check_depth(v))
    took = []
    for body in raw:
        started = time.thread_time()
        value = orjson.loads(body)
        check_body_depth(body, value)
        await items.create(OWNER, conversation, value, answer)
        took.append((time.thread_time() - started) * 1e6)
    return took


async def python_only(n: int, profile: cProfile.Profile | None = None) -> list[float]:
    await run(KeepsNothing(), "conv_x", bodies(100))
    raw = bodies(n)
    if profile is not None:
        profile.enable()
    took = await run(KeepsNothing(), "conv_x", raw)
    if profile is not None:
        profile.disable()
    return took


async def through_sqlite(n: int) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "db.sqlite")
        await store.open()
        await store.migrate()
        try:
            row = ConversationRow("conv_bench", 1_700_000_000, b"{}")
            await store.create_conversation(OWNER, NewConversation(row))
            await run(store, row.id, bodies(100))
            return await run(store, row.id, bodies(n))
        finally:
            await store.close()


def summary(name: str, took: list[float]) -> dict[str, Any]:
    q = statistics.quantiles(took, n=4)
    return {"stage": name, "n": len(took), "median": round(statistics.median(took), 1),
            "q1": round(q[0], 1), "q3": round(q[2], 1)}  # fmt: skip


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 600
    if "--profile" in sys.argv:
        profile = cProfile.Profile()
        asyncio.run(python_only(n, profile))
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        return
    print(json.dumps(summary("python", asyncio.run(python_only(n)))), flush=True)
    if "--python-only" not in sys.argv:
        print(json.dumps(summary("sqlite", asyncio.run(through_sqlite(n)))))


if __name__ == "__main__":
    main()
