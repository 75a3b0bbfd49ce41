"""Retention: delete conversations whose last activity is older than a project's limit,
and stored responses whose chain's last activity is (issue 17).

The rules come from ``--retention-days`` (every project) and ``--retention-projects``
(``acme=30,beta=7``: per project, 0 = keep forever). A pass walks the conversations of
each rule by primary key (one pass over the table, no index on ``updated_at`` to keep
appends cheap) and deletes what it finds in small transactions: at most
``batch_size`` conversations and about ``MAX_BATCH_ITEMS`` items each, with a pause
between them, so requests never wait long for the write lock. Every delete re-checks
``updated_at``, so a conversation that came back to life since it was found stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from convostore.service.idempotency import Idempotency
from convostore.store.base import ConversationScan, ResponsePurge, ScannedConversation, Store

log = logging.getLogger("convostore.retention")

DAY = 86_400
MAX_BATCH_ITEMS = 10_000
PAUSE_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class Rule:
    """Conversations of ``project`` (``None``: every project not in ``exclude``) inactive
    for more than ``days`` days go."""

    project: str | None
    days: int
    exclude: tuple[str, ...] = ()


def rules(default_days: int, by_project: dict[str, int]) -> list[Rule]:
    """The rules to apply, without the ones that keep forever (0 days)."""
    out = [Rule(project, days) for project, days in sorted(by_project.items()) if days > 0]
    if default_days > 0:
        out.append(Rule(None, default_days, tuple(sorted(by_project))))
    return out


@dataclass
class Gone:
    conversations: int = 0
    items: int = 0
    oldest_activity: int | None = None


@dataclass
class PurgeReport:
    dry_run: bool
    by_project: dict[str, Gone] = field(default_factory=dict)
    answers: int = 0  # expired Idempotency-Key answers deleted (issue 20)
    responses: int = 0  # stored responses deleted (issue 17); not counted by a dry run

    @property
    def conversations(self) -> int:
        return sum(g.conversations for g in self.by_project.values())

    @property
    def items(self) -> int:
        return sum(g.items for g in self.by_project.values())

    def count(self, scanned: ScannedConversation) -> None:
        gone = self.by_project.setdefault(scanned.owner.project, Gone())
        gone.conversations += 1
        gone.items += scanned.items
        if gone.oldest_activity is None or scanned.updated_at < gone.oldest_activity:
            gone.oldest_activity = scanned.updated_at


class Purger:
    def __init__(
        self,
        store: Store,
        rules: list[Rule],
        *,
        batch_size: int = 200,
        pause: float = PAUSE_SECONDS,
        idempotency: Idempotency | None = None,
    ):
        self.store = store
        self.rules = rules
        self.batch_size = batch_size
        self.pause = pause
        self.idempotency = idempotency

    async def run(
        self,
        *,
        dry_run: bool = False,
        now: float | None = None,
        on_deleted: Callable[[int], None] | None = None,
    ) -> PurgeReport:
        """One pass over every rule, then over the expired Idempotency-Key answers;
        ``on_deleted`` hears how many conversations each committed batch deleted (for a
        progress bar)."""
        report = PurgeReport(dry_run)
        if self.idempotency is not None and not dry_run:
            report.answers = await self.idempotency.purge()
        now = time.time() if now is None else now
        for rule in self.rules:
            cutoff = int(now) - rule.days * DAY
            after_pk = 0
            while True:
                found = await self.store.scan_conversations(
                    ConversationScan(
                        after_pk,
                        self.batch_size,
                        project=rule.project,
                        updated_before=cutoff,
                        exclude_projects=rule.exclude,
                    )
                )
                if not found:
                    break
                after_pk = found[-1].pk
                if dry_run:
                    for scanned in found:
                        report.count(scanned)
                    continue
                for batch in _batches(found, self.batch_size):
                    deleted = set(
                        await self.store.purge_conversations([s.pk for s in batch], cutoff)
                    )
                    for scanned in batch:  # those that came back to life stay
                        if scanned.pk in deleted:
                            report.count(scanned)
                    if on_deleted:
                        on_deleted(len(deleted))
                    await asyncio.sleep(self.pause)
            if not dry_run:
                report.responses += await self._purge_responses(rule, cutoff)
        return report

    async def _purge_responses(self, rule: Rule, cutoff: int) -> int:
        """Stored responses go by whole chains (trees), when the newest response of the
        tree is older than the cutoff: a chain a client still continues stays whole."""
        gone = 0
        while True:
            deleted = await self.store.purge_responses(
                ResponsePurge(cutoff, self.batch_size, rule.project, rule.exclude)
            )
            gone += deleted
            if not deleted:
                return gone
            await asyncio.sleep(self.pause)


def _batches(found: list[ScannedConversation], size: int) -> list[list[ScannedConversation]]:
    """Split into transactions of at most ``size`` conversations and about
    :data:`MAX_BATCH_ITEMS` items (a bigger conversation goes alone)."""
    out: list[list[ScannedConversation]] = []
    current: list[ScannedConversation] = []
    items = 0
    for scanned in found:
        if current and (len(current) >= size or items + scanned.items > MAX_BATCH_ITEMS):
            out.append(current)
            current, items = [], 0
        current.append(scanned)
        items += scanned.items
    if current:
        out.append(current)
    return out


async def purge_forever(
    purger: Purger,
    interval: float,
    first_delay: float,
    on_report: Callable[[PurgeReport], None] | None = None,
) -> None:
    """The server's background purge: a pass every ``interval`` seconds until cancelled.
    A failed pass (database down) is logged and retried at the next interval."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            report = await purger.run()
            if on_report:
                on_report(report)
            if report.conversations:
                log.info(
                    "retention: deleted %d conversations (%d items)",
                    report.conversations,
                    report.items,
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention: purge pass failed; retrying in %.0f s", interval)
        await asyncio.sleep(interval)


def start_purging(
    store: Store,
    rules: list[Rule],
    *,
    batch_size: int,
    interval: float,
    on_report: Callable[[PurgeReport], None] | None = None,
    idempotency: Idempotency | None = None,
) -> asyncio.Task[None]:
    """The server's background purge as a task of the running loop (stop it with
    :func:`stop_purging`). The first pass waits up to a minute, to spread the processes.
    It also deletes expired Idempotency-Key answers (``idempotency``)."""
    purger = Purger(store, rules, batch_size=batch_size, idempotency=idempotency)
    first_delay = random.uniform(0, min(60.0, interval))
    return asyncio.get_running_loop().create_task(
        purge_forever(purger, interval, first_delay, on_report)
    )


async def stop_purging(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
