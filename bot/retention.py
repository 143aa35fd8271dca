"""The daily prune: what is kept, and for how long (RETENTION_DAYS; sources nobody follows,
30 days). Each batch is its own short transaction."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.weekly import DAYS
from storage import retention
from storage.db import Sessions

log = logging.getLogger(__name__)

BATCH = 5_000  # rows per transaction: a big prune never holds SQLite's write lock for long
SOURCES_PER_RUN = 1_000
# /stats and the weekly summary read the last 7 local days (7 days and an hour across a DST
# change) and the day before: rows touched since then stay, whatever RETENTION_DAYS says.
STATS_WINDOW = timedelta(days=DAYS + 1)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one prune deleted."""

    deliveries: int = 0
    digests: int = 0
    offers: int = 0
    sources: int = 0


class Retention:
    """Deletes settled outbox rows, sent digests and offers older than `days`, and the
    sources nobody has followed for 30 days."""

    def __init__(self, *, sessions: Sessions, clock: Clock, days: int, batch: int = BATCH) -> None:
        self._sessions = sessions
        self._clock = clock
        self._keep = max(timedelta(days=days), STATS_WINDOW)
        self._days = days
        self._batch = batch
        self._stopping = False

    def stop(self) -> None:
        """Stop after the current batch (at shutdown; the next prune goes on from there)."""
        self._stopping = True

    async def _drain(
        self, step: Callable[[AsyncSession], Awaitable[int]], *, full: int | None = None
    ) -> int:
        """Run `step` in one transaction after another until a batch deletes fewer than
        `full` rows (the batch size unless given)."""
        full = self._batch if full is None else full
        total = 0
        while True:
            async with self._sessions.begin() as session:
                done = await step(session)
            total += done
            if done < full or self._stopping:
                return total

    async def prune(self) -> Pruned:
        """One prune, logged in one line with its counts."""
        now = self._clock.now()
        before = now - self._keep
        deliveries = await self._drain(
            lambda s: retention.prune_deliveries(s, before=before, limit=self._batch)
        )
        digests = await self._drain(
            lambda s: retention.prune_digests(s, before=before, limit=self._batch)
        )
        sources = await self._prune_sources(now)
        offers = await self._drain(
            lambda s: retention.prune_offers(s, before=before, limit=self._batch)
        )
        pruned = Pruned(deliveries=deliveries, digests=digests, offers=offers, sources=sources)
        log.info(
            "retention: deleted %d outbox rows, %d digests and %d offers older than %d days, "
            "and %d sources unfollowed for %d days",
            pruned.deliveries,
            pruned.digests,
            pruned.offers,
            self._days,
            pruned.sources,
            retention.UNFOLLOWED_GRACE.days,
        )
        return pruned

    async def _prune_sources(self, now: datetime) -> int:
        unfollowed_before = now - retention.UNFOLLOWED_GRACE
        settled_before = now - STATS_WINDOW
        async with self._sessions.begin() as session:
            await retention.mark_unfollowed(session, now=now)
        async with self._sessions() as session:
            candidates = await retention.unfollowed_sources(
                session,
                unfollowed_before=unfollowed_before,
                settled_before=settled_before,
                limit=SOURCES_PER_RUN,
            )
        deleted = 0
        for source_id in candidates:

            def step(session: AsyncSession, source_id: int = source_id) -> Awaitable[int]:
                return retention.prune_source_rows(
                    session, source_id=source_id, settled_before=settled_before, limit=self._batch
                )

            # Its outbox rows, then its offers, then its entries: until a batch finds none.
            await self._drain(step, full=1)
            if self._stopping:
                break
            async with self._sessions.begin() as session:
                deleted += await retention.delete_source(
                    session,
                    source_id=source_id,
                    unfollowed_before=unfollowed_before,
                    settled_before=settled_before,
                )
        return deleted
