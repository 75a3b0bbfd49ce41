"""Export and import: one JSON line per record, each naming its kind (docs/export.md).

A dump is the project's API keys (hashes only; ``api_key`` records), then one
``conversation.export`` record per conversation with its items, then an ``export.end``
trailer with the count of each kind, so a dump cut anywhere, even at a line boundary, is
detected. Import dispatches each record on the kind its ``object`` names (one branch of
``import_lines``; an unknown kind is refused by name), so a new kind of record (stored
responses) is one more branch and one more count. Every item is validated by the API's
own item registry before anything of its batch is written.

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

from convostore import errors
from convostore.items import include
from convostore.items.registry import Reference, Registry
from convostore.store.base import (
    ConversationDump,
    ConversationRow,
    ConversationScan,
    KeyRow,
    Owner,
    ResponseDump,
    ResponseRecord,
    ScannedConversation,
    Store,
    StoredItem,
)

FORMAT_OBJECT = "conversation.export"
KEY_OBJECT = "api_key"
END_OBJECT = "export.end"
FORMAT_VERSION = 1
KEY_HASH_BYTES = 32
# A stored response (issue 17): one line each, after the conversations, oldest first.
RESPONSE_OBJECT = "response.export"
RESPONSES_PER_BATCH = 200
# The trailer's counts, by kind (a dump of an older convostore counts no responses).
CONVERSATION, ITEM = "conversation", "item"
TRAILER_KINDS = (KEY_OBJECT, CONVERSATION, ITEM, RESPONSE_OBJECT)

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
    safety = row.safety_identifier
    return b"".join(
        (
            _line_start(FORMAT_OBJECT, row.id, scanned.owner, row.created_at, scanned.updated_at),
            b',"metadata":',
            row.metadata,
            b"" if safety is None else b',"safety_identifier":' + orjson.dumps(safety),
            b',"items":[',
        )
    )


def _line_start(
    kind: str, record_id: str, owner: Owner, created_at: int, updated_at: int, **more: Any
) -> bytes:
    """The fields a conversation's or a response's line begins with, and ``more`` (JSON
    values), as an object left open for the stored bytes that follow."""
    fields = {
        "object": kind,
        "version": FORMAT_VERSION,
        "id": record_id,
        "project": owner.project,
        "user_key": owner.user,
        "created_at": created_at,
        "updated_at": updated_at,
        **more,
    }
    return orjson.dumps(fields)[:-1]


async def export_lines(
    store: Store,
    *,
    project: str | None = None,
    ids: Sequence[str] | None = None,
    on_conversation: Callable[[], None] | None = None,
    counts: Counter[str] | None = None,
) -> AsyncIterator[bytes]:
    """The conversation records, as chunks of bytes (about 1 MiB each) that end where
    they end; ``counts`` is told how many conversations and items were written."""
    counts = Counter() if counts is None else counts
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
        counts[CONVERSATION] += len(batch)
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
                counts[ITEM] += 1
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
    if ids is None:  # a dump of named conversations holds no responses
        async for lines in _response_lines(store, project, counts):
            yield lines


async def _response_lines(
    store: Store, project: str | None, counts: Counter[str]
) -> AsyncIterator[bytes]:
    after_pk = 0
    while True:
        batch = await store.scan_responses(
            project=project, after_pk=after_pk, limit=RESPONSES_PER_BATCH
        )
        if not batch:
            return
        after_pk = batch[-1][0]
        counts[RESPONSE_OBJECT] += len(batch)
        yield b"".join(_response_line(dump) for _, dump in batch)


def _response_line(dump: ResponseDump) -> bytes:
    record = dump.record
    start = _line_start(
        RESPONSE_OBJECT,
        record.id,
        dump.owner,
        record.created_at,
        dump.updated_at,
        previous_response_id=record.previous_id,
        root_id=dump.root_id,
        status=record.status,
    )
    return b"".join(
        (
            start,
            b',"response":',
            record.body,
            b',"input":[',
            b",".join(item.body for item in dump.inputs),
            b'],"output":[',
            b",".join(item.body for item in dump.outputs),
            b"]}\n",
        )
    )


def _key_line(key: KeyRow) -> bytes:
    return (
        orjson.dumps(
            {
                "object": KEY_OBJECT,
                "version": FORMAT_VERSION,
                "id": key.id,
                "hash": key.hash.hex(),
                "prefix": key.prefix,
                "project": key.project,
                "name": key.name,
                "created_at": key.created_at,
                "last_used_at": key.last_used_at,
                "revoked_at": key.revoked_at,
            }
        )
        + b"\n"
    )


def _end_line(counts: Counter[str]) -> bytes:
    kinds = {kind: counts[kind] for kind in TRAILER_KINDS}
    return orjson.dumps({"object": END_OBJECT, "version": FORMAT_VERSION, "counts": kinds}) + b"\n"


async def export_dump(
    store: Store,
    *,
    project: str | None = None,
    ids: Sequence[str] | None = None,
    keys: bool = True,
    on_conversation: Callable[[], None] | None = None,
    counts: Counter[str] | None = None,
) -> AsyncIterator[bytes]:
    """A whole dump: the API keys (of ``project``, or all; none with ``keys`` off or
    when only some conversations are asked for), the conversations, the trailer."""
    counts = Counter() if counts is None else counts
    if keys and ids is None:
        rows = await store.list_keys(project)
        counts[KEY_OBJECT] += len(rows)
        if rows:
            yield b"".join(_key_line(row) for row in rows)
    async for chunk in export_lines(
        store, project=project, ids=ids, on_conversation=on_conversation, counts=counts
    ):
        yield chunk
    yield _end_line(counts)


class DumpError(ValueError):
    """A line of a dump that is not a record of a known kind and format."""


def _record(line: bytes, number: int) -> dict[str, Any]:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DumpError(f"line {number}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("object"), str):
        raise DumpError(f"line {number}: not a record of a convostore export")
    return data


def parse_line(line: bytes, number: int) -> ConversationDump:
    data = _record(line, number)
    if data["object"] != FORMAT_OBJECT:
        raise DumpError(f"line {number}: not a {FORMAT_OBJECT!r} object")
    return _conversation(data, number)


def _conversation(data: dict[str, Any], number: int) -> ConversationDump:
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


def _response(data: dict[str, Any], number: int) -> ResponseDump:
    if data.get("version") != FORMAT_VERSION:
        raise DumpError(f"line {number}: response format version {data.get('version')!r}")
    checks: list[tuple[str, type | tuple[type, ...]]] = [
        ("id", str),
        ("project", str),
        ("user_key", str),
        ("created_at", int),
        ("updated_at", int),
        ("previous_response_id", (str, type(None))),
        ("root_id", str),
        ("status", str),
        ("response", dict),
        ("input", list),
        ("output", list),
    ]
    for key, kind in checks:
        if key not in data:
            raise DumpError(f"line {number}: missing {key}")
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise DumpError(f"line {number}: {key!r} has the wrong type")
    record = ResponseRecord(
        data["id"],
        data["created_at"],
        data["status"],
        orjson.dumps(data["response"]),
        data["previous_response_id"],
    )
    return ResponseDump(
        Owner(data["project"], data["user_key"]),
        record,
        data["updated_at"],
        data["root_id"],
        [_item(raw, number, n) for n, raw in enumerate(data["input"])],
        [_item(raw, number, n) for n, raw in enumerate(data["output"])],
    )


def _item(raw: Any, number: int, index: int) -> StoredItem:
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("id"), str)
        or not isinstance(raw.get("type"), str)
    ):
        raise DumpError(f"line {number}: items[{index}] needs a string id and type")
    return StoredItem(raw["id"], raw["type"], orjson.dumps(raw), include.gated_mask(raw))


def _key(data: dict[str, Any], number: int) -> KeyRow:
    if data.get("version") != FORMAT_VERSION:
        raise DumpError(f"line {number}: api_key format version {data.get('version')!r}")
    try:
        key = KeyRow(
            id=data["id"],
            hash=bytes.fromhex(data["hash"]),
            prefix=data["prefix"],
            project=data["project"],
            name=data["name"],
            created_at=data["created_at"],
            last_used_at=data["last_used_at"],
            revoked_at=data["revoked_at"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DumpError(f"line {number}: an api_key record needs {exc}") from None
    texts = (key.id, key.prefix, key.project, key.name)
    stamps = (key.created_at, key.last_used_at, key.revoked_at)
    if (
        not all(isinstance(t, str) for t in texts)
        or not all(t is None or (isinstance(t, int) and not isinstance(t, bool)) for t in stamps)
        or key.created_at is None
        or len(key.hash) != KEY_HASH_BYTES
    ):
        raise DumpError(f"line {number}: a malformed api_key record")
    return key


def _end(data: dict[str, Any], number: int) -> dict[str, int]:
    counts = data.get("counts")
    if not isinstance(counts, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in counts.values()
    ):
        raise DumpError(f"line {number}: an export.end record needs its counts")
    return {str(k): v for k, v in counts.items()}


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0  # an id the store already had
    items: int = 0
    skipped_ids: list[str] = field(default_factory=list)
    keys: int = 0
    keys_skipped: int = 0
    committed_through: int = 0  # every record up to this line is in the database
    read: Counter[str] = field(default_factory=Counter)  # records read, by trailer kind
    responses: int = 0  # stored responses imported (issue 17)
    skipped_responses: int = 0  # an id the store already had

    def account(self) -> str:
        """What is in the database, in words."""
        return (
            f"imported {self.imported} conversations ({self.items} items), {self.keys} "
            f"API keys and {self.responses} stored responses; skipped {self.skipped} "
            f"conversations, {self.keys_skipped} keys and {self.skipped_responses} responses "
            "already there"
        )


class ImportFailed(Exception):
    """An import stopped: ``report`` says exactly what it had committed by then."""

    def __init__(self, cause: str, report: ImportReport):
        self.cause = cause
        self.report = report
        super().__init__(
            f"{cause}. Committed before stopping: every record through line "
            f"{report.committed_through} ({report.account()}); nothing after it was imported. "
            "Fix or complete the dump and run the same import again: what is already there "
            "is skipped, so it resumes where it stopped."
        )


async def import_lines(
    store: Store,
    lines: Iterable[bytes],
    *,
    registry: Registry | None = None,
    keys: bool = True,
    require_end: bool = True,
    on_bytes: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import a dump line by line, in transactions of a few hundred conversations.

    Every item is checked by the API's item registry before its batch is written. The
    import stops at the first bad record, at a dump that ends without its trailer (cut)
    and at counts that disagree with the trailer, raising :class:`ImportFailed` with an
    account of what was committed: everything before the bad line, nothing after it.
    Run again, it skips what is there and so resumes. PostgreSQL's statistics are
    refreshed at the end (``ANALYZE``).
    """
    report = ImportReport()
    check = registry or Registry()
    batch: list[ConversationDump] = []
    key_batch: list[KeyRow] = []
    items = size = 0
    last_line = 0
    ended: dict[str, int] | None = None
    responses: list[ResponseDump] = []

    async def flush() -> None:
        nonlocal items, size
        if key_batch:
            skipped_keys = await store.import_keys(key_batch)
            report.keys_skipped += len(skipped_keys)
            report.keys += len(key_batch) - len(skipped_keys)
            key_batch.clear()
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
        if responses:  # after the conversations whose items they may name
            skipped_responses = await store.import_responses(responses)
            report.skipped_responses += len(skipped_responses)
            report.responses += len(responses) - len(skipped_responses)
            responses.clear()
        items = size = 0
        report.committed_through = last_line

    async def stop(cause: str) -> ImportFailed:
        await flush()
        return ImportFailed(cause, report)

    try:
        for number, line in enumerate(lines, 1):
            if on_bytes:
                on_bytes(len(line))
            if not line.strip():
                last_line = number
                continue
            if not line.endswith(b"\n"):
                raise await stop(
                    f"line {number} is cut short (no end of line): the dump is truncated"
                )
            if ended is not None:
                raise await stop(f"line {number}: a record after the export.end trailer")
            data = _record(line, number)
            kind = data["object"]
            if kind == FORMAT_OBJECT:
                dump = _conversation(data, number)
                _validate(check, dump, number)
                report.read[CONVERSATION] += 1
                report.read[ITEM] += len(dump.items)
                batch.append(dump)
                items += len(dump.items)
                size += len(line)
            elif kind == RESPONSE_OBJECT:
                report.read[RESPONSE_OBJECT] += 1
                responses.append(_response(data, number))
                if len(responses) >= RESPONSES_PER_BATCH:
                    await flush()
            elif kind == KEY_OBJECT:
                report.read[KEY_OBJECT] += 1
                if keys:
                    key_batch.append(_key(data, number))
                else:
                    _key(data, number)
            elif kind == END_OBJECT:
                ended = _end(data, number)
            else:
                raise DumpError(
                    f"line {number}: unknown record kind {kind!r} (a dump of a newer convostore?)"
                )
            if len(batch) >= IMPORT_CONVERSATIONS or items >= IMPORT_ITEMS or size >= IMPORT_BYTES:
                await flush()
            last_line = number
    except DumpError as exc:
        raise await stop(str(exc)) from None
    if ended is None and require_end:
        raise await stop(
            f"the dump ends at line {last_line} without its export.end trailer: it was cut "
            "short (or made by a convostore before 0.2; --no-end-check imports such a dump)"
        )
    if ended is not None:
        wrong = [
            f"{kind}: {ended.get(kind, 0)} in the trailer, {report.read[kind]} read"
            for kind in TRAILER_KINDS
            if ended.get(kind, 0) != report.read[kind]
        ]
        if wrong:
            raise await stop(
                "the dump's counts disagree with its trailer (" + "; ".join(wrong) + ")"
            )
    await flush()
    await store.analyze()
    return report


def _validate(registry: Registry, dump: ConversationDump, number: int) -> None:
    """Each item as the API would check it (a "bogus" type is refused, as on POST)."""
    for index, item in enumerate(dump.items):
        raw = orjson.loads(item.body)
        try:
            prepared = registry.prepare(raw, f"items[{index}]")
        except errors.ApiError as refused:
            raise DumpError(
                f"line {number}: conversation {dump.conversation.id}: {refused.message}"
            ) from None
        if isinstance(prepared, Reference):
            raise DumpError(
                f"line {number}: conversation {dump.conversation.id}: items[{index}] is an "
                "item_reference, which is never stored"
            )
