"""Export and import: one JSON line per conversation with its items (docs/export.md).

Export streams: conversations are read in batches by primary key, their items in chunks
by position, and each line is written out piece by piece, so memory stays bounded by a
batch and a chunk however big the store. Item bodies and metadata are the stored JSON
bytes, spliced in unchanged. Import keeps ids, ``created_at``, ``updated_at``, metadata,
the owner (project and isolation key) and item order and bodies byte for byte, so export
→ import into an empty store → export gives identical output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from convostore.items import include
from convostore.store.base import (
    ConversationDump,
    ConversationRow,
    ConversationScan,
    Owner,
    ScannedConversation,
    Store,
    StoredItem,
)

FORMAT_OBJECT = "conversation.export"
FORMAT_VERSION = 1

CONVERSATIONS_PER_BATCH = 200
# Items are read in chunks of about CHUNK_BYTES: the chunk's length adapts to the sizes
# seen so far, from FIRST_CHUNK items up to MAX_CHUNK (a body may be 10 MiB).
FIRST_CHUNK, MAX_CHUNK, CHUNK_BYTES = 16, 1000, 4 << 20
FLUSH_BYTES = 1 << 20
# An import transaction ends after this many conversations, items or bytes.
IMPORT_CONVERSATIONS = 500
IMPORT_ITEMS = 5000
IMPORT_BYTES = 16 << 20

_KEYS = frozenset(
    {
        "object",
        "version",
        "id",
        "project",
        "user_key",
        "created_at",
        "updated_at",
        "metadata",
        "items",
    }
)


def _head(scanned: ScannedConversation) -> bytes:
    row = scanned.conversation
    return b"".join(
        (
            b'{"object":"',
            FORMAT_OBJECT.encode(),
            b'","version":',
            str(FORMAT_VERSION).encode(),
            b',"id":',
            orjson.dumps(row.id),
            b',"project":',
            orjson.dumps(scanned.owner.project),
            b',"user_key":',
            orjson.dumps(scanned.owner.user),
            b',"created_at":',
            str(row.created_at).encode(),
            b',"updated_at":',
            str(scanned.updated_at).encode(),
            b',"metadata":',
            row.metadata,
            *(
                (b',"safety_identifier":', orjson.dumps(row.safety_identifier))
                if row.safety_identifier is not None
                else ()
            ),
            b',"items":[',
        )
    )


async def export_lines(
    store: Store,
    *,
    project: str | None = None,
    ids: Sequence[str] | None = None,
    on_conversation: Callable[[], None] | None = None,
) -> AsyncIterator[bytes]:
    """The dump, as chunks of bytes (about 1 MiB each) that end where they end."""
    buffer: list[bytes] = []
    size = 0
    after_pk = 0
    limit = FIRST_CHUNK
    while True:
        batch = await store.scan_conversations(
            ConversationScan(after_pk, CONVERSATIONS_PER_BATCH, project=project, ids=ids)
        )
        if not batch:
            break
        after_pk = batch[-1].pk
        pks = [c.pk for c in batch if c.items]
        index = 0  # the conversation whose line is open
        written = 0  # items written on the open line
        buffer.append(_head(batch[0]))
        position = (0, -1)
        while pks:
            chunk = await store.scan_items(pks, after=position, limit=limit)
            chunk_bytes = 0
            for scanned in chunk:
                while scanned.conversation_pk != batch[index].pk:
                    buffer.append(b"]}\n")
                    if on_conversation:
                        on_conversation()
                    index += 1
                    written = 0
                    buffer.append(_head(batch[index]))
                if written:
                    buffer.append(b",")
                buffer.append(scanned.item.body)
                chunk_bytes += len(scanned.item.body)
                written += 1
            size += chunk_bytes
            if size >= FLUSH_BYTES:
                yield b"".join(buffer)
                buffer, size = [], 0
            if len(chunk) < limit:
                break
            position = (chunk[-1].conversation_pk, chunk[-1].seq)
            limit = max(1, min(MAX_CHUNK, CHUNK_BYTES * len(chunk) // max(1, chunk_bytes)))
        buffer.append(b"]}\n")
        if on_conversation:
            on_conversation()
        for rest in batch[index + 1 :]:
            buffer += [_head(rest), b"]}\n"]
            if on_conversation:
                on_conversation()
        yield b"".join(buffer)
        buffer, size = [], 0


class DumpError(ValueError):
    """A line of a dump that is not a conversation of a known format."""


def parse_line(line: bytes, number: int) -> ConversationDump:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DumpError(f"line {number}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("object") != FORMAT_OBJECT:
        raise DumpError(f"line {number}: not a {FORMAT_OBJECT!r} object")
    if data.get("version") != FORMAT_VERSION:
        raise DumpError(
            f"line {number}: format version {data.get('version')!r}; this convostore "
            f"reads version {FORMAT_VERSION}"
        )
    missing = _KEYS - data.keys()
    if missing:
        raise DumpError(f"line {number}: missing {', '.join(sorted(missing))}")
    checks: list[tuple[str, type]] = [
        ("id", str),
        ("project", str),
        ("user_key", str),
        ("created_at", int),
        ("updated_at", int),
        ("metadata", dict),
        ("items", list),
    ]
    for key, kind in checks:
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise DumpError(f"line {number}: {key!r} must be a {kind.__name__}")
    items = [_item(raw, number, n) for n, raw in enumerate(data["items"])]
    metadata = orjson.dumps(data["metadata"])
    safety = data.get("safety_identifier")  # D22; absent in dumps of older servers
    if safety is not None and not isinstance(safety, str):
        raise DumpError(f"line {number}: 'safety_identifier' must be a string or null")
    row = ConversationRow(data["id"], data["created_at"], metadata, safety_identifier=safety)
    return ConversationDump(
        Owner(data["project"], data["user_key"]), row, data["updated_at"], items
    )


def _item(raw: Any, number: int, index: int) -> StoredItem:
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("id"), str)
        or not isinstance(raw.get("type"), str)
    ):
        raise DumpError(f"line {number}: items[{index}] needs a string id and type")
    return StoredItem(raw["id"], raw["type"], orjson.dumps(raw), include.gated_mask(raw))


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0  # an id the store already had
    items: int = 0
    skipped_ids: list[str] = field(default_factory=list)


async def import_lines(
    store: Store,
    lines: Iterable[bytes],
    *,
    on_bytes: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import a dump line by line, in transactions of a few hundred conversations."""
    report = ImportReport()
    batch: list[ConversationDump] = []
    items = size = 0

    async def flush() -> None:
        nonlocal items, size
        if batch:
            # An id twice in a batch is imported once: its later lines are the skipped ones.
            skips = Counter(await store.import_conversations(batch))
            for dump in reversed(batch):
                if skips[dump.conversation.id]:
                    skips[dump.conversation.id] -= 1
                    report.skipped += 1
                    report.skipped_ids.append(dump.conversation.id)
                else:
                    report.imported += 1
                    report.items += len(dump.items)
        batch.clear()
        items = size = 0

    for number, line in enumerate(lines, 1):
        if on_bytes:
            on_bytes(len(line))
        if not line.strip():
            continue
        dump = parse_line(line, number)
        batch.append(dump)
        items += len(dump.items)
        size += len(line)
        if len(batch) >= IMPORT_CONVERSATIONS or items >= IMPORT_ITEMS or size >= IMPORT_BYTES:
            await flush()
    await flush()
    return report
