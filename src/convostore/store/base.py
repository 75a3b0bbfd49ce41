"""The storage protocol every backend satisfies, and the records it trades in.

A store keeps conversations and their items and answers the questions the service asks.
It holds no business rules: ids, validation, normalisation and error wording live in
:mod:`convostore.service`. It signals the few facts the service cannot know in advance
with the exceptions below.

Ordering: every conversation has a counter ``next_seq``; an append takes the
conversation's write lock (SQLite: the database write lock; PostgreSQL: the row lock
of ``UPDATE … RETURNING``), reserves ``len(items)`` consecutive positions and inserts
the items at them in request order. Items of one request are therefore contiguous and
ordered, and pages are read by keyset on ``(conversation, seq)``: O(log n) in the
conversation's length.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar


@dataclass(frozen=True, slots=True)
class Owner:
    """Who may see a conversation: the project of the API key and the isolation key (D11, D13)."""

    project: str = ""
    user: str = ""


@dataclass(frozen=True, slots=True)
class ConversationRow:
    id: str
    created_at: int
    metadata: bytes  # the metadata object, as stored JSON
    # D22: given on create, shown to operators, never on the wire Conversation object.
    safety_identifier: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class StoredItem:
    id: str
    type: str
    body: bytes  # the item, as stored JSON
    mask: int  # include values whose field the item carries (convostore.items.include)


_STORED_ITEM_FIELDS = tuple(
    getattr(StoredItem, name).__set__ for name in ("id", "type", "body", "mask")
)
assert StoredItem.__slots__ == ("id", "type", "body", "mask")


def stored_item(item_id: str, kind: str, body: bytes, mask: int) -> StoredItem:
    """``StoredItem(item_id, kind, body, mask)``, made in half the time: the frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__``, this through
    the slots themselves (an append makes one per item; issue 21)."""
    made = object.__new__(StoredItem)
    set_id, set_type, set_body, set_mask = _STORED_ITEM_FIELDS
    set_id(made, item_id)
    set_type(made, kind)
    set_body(made, body)
    set_mask(made, mask)
    return made


@dataclass(frozen=True, slots=True)
class PageQuery:
    """Which page of a list is asked for, on every list route and store query:
    ``after``, the id the page starts after (None: the first page); ``limit``, most
    entries; ``descending``, newest first (``order=desc``, the default)."""

    after: str | None
    limit: int
    descending: bool
    # The conversation list only (D24): the page just before this id, in the same order.
    before: str | None = field(default=None, kw_only=True)
    #: Most bytes of item bodies in the page once it holds one (None: no budget; the
    #: service sets --page-max-bytes, issue 15).
    max_bytes: int | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class ItemPage:
    items: list[StoredItem]
    has_more: bool


@dataclass(frozen=True, slots=True)
class KeyRow:
    """An API key as stored: never the secret, only its hash."""

    id: str
    hash: bytes
    prefix: str  # what may be shown of the secret, e.g. "sk-cs-AbCd…wxyz"
    project: str
    name: str
    created_at: int
    last_used_at: int | None = None
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class Remembered:
    """The answer to keep with a write made under an ``Idempotency-Key`` (issue 20),
    stored in the write's transaction. A record of the same owner and key created before
    ``expired_before`` has expired and is replaced; a live one makes the write fail with
    :class:`AnswerTaken`, undone."""

    key: str
    fingerprint: bytes
    answer: bytes
    created_at: int
    expired_before: int


@dataclass(frozen=True, slots=True)
class NewConversation:
    """A conversation to create: its row, the items it starts with, and the answer kept
    with the write when it is made under an ``Idempotency-Key`` (None: no key)."""

    conversation: ConversationRow
    items: Sequence[StoredItem] = ()
    remember: Remembered | None = None


@dataclass(frozen=True, slots=True)
class MetadataUpdate:
    """The metadata that replaces a conversation's, and the answer kept with the write."""

    conversation_id: str
    metadata: bytes
    remember: Remembered | None = None


@dataclass(frozen=True, slots=True)
class ItemAppend:
    """Items appended to a conversation, and the answer kept with the write."""

    conversation_id: str
    items: Sequence[StoredItem]
    remember: Remembered | None = None


class StoreError(Exception):
    """Base of the facts a store reports."""


class ConversationMissing(StoreError):
    """No conversation with that id belongs to the owner."""


class ItemMissing(StoreError):
    """The conversation holds no item with that id."""


class UntilMissing(ItemMissing):
    """A fork's ``until`` names no item of the source conversation (issue 18)."""


class AfterMissing(StoreError):
    """The ``after`` cursor names no item of the conversation."""


class ConversationAfterMissing(AfterMissing):
    """The ``after`` cursor of a conversation listing names no conversation of the owner."""


class ConversationBeforeMissing(StoreError):
    """The ``before`` cursor of a conversation listing names no conversation of the owner."""


class SearchAfterMissing(AfterMissing):
    """The ``after`` cursor of a search (``conversation_id/item_id``) names no result."""


class ItemConflict(StoreError):
    """An item id is already in the conversation."""


class DatabaseMissing(Exception):
    """The database named does not exist (or holds no convostore schema), and the caller
    asked not to create one: a typo in ``--db`` must not become a new, empty database.
    Raised by ``open`` for the CLI, never while serving, so not a fact the API answers."""


class StoreUnavailable(StoreError):
    """The database cannot serve right now (down, full, read-only, locked too long).

    Answered as 503; nothing of the failed call is stored.
    """


class OutcomeUnknown(StoreUnavailable):
    """The connection to the database was lost after a write was sent and before its
    answer came: the write may have been committed or not (issue 20). Answered as 503
    saying so; a retry with the same ``Idempotency-Key`` applies it exactly once."""


class AnswerTaken(StoreError):
    """Another request with the same idempotency key committed first: nothing of this
    call is stored; the stored answer is the one to give."""


#: How long one search may run, on both backends (issue 15); then SearchTooCostly.
SEARCH_TIME_LIMIT = 2.0


class SearchTooCostly(StoreError):
    """A search ran past its time limit (issue 15): the caller's query matches too much
    of the caller's own items to answer in time."""


class LeaseHeld(StoreError):
    """Another holder's lease on the conversation has not expired (issue 10)."""


class ResponseMissing(StoreError):
    """No stored response with that id belongs to the owner (or it was deleted)."""


class ResponseRunning(StoreError):
    """The response is a background one still queued or in progress."""


class LeaseLost(StoreError):
    """The conversation's lease is no longer the caller's: it expired and was taken, or
    was released. Nothing of the failed call is stored."""


StoreClass = TypeVar("StoreClass", bound=type)
Row = TypeVar("Row")


def fill_page(
    rows: Iterable[Row], limit: int, max_bytes: int | None, size: Callable[[Row], int]
) -> tuple[list[Row], bool]:
    """The page of ``rows`` (read lazily, in order) and whether more follow: it stops at
    ``limit`` rows, or before the row whose ``size`` would take the page past
    ``max_bytes`` (never before its first row), so a page of huge items holds few."""
    page: list[Row] = []
    total = 0
    for row in rows:
        if len(page) == limit:
            return page, True
        total += size(row)
        if page and max_bytes is not None and total > max_bytes:
            return page, True
        page.append(row)
    return page, False


def unavailable_on(*kinds: type[BaseException]) -> Callable[[StoreClass], StoreClass]:
    """Class decorator: the driver's ``kinds`` of error, raised by any public coroutine
    method, become :class:`StoreUnavailable` (with the driver's message)."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except kinds as exc:
                raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

        return guarded

    def decorate(cls: StoreClass) -> StoreClass:
        for name, member in list(vars(cls).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(member):
                setattr(cls, name, wrap(member))
        return cls

    return decorate


# -- records of the extensions: list, search, export/import, retention (issue 7) ----------


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    """Which conversations a list returns: all metadata pairs match (AND), and
    ``created_after <= created_at < created_before`` where given."""

    metadata: tuple[tuple[str, str], ...] = ()
    created_after: int | None = None
    created_before: int | None = None


@dataclass(frozen=True, slots=True)
class ListedConversation(ConversationRow):
    """A conversation as the list extension answers it (docs/list.md): the row, its last
    activity (``updated_at``, as retention reads it) and how many items it holds
    (``item_count``, kept by every write of items, migration 0011)."""

    last_active_at: int
    item_count: int


@dataclass(frozen=True, slots=True)
class ConversationPage:
    conversations: list[ListedConversation]
    has_more: bool


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Every phrase must occur (AND); a phrase is one or more terms in a row. Terms are
    runs of letters and digits; a term ending in ``*`` matches as a prefix."""

    phrases: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class ItemSearch:
    """A page of a search: at most ``limit`` hits of ``query``, after the hit ``after``
    (conversation id, item id; None: the first page), and no more than ``max_bytes`` of
    bodies once the page holds one (None: no budget)."""

    query: SearchQuery
    limit: int
    after: tuple[str, str] | None = None
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    conversation_id: str
    item: StoredItem


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    has_more: bool


@dataclass(frozen=True, slots=True)
class ConversationScan:
    """What a scan (export, purge) reads: conversations with ``pk > after_pk``, at most
    ``limit``, of one project (or all, less ``exclude_projects``), with these ids (or
    any), last active before a time (or any)."""

    after_pk: int
    limit: int
    project: str | None = None
    ids: Sequence[str] | None = None
    updated_before: int | None = None
    exclude_projects: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class ScannedConversation:
    """A conversation as export and purge see it; ``pk`` orders and resumes scans."""

    pk: int
    owner: Owner
    conversation: ConversationRow
    updated_at: int
    items: int  # how many items it holds


@dataclass(frozen=True, slots=True)
class ScannedItem:
    conversation_pk: int
    seq: int
    item: StoredItem


@dataclass(frozen=True, slots=True)
class ConversationDump:
    """A whole conversation to import, exactly as exported."""

    owner: Owner
    conversation: ConversationRow
    updated_at: int
    items: Sequence[StoredItem]


#: The statuses of a response still running (a background one, issue 17).
RUNNING = ("queued", "in_progress")


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """A stored response (issue 17): the Response object without its output (``body``),
    and where it sits in a ``previous_response_id`` chain."""

    id: str
    created_at: int
    status: str
    body: bytes  # the Response object as returned, "output" left out
    previous_id: str | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """What a response leaves beside its record (issue 17): its input and output items
    and, with ``conversation_id``, the conversation they are appended to (inputs, then
    outputs), under ``holder``'s lease when given."""

    inputs: Sequence[StoredItem]
    outputs: Sequence[StoredItem]
    conversation_id: str | None = None
    holder: str | None = None

    @property
    def items(self) -> list[StoredItem]:
        """What is appended to the conversation, in order."""
        return [*self.inputs, *self.outputs]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    record: ResponseRecord
    output: list[StoredItem]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """A stored event of a streamed background response (issue 17)."""

    seq: int  # its sequence_number
    body: bytes  # the event as sent, JSON
    terminal: bool


@dataclass(frozen=True, slots=True)
class ResponseDump:
    """A stored response as export writes it and import reads it: items whole."""

    owner: Owner
    record: ResponseRecord
    updated_at: int
    root_id: str
    inputs: Sequence[StoredItem]
    outputs: Sequence[StoredItem]


@dataclass(frozen=True, slots=True)
class ForkRequest:
    """A fork (issue 18): the conversation ``source_id`` copied into a new one, ``new_id``,
    created at ``created_at``, with ``metadata`` (None: the source's), holding the source's
    items up to and including ``until`` (None: all of them)."""

    source_id: str
    new_id: str
    created_at: int
    metadata: bytes | None = None
    until: str | None = None


@dataclass(frozen=True, slots=True)
class ResponsePurge:
    """Which stored responses retention deletes: at most ``limit`` whole trees whose last
    activity is before ``updated_before``, of one project (or all, less
    ``exclude_projects``)."""

    updated_before: int
    limit: int
    project: str | None = None
    exclude_projects: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class PoolUse:
    size: int  # connections open
    in_use: int  # of them, lent to a request
    max_size: int


class Store(Protocol):
    """What the service needs from storage. Every method is one transaction."""

    backend: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""
        ...

    async def schema_version(self) -> int: ...

    async def create_conversation(self, owner: Owner, new: NewConversation) -> None:
        """Raises ItemConflict, AnswerTaken."""
        ...

    async def get_conversation(self, owner: Owner, conversation_id: str) -> ConversationRow:
        """Raises ConversationMissing."""
        ...

    async def set_metadata(self, owner: Owner, update: MetadataUpdate) -> ConversationRow:
        """Replace the metadata. Raises ConversationMissing, AnswerTaken."""
        ...

    async def delete_conversation(self, owner: Owner, conversation_id: str) -> None:
        """Delete the conversation and its items. Raises ConversationMissing."""
        ...

    async def append_items(self, owner: Owner, append: ItemAppend) -> None:
        """Append after every stored item, contiguously. Raises ConversationMissing,
        ItemConflict, AnswerTaken."""
        ...

    # -- idempotency keys (issue 20) ----------------------------------------------------------

    async def find_answer(
        self, owner: Owner, key: str, created_since: int
    ) -> tuple[bytes, bytes] | None:
        """(fingerprint, answer) kept under the owner's key, if created at or after
        ``created_since``."""
        ...

    async def purge_answers(self, created_before: int, limit: int) -> int:
        """Delete at most ``limit`` kept answers created before a time; how many went."""
        ...

    async def list_items(self, owner: Owner, conversation_id: str, paging: PageQuery) -> ItemPage:
        """At most ``paging.limit`` items, and no more than ``paging.max_bytes`` of bodies
        once the page holds one (:func:`fill_page`): memory bounded whatever the items'
        sizes. Raises ConversationMissing, AfterMissing."""
        ...

    async def get_item(self, owner: Owner, conversation_id: str, item_id: str) -> StoredItem:
        """Raises ConversationMissing, ItemMissing."""
        ...

    async def delete_item(
        self, owner: Owner, conversation_id: str, item_id: str
    ) -> ConversationRow:
        """Raises ConversationMissing, ItemMissing."""
        ...

    async def find_items(self, owner: Owner, item_ids: Sequence[str]) -> dict[str, StoredItem]:
        """Items with these ids in any conversation of the owner (D7, D21)."""
        ...

    # -- API keys ---------------------------------------------------------------------------

    async def create_key(self, key: KeyRow) -> None: ...

    async def list_keys(self, project: str | None) -> list[KeyRow]:
        """Every key (of one project, or all), oldest first."""
        ...

    async def revoke_key(self, key_id: str, when: int) -> bool:
        """Mark a key revoked; False when no unrevoked key has that id."""
        ...

    async def find_key(self, key_hash: bytes) -> KeyRow | None: ...

    async def touch_key(self, key_id: str, when: int) -> None:
        """Record the last use of a key."""
        ...

    async def has_keys(self) -> bool:
        """Whether any key was ever created (revoked ones count: revoking the last key
        must not open the server)."""
        ...

    # -- extensions: list, search, export/import, retention, health (issue 7) ----------------

    async def list_conversations(
        self, owner: Owner, where: ConversationFilter, paging: PageQuery
    ) -> ConversationPage:
        """The owner's conversations in (created_at, pk) order. Raises AfterMissing."""
        ...

    async def search_items(self, owner: Owner, search: ItemSearch) -> SearchPage:
        """Items of the owner's conversations whose text matches, newest stored first.
        ``search.after`` is (conversation id, item id) of a previous hit; ``max_bytes``
        bounds the page as in :meth:`list_items`. Raises AfterMissing."""
        ...

    async def scan_conversations(self, scan: ConversationScan) -> list[ScannedConversation]:
        """The conversations ``scan`` names, in pk order, each with the number of items it
        holds."""
        ...

    async def scan_items(
        self, conversation_pks: Sequence[int], *, after: tuple[int, int], limit: int
    ) -> list[ScannedItem]:
        """Items of these conversations in (conversation pk, seq) order, after a position."""
        ...

    async def count_conversations(
        self, *, project: str | None, ids: Sequence[str] | None
    ) -> int: ...

    async def import_conversations(self, dumps: Sequence[ConversationDump]) -> list[str]:
        """Insert whole conversations in one transaction, keeping ids, times, owner and item
        order; a conversation whose id exists is skipped. Returns the skipped ids."""
        ...

    async def import_keys(self, keys: Sequence[KeyRow]) -> list[str]:
        """Insert API keys as exported (hashes, never secrets) in one transaction; a key
        whose id or hash exists is skipped. Returns the skipped ids."""
        ...

    async def analyze(self) -> None:
        """Refresh the planner's statistics after a bulk load (PostgreSQL ``ANALYZE``,
        SQLite ``PRAGMA optimize``)."""
        ...

    async def purge_conversations(self, pks: Sequence[int], updated_before: int) -> list[int]:
        """Delete these conversations (and their items) if still inactive since before
        ``updated_before``, in one transaction. Returns the pks deleted."""
        ...

    async def count_items(self) -> int:
        """Items stored (exact on SQLite; the statistics' live-row estimate on PostgreSQL)."""
        ...

    def pool_use(self) -> PoolUse: ...

    def health(self) -> str | None:
        """Why the database cannot be trusted (a SQLite file found corrupt), or None."""
        ...

    # -- response leases: one response in flight per conversation (issue 10) ----------------

    async def take_lease(
        self, owner: Owner, conversation_id: str, holder: str, seconds: float
    ) -> None:
        """Hold the conversation for ``seconds`` unless another holder's lease is still
        valid. Raises ConversationMissing, LeaseHeld."""
        ...

    async def renew_lease(
        self, owner: Owner, conversation_id: str, holder: str, seconds: float
    ) -> bool:
        """Extend the holder's lease to ``seconds`` from now; False if it is not theirs."""
        ...

    async def release_lease(self, owner: Owner, conversation_id: str, holder: str) -> None:
        """Drop the holder's lease (nothing if it is no longer theirs)."""
        ...

    async def append_items_leased(
        self, owner: Owner, conversation_id: str, items: Sequence[StoredItem], holder: str
    ) -> None:
        """:meth:`append_items`, committed only while ``holder`` holds the lease (checked
        under the conversation's write lock). Raises ConversationMissing, ItemConflict,
        LeaseLost."""
        ...

    # -- stored responses (issue 17) ---------------------------------------------------------

    async def save_response(self, owner: Owner, record: ResponseRecord | None, turn: Turn) -> None:
        """In one transaction: with ``turn.conversation_id``, append the turn's items to
        the conversation (under ``turn.holder``'s lease when given, like
        :meth:`append_items_leased`); with ``record``, store the response and its items,
        the conversation's by reference. Raises ConversationMissing, ItemConflict,
        LeaseLost, ResponseMissing (the previous response is gone)."""
        ...

    async def get_response(self, owner: Owner, response_id: str) -> StoredResponse:
        """Raises ResponseMissing."""
        ...

    async def delete_response(self, owner: Owner, response_id: str) -> None:
        """Delete the response's own data (never a conversation's items); it stays as a
        tombstone for the chains through it. Raises ResponseMissing."""
        ...

    async def list_response_inputs(
        self, owner: Owner, response_id: str, page: PageQuery
    ) -> ItemPage:
        """The response's input items, a page. Raises ResponseMissing, AfterMissing."""
        ...

    async def response_history(self, owner: Owner, response_id: str) -> list[StoredItem]:
        """The inputs and outputs of the response and every one before it in its chain,
        oldest first: what a response with ``previous_response_id`` continues. One
        statement, O(chain). Raises ResponseMissing."""
        ...

    # -- background responses (issue 17) --------------------------------------------------

    async def start_response(self, owner: Owner, record: ResponseRecord, seconds: float) -> None:
        """Store a background response while it runs (its status ``queued``), alive for
        ``seconds``. Raises ResponseMissing (the previous response is gone)."""
        ...

    async def renew_response(self, response_id: str, status: str, seconds: float) -> bool:
        """Keep a running response alive ``seconds`` more, with this status; False when it
        no longer runs (cancelled, or found dead)."""
        ...

    async def finish_response(self, owner: Owner, record: ResponseRecord, turn: Turn) -> bool:
        """The end of a background response, in one transaction: its final status and
        body, its items and, with ``turn.conversation_id``, the turn appended to it (as
        :meth:`save_response`), only while it is still running. False (nothing written)
        when it was cancelled or found dead meanwhile."""
        ...

    async def cancel_response(self, owner: Owner, response_id: str) -> StoredResponse:
        """Mark a running response ``cancelled`` (nothing if it has finished); the
        response as it is now. Raises ResponseMissing."""
        ...

    # -- streamed background responses (issue 17): store/sqlite_events.py, postgres_events.py

    async def append_response_events(
        self, response_id: str, first_seq: int, bodies: Sequence[bytes]
    ) -> bool:
        """Store events ``first_seq``, ``first_seq + 1``… of a response, only while it runs
        (queued or in progress). False (nothing written) when it no longer runs."""
        ...

    async def end_response_events(self, response_id: str, make: Callable[[int], bytes]) -> bool:
        """Append the terminal event ``make(seq)``, ``seq`` following the last event stored,
        unless a terminal event is stored already or none is (a response not streamed).
        True when this call appended it."""
        ...

    async def response_events(self, response_id: str, after: int, limit: int) -> list[StreamEvent]:
        """Up to ``limit`` stored events of the response with ``seq > after``, in order."""
        ...

    async def scan_responses(
        self, *, project: str | None, after_pk: int, limit: int
    ) -> list[tuple[int, ResponseDump]]:
        """Stored responses (not tombstones) with pk > after_pk, in pk order, whole."""
        ...

    async def import_responses(self, dumps: Sequence[ResponseDump]) -> list[str]:
        """Insert responses as exported (items whole); an id that exists is skipped.
        Returns the skipped ids."""
        ...

    async def purge_responses(self, purge: ResponsePurge) -> int:
        """Delete the response trees ``purge`` names, in one transaction. Returns the number
        of responses deleted."""
        ...

    # -- forks (issue 18) ---------------------------------------------------------------------

    async def fork_conversation(self, owner: Owner, request: ForkRequest) -> ListedConversation:
        """A new conversation of the owner holding the source's items up to and including
        ``request.until`` (all when None), in order, with their ids, in one transaction; its
        metadata is ``request.metadata``, or the source's when None. Raises
        ConversationMissing, ItemMissing (``until`` not in the source)."""
        ...
