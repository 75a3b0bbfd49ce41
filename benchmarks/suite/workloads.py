"""The data every workload reads, seeded through the API, and the plan of each workload.

Seeding goes through the public HTTP API (one keep-alive connection, sequential, so
item order is the order sent), so the same code seeds convostore and a peer.
"""

from __future__ import annotations

import http.client
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from suite.procs import HOST
from suite.wrk import Plan

POOL = 64  # conversations that get_conv reads and the appends write to
LONG = 1_000  # list20 and get_item read this conversation
DEEP = 10_000  # list_deep
SHALLOW = 100  # list_shallow
REPLAY_LENGTH = 500  # agents_replay pages through conversations of this length...
REPLAY_CONVERSATIONS = 4  # ...this many of them
FROM_END = 30  # list_deep / list_shallow: after = the item this far from the end
METADATA = {"user": "user-0042", "topic": "benchmarks", "channel": "web"}

WORDS = [
    "the",
    "conversation",
    "keeps",
    "every",
    "message",
    "tool",
    "call",
    "and",
    "reasoning",
    "item",
    "in",
    "order",
    "so",
    "that",
    "an",
    "agent",
    "can",
    "pick",
    "up",
    "where",
    "it",
    "left",
    "off",
    "and",
    "a",
    "person",
    "can",
    "read",
    "back",
    "what",
    "was",
    "said",
    "including",
    "names",
    "numbers",
    "and",
    "dates",
    "exactly",
    "as",
    "they",
    "were",
    "written",
]


def message(n: int) -> dict[str, Any]:
    """A realistic chat message of ~200-300 bytes, alternating user and assistant."""
    rng = random.Random(n)
    text = " ".join(rng.choice(WORDS) for _ in range(28)).capitalize() + "."
    if n % 2 == 0:
        return {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
    return {"type": "message", "role": "assistant", "content": text}


def items_body(start: int, count: int) -> str:
    return json.dumps({"items": [message(start + k) for k in range(count)]}, separators=(",", ":"))


class Client:
    """A minimal JSON client over one keep-alive connection, for seeding only."""

    def __init__(self, port: int, prefix: str = "/v1"):
        self.conn = http.client.HTTPConnection(HOST, port, timeout=120)
        self.prefix = prefix

    def call(self, method: str, path: str, body: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, self.prefix + path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data)

    def create(self) -> str:
        body = json.dumps({"metadata": METADATA}, separators=(",", ":"))
        conversation_id: str = self.call("POST", "/conversations", body)["id"]
        return conversation_id

    def fill(self, conversation_id: str, count: int) -> list[str]:
        """Append ``count`` messages, 20 per request; return their ids in order."""
        ids: list[str] = []
        for start in range(0, count, 20):
            size = min(20, count - start)
            page = self.call(
                "POST", f"/conversations/{conversation_id}/items", items_body(start, size)
            )
            ids.extend(item["id"] for item in page["data"])
        if len(ids) != count:
            raise RuntimeError(f"expected {count} item ids, got {len(ids)}")
        return ids

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class Dataset:
    pool: list[str]
    long: str
    long_items: list[str]
    deep: str
    deep_items: list[str]
    shallow: str
    shallow_items: list[str]
    replay: list[str]


def seed(port: int, log: Callable[[str], None] = print) -> Dataset:
    client = Client(port)
    try:
        pool = [client.create() for _ in range(POOL)]
        made: dict[str, tuple[str, list[str]]] = {}
        for name, length in (("long", LONG), ("deep", DEEP), ("shallow", SHALLOW)):
            conversation_id = client.create()
            made[name] = (conversation_id, client.fill(conversation_id, length))
            log(f"  seeded {name}: {length} items")
        replay = []
        for _ in range(REPLAY_CONVERSATIONS):
            conversation_id = client.create()
            client.fill(conversation_id, REPLAY_LENGTH)
            replay.append(conversation_id)
        log(f"  seeded {REPLAY_CONVERSATIONS} x {REPLAY_LENGTH} items for agents_replay")
    finally:
        client.close()
    return Dataset(
        pool,
        made["long"][0],
        made["long"][1],
        made["deep"][0],
        made["deep"][1],
        made["shallow"][0],
        made["shallow"][1],
        replay,
    )


def _get(paths: list[str]) -> Plan:
    return Plan(requests=[("GET", path, "") for path in paths])


def _append(pool: list[str], count: int) -> Plan:
    return Plan(
        requests=[
            ("POST", f"/v1/conversations/{c}/items", items_body(n * count, count))
            for n, c in enumerate(pool)
        ],
        items_per_request=count,
    )


def _after(conversation_id: str, items: list[str]) -> Plan:
    anchor = items[-FROM_END]
    return _get([f"/v1/conversations/{conversation_id}/items?order=asc&limit=20&after={anchor}"])


def plans(data: Dataset) -> dict[str, Plan]:
    """Every workload, in the order the suite runs them."""
    create = json.dumps({"metadata": METADATA}, separators=(",", ":"))
    shuffled = list(data.long_items)
    random.Random(7).shuffle(shuffled)
    return {
        "create_conv": Plan(requests=[("POST", "/v1/conversations", create)]),
        "append1": _append(data.pool, 1),
        "append20": _append(data.pool, 20),
        "get_conv": _get([f"/v1/conversations/{c}" for c in data.pool]),
        "get_item": _get([f"/v1/conversations/{data.long}/items/{i}" for i in shuffled]),
        # limit=20 said: the peers' default pages are larger than OpenAI's 20
        "list20": _get([f"/v1/conversations/{data.long}/items?limit=20"]),
        "list_shallow": _after(data.shallow, data.shallow_items),
        "list_deep": _after(data.deep, data.deep_items),
        "agents_replay": Plan(replay=list(data.replay), pages_expected=-(-REPLAY_LENGTH // 20)),
    }


CEILING_PLAN = Plan(requests=[("GET", "/", "")])
