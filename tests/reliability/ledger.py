"""A client-side ledger of what the server acknowledged, and the checks against the database.

Clients append batches of items (with client-chosen ids), delete items and whole
conversations, and record for every request whether it got a 200 (acknowledged), a
clean error answer (nothing stored, the server said so), or no answer at all (the
server was killed: the outcome is unknown). After a crash, :meth:`Ledger.verify` reads
every item the database holds and checks:

* every acknowledged item is there, exactly once, in its conversation, unless an
  acknowledged delete removed it;
* a batch that was refused left nothing; a batch without an answer is there whole or
  not at all (batches are atomic); nothing is there that no client sent;
* each batch's items are contiguous and in request order, and a batch acknowledged
  before another was sent comes before it;
* an outcome once observed never changes at a later check (a later crash loses nothing).

Unknown outcomes are then resolved to what was observed.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

ACKED, REFUSED, UNKNOWN = "acked", "refused", "unknown"


@dataclass
class Batch:
    conversation: str | None  # None: a create whose answer was lost (id not known yet)
    ids: list[str]
    sent_at: float
    state: str = UNKNOWN
    acked_at: float = 0.0
    creates: bool = False


@dataclass
class Conversation:
    id: str
    state: str = ACKED  # of its creation
    deleted: str | None = None  # state of a delete request, None when never deleted
    items_deleted: dict[str, str] = field(default_factory=dict)  # item id -> delete state
    acked: list[str] = field(default_factory=list)  # acknowledged item ids, in order


class Ledger:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[Batch] = []
        self.by_item: dict[str, Batch] = {}
        self.conversations: dict[str, Conversation] = {}
        self.live_ids: dict[str, None] = {}  # created and not (maybe) deleted, oldest first
        self.requests = 0
        self.answers: dict[str, int] = {}

    # -- recording ----------------------------------------------------------------------------

    def count(self, outcome: str) -> None:
        with self.lock:
            self.requests += 1
            self.answers[outcome] = self.answers.get(outcome, 0) + 1

    def new_batch(self, conversation: str | None, size: int, creates: bool = False) -> Batch:
        batch = Batch(
            conversation,
            [f"msg_{uuid.uuid4().hex}" for _ in range(size)],
            time.monotonic(),
            creates=creates,
        )
        with self.lock:
            self.batches.append(batch)
            for item_id in batch.ids:
                self.by_item[item_id] = batch
        return batch

    def live(self) -> list[str]:
        with self.lock:
            return list(self.live_ids)[-64:]

    def acked_items(self, conversation: str) -> list[str]:
        with self.lock:
            conv = self.conversations[conversation]
            return [i for i in conv.acked[-200:] if i not in conv.items_deleted]

    # -- checking -----------------------------------------------------------------------------

    def verify(self, rows: list[tuple[str, str, int]], conversations: set[str]) -> dict[str, int]:
        """Check the database's ``(conversation id, item id, seq)`` rows and conversation ids
        against the ledger; resolve unknown outcomes. Returns counts for the report."""
        problems: list[str] = []
        held: dict[str, list[tuple[int, str]]] = {}
        where: dict[str, str] = {}
        for conv, item, seq in rows:
            held.setdefault(conv, []).append((seq, item))
            if item in where:
                problems.append(f"item {item} stored twice ({where[item]}, {conv})")
            where[item] = conv
        for items in held.values():
            items.sort()
        # Creates whose answer was lost: identify their conversation by their items.
        for batch in self.batches:
            if batch.creates and batch.conversation is None:
                found = {where[i] for i in batch.ids if i in where}
                if len(found) > 1:
                    problems.append(f"one create's items in several conversations: {found}")
                if found:
                    (conv_id,) = found
                    batch.conversation = conv_id
                    self.conversations[conv_id] = Conversation(conv_id, acked=list(batch.ids))
                    self.live_ids[conv_id] = None
                    batch.state = ACKED
                    batch.acked_at = float("inf")  # unknown: orders nothing
                else:
                    batch.state = REFUSED
                    batch.conversation = ""
        for conv_id in conversations:
            if conv_id not in self.conversations:
                problems.append(f"conversation {conv_id} that no client created (or half created)")
        for conv in self.conversations.values():
            present = conv.id in conversations
            if conv.deleted == ACKED and present:
                problems.append(f"deleted conversation {conv.id} is back")
            if conv.deleted in (None, REFUSED) and not present:
                problems.append(f"conversation {conv.id} lost")
            if conv.deleted == UNKNOWN:
                conv.deleted = ACKED if not present else None
                if conv.deleted is None:
                    self.live_ids[conv.id] = None
        stored_items = 0
        for batch in self.batches:
            if not batch.conversation:
                continue
            conv = self.conversations.get(batch.conversation)
            gone = conv is None or batch.conversation not in conversations
            there = [i for i in batch.ids if where.get(i) == batch.conversation]
            stray = [i for i in batch.ids if i in where and where[i] != batch.conversation]
            if stray:
                problems.append(f"items {stray} stored in another conversation")
            deleted = conv.items_deleted if conv else {}
            if batch.state == REFUSED and there:
                problems.append(f"refused batch {batch.ids} left {there}")
            elif batch.state == ACKED and not gone:
                for item_id in batch.ids:
                    state = deleted.get(item_id)
                    if item_id in there and state == ACKED:
                        problems.append(f"deleted item {item_id} is back")
                    elif item_id not in there and state in (None, REFUSED):
                        problems.append(f"acknowledged item {item_id} lost")
                    elif state == UNKNOWN:
                        deleted[item_id] = REFUSED if item_id in there else ACKED
            elif batch.state == UNKNOWN:
                if there and len(there) != len(batch.ids):
                    problems.append(f"half a batch: {len(there)} of {batch.ids}")
                batch.state = ACKED if there else REFUSED
                batch.acked_at = float("inf")
                if there and conv is not None:
                    conv.acked.extend(batch.ids)
            stored_items += len(there)
        known = set(self.by_item)
        for item_id in where:
            if item_id not in known:
                problems.append(f"item {item_id} that no client sent")
        problems += self._check_order(held)
        assert not problems, "\n".join(problems[:20]) + f"\n({len(problems)} problems)"
        return {"items": stored_items, "conversations": len(conversations)}

    def _check_order(self, held: dict[str, list[tuple[int, str]]]) -> list[str]:
        problems: list[str] = []
        for conv_id, items in held.items():
            order = [item for _, item in items]
            position = {item: n for n, item in enumerate(order)}
            firsts: list[tuple[int, Batch]] = []
            seen: set[int] = set()
            for item in order:
                batch = self.by_item.get(item)
                if batch is None or id(batch) in seen:
                    continue
                seen.add(id(batch))
                mine = [i for i in batch.ids if i in position]
                spots = [position[i] for i in mine]
                if spots != list(range(spots[0], spots[0] + len(spots))):
                    problems.append(f"{conv_id}: batch {batch.ids} not contiguous or not in order")
                firsts.append((spots[0], batch))
            # A batch acknowledged before another was sent comes first.
            firsts.sort(key=lambda pair: pair[0])
            earliest_later_ack = float("inf")
            for _, batch in reversed(firsts):
                if earliest_later_ack < batch.sent_at:
                    problems.append(f"{conv_id}: batch {batch.ids} stored after a later one")
                earliest_later_ack = min(earliest_later_ack, batch.acked_at)
        return problems


def outcome(response: httpx.Response | None) -> str:
    if response is None:
        return UNKNOWN
    if response.status_code == 200:
        return ACKED
    if response.status_code == 503 and _code(response) == "commit_outcome_unknown":
        return UNKNOWN  # the connection to the database was lost after the commit was sent
    if response.status_code in (400, 404, 409, 413, 503):
        return REFUSED  # the envelope says nothing was stored
    return UNKNOWN


def _code(response: httpx.Response) -> str | None:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


class Client(threading.Thread):
    """One client: a random mix of appends, deletes and reads until told to stop."""

    def __init__(self, ledger: Ledger, url: str, stop: threading.Event, seed: int):
        super().__init__(daemon=True)
        self.ledger = ledger
        self.url = url
        self.stop = stop
        self.random = random.Random(seed)
        self.unexpected: list[str] = []
        self.latencies: list[tuple[float, float]] = []  # (when, seconds) of answered requests

    def send(self, http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = http.request(method, path, **kwargs)
        except httpx.HTTPError:
            self.ledger.count("no answer")
            return None
        self.latencies.append((started, time.monotonic() - started))
        self.ledger.count(str(response.status_code))
        if response.status_code >= 500:
            self.unexpected.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop.is_set():
                self.step(http)

    def step(self, http: httpx.Client) -> None:
        ledger, rnd = self.ledger, self.random
        live = ledger.live()
        roll = rnd.random()
        if len(live) < 4 or roll < 0.05:
            batch = ledger.new_batch(None, rnd.randint(1, 3), creates=True)
            body = {"items": [{"id": i, "role": "user", "content": i} for i in batch.ids]}
            response = self.send(http, "POST", "/conversations", json=body)
            state = outcome(response)
            with ledger.lock:
                if state == ACKED and response is not None:
                    conv_id = response.json()["id"]
                    batch.conversation = conv_id
                    batch.state, batch.acked_at = ACKED, time.monotonic()
                    ledger.conversations[conv_id] = Conversation(conv_id, acked=list(batch.ids))
                    ledger.live_ids[conv_id] = None
                elif state == REFUSED:
                    batch.state, batch.conversation = REFUSED, ""
            return
        conv_id = rnd.choice(live)
        if roll < 0.08:
            response = self.send(http, "DELETE", f"/conversations/{conv_id}")
            with ledger.lock:
                conv = ledger.conversations[conv_id]
                state = outcome(response)
                if conv.deleted is None and state != REFUSED:
                    conv.deleted = state
                    ledger.live_ids.pop(conv_id, None)
            return
        if roll < 0.20:
            items = ledger.acked_items(conv_id)
            if items:
                item_id = rnd.choice(items)
                response = self.send(http, "DELETE", f"/conversations/{conv_id}/items/{item_id}")
                with ledger.lock:
                    state = outcome(response)
                    deleted = ledger.conversations[conv_id].items_deleted
                    if state != REFUSED and deleted.get(item_id) != ACKED:
                        deleted[item_id] = state
            return
        if roll < 0.30:
            self.send(http, "GET", f"/conversations/{conv_id}/items", params={"limit": 20})
            return
        batch = ledger.new_batch(conv_id, rnd.randint(1, 5))
        body = {"items": [{"id": i, "role": "user", "content": i} for i in batch.ids]}
        response = self.send(http, "POST", f"/conversations/{conv_id}/items", json=body)
        state = outcome(response)
        with ledger.lock:
            batch.state = state
            if state == ACKED and response is not None:
                assert [d["id"] for d in response.json()["data"]] == batch.ids
                batch.acked_at = time.monotonic()
                ledger.conversations[conv_id].acked.extend(batch.ids)
