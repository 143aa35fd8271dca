"""A poll: due sources -> new posts -> offers stored once -> outbox rows, in one transaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.budget import month_key, next_month, outlook
from bot.classify import analyse, catalogue
from bot.clock import Clock
from bot.sources.base import (
    Account,
    AccountNotFound,
    AccountSuspended,
    AuthError,
    Batch,
    RateLimited,
    Unavailable,
)
from bot.sources.x import XSource
from storage import chats, outbox, sources, usage
from storage.outbox import IncomingOffer, Reading
from storage.sources import SourceInfo

log = logging.getLogger(__name__)

X_KIND = "x"
MAX_BACKOFF = timedelta(hours=1)
STALE_AFTER = timedelta(days=1)
POLL_CONCURRENCY = 4
DUE_BATCH = 200
# A claimed source is this process's to poll until then (a dead process's lease runs out).
POLL_LEASE = timedelta(minutes=5)
# An offer posted again within this window (by any account) is the same story: sent once.
STORY_WINDOW = timedelta(days=7)
# Posts shorter than this are never merged into a story ("Merci !" is not an offer twice).
STORY_MIN_WORDS = 6


def read(text: str) -> Reading:
    """What the classifier understood of a post, as storage keeps it."""
    analysis = analyse(text)
    long_enough = len(analysis.body) >= STORY_MIN_WORDS
    return Reading(
        is_offer=analysis.is_offer,
        categories=analysis.categories,
        tags=analysis.tags(),
        search_text=analysis.search_text,
        fingerprint=analysis.fingerprint if long_enough else None,
        sketch=catalogue().sketch_words(analysis.body) if long_enough else (),
    )


def _read_safely(text: str, url: str) -> Reading | None:
    """`read`, or None (the post still goes to its account's followers, unclassified) if the
    classifier fails on it: one odd post must not hold up every poll."""
    try:
        return read(text)
    except Exception:
        log.exception("could not classify %s; relaying it to its account's followers only", url)
        return None


def backoff(interval: timedelta, error_count: int) -> timedelta:
    """Delay before retrying a failing source: the interval doubled per consecutive failure."""
    delay: timedelta = interval * (2 ** min(error_count, 16))
    return min(delay, max(MAX_BACKOFF, interval))


class Poller:
    """Polls every due X source once for all its subscribers."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        x: XSource,
        interval_seconds: float,
        on_new_deliveries: Callable[[], None] = lambda: None,
        monthly_budget: int = 10_000,
        operators: frozenset[int] = frozenset(),
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._x = x
        self._interval = timedelta(seconds=interval_seconds)
        self._on_new_deliveries = on_new_deliveries
        self._auth_reported = False
        self._budget = monthly_budget
        self._operators = operators
        self._stretch = 1.0

    async def tick(self) -> int:
        """Poll the sources that are due; returns how many outbox rows were written.

        Fetches run concurrently; what they bring is stored in one transaction, so the same
        offer posted by two accounts in one cycle is one story before anything is sent.
        """
        now = self._clock.now()
        if not await self._within_budget(now):
            return 0
        async with self._sessions.begin() as session:
            due = await sources.claim_due_sources(
                session, kind=X_KIND, now=now, limit=DUE_BATCH, lease_until=now + POLL_LEASE
            )
        semaphore = asyncio.Semaphore(POLL_CONCURRENCY)
        rate_limited = asyncio.Event()

        async def one(source: SourceInfo) -> tuple[SourceInfo, Batch] | None:
            async with semaphore:
                if rate_limited.is_set():
                    return None
                try:
                    batch = await self.fetch(source)
                except RateLimited as exc:
                    rate_limited.set()
                    await self._hold_all(exc)
                    return None
                except Exception:
                    # One source's surprise must not stop the others' polls.
                    log.exception("polling @%s failed unexpectedly", source.display_name)
                    await self._failed(source, "unexpected error")
                    return None
                return None if batch is None else (source, batch)

        fetched = [done for done in await asyncio.gather(*(one(s) for s in due)) if done]
        written = await self._store(fetched)
        if written:
            self._on_new_deliveries()
        return written

    async def _within_budget(self, now: datetime) -> bool:
        """Whether X may be read now: not at the month's budget (nor capped by X). Sets how
        much to stretch the poll interval, and tells the operators once at 80% and at 100%."""
        month = month_key(now)
        async with self._sessions() as session:
            used = await usage.get(session, month)
        look = outlook(used.posts, self._budget, now)
        if used.capped:
            return False  # X itself capped the app: nothing before the next month
        if look.exhausted:
            # Checked at every tick: a budget raised by the operator resumes polling at once.
            if not used.spent and await self._tell_once(now, "spent", "capped", used.posts):
                log.warning(
                    "X polling stopped until %s: the monthly read budget is spent",
                    next_month(now).isoformat(),
                )
            return False
        if look.near and not used.warned:
            await self._tell_once(now, "warned", "near", used.posts)
        self._stretch = look.stretch
        return True

    async def _tell_once(self, now: datetime, flag: str, state: str, used: int) -> bool:
        """Tell the operators, once per month whichever process gets there first."""
        async with self._sessions.begin() as session:
            if not await usage.flag(session, month=month_key(now), name=flag):
                return False
            await self._tell_operators(
                session,
                {
                    "code": "x_budget",
                    "state": state,
                    "used": used,
                    "until": next_month(now).isoformat(),
                },
                now,
            )
        self._on_new_deliveries()
        return True

    async def _x_capped(self, now: datetime) -> None:
        """X answered `usage-capped`: no X read until the next UTC month, across restarts."""
        async with self._sessions() as session:
            used = await usage.get(session, month_key(now))
        if await self._tell_once(now, "capped", "x_capped", used.posts):
            async with self._sessions.begin() as session:
                await sources.postpone_all(session, kind=X_KIND, until=next_month(now))
            log.warning(
                "X capped this app's usage: X polling stopped until %s",
                next_month(now).isoformat(),
            )

    async def _tell_operators(
        self, session: AsyncSession, payload: dict[str, object], now: datetime
    ) -> None:
        known = await chats.existing_ids(session, sorted(self._operators))
        await outbox.enqueue_notice(
            session, chat_ids=known, payload={**payload, "budget": self._budget}, now=now
        )

    async def _hold_all(self, exc: RateLimited) -> None:
        if exc.usage_capped:  # X's own monthly cap: the budget case, not a rate limit
            await self._x_capped(self._clock.now())
            return
        until = max(exc.reset_at, self._clock.now() + timedelta(seconds=1))
        log.warning("X rate limit reached: no X request before %s", until.isoformat())
        async with self._sessions.begin() as session:
            await sources.postpone_all(session, kind=X_KIND, until=until)

    async def fetch(self, source: SourceInfo) -> Batch | None:
        """Read one source's new posts; None when it failed (recorded); raises RateLimited."""
        account = Account(source.external_id, source.display_name, source.display_name)
        now = self._clock.now()
        since_id, start_time = source.cursor, None
        if since_id is None:
            # First poll: only what was posted since the first follow, nothing older.
            start_time = source.created_at
        elif now - source.next_poll_at > STALE_AFTER:
            # Nobody active followed it for a while (e.g. its only follower blocked the bot and
            # came back): restart it from a day ago, not from the backlog of the idle weeks.
            since_id, start_time = None, now - STALE_AFTER
            async with self._sessions.begin() as session:
                await sources.restart(session, source_id=source.source_id, since=start_time)
        try:
            batch = await self._x.fetch_new(account, since_id=since_id, start_time=start_time)
        except (AccountNotFound, AccountSuspended) as exc:
            await self._account_gone(source, str(exc))
            return None
        except AuthError as exc:
            if not self._auth_reported:
                log.error("X refused jobrelay's credentials (%s): check X_BEARER_TOKEN", exc)
                self._auth_reported = True
            await self._failed(source, str(exc))
            return None
        except Unavailable as exc:
            log.info("polling @%s failed: %s", source.display_name, exc)
            await self._failed(source, str(exc))
            return None
        self._auth_reported = False
        return batch

    async def _store(self, fetched: list[tuple[SourceInfo, Batch]]) -> int:
        """Offers, stories, outbox rows and cursors of one cycle, all in one transaction."""
        if not fetched:
            return 0
        incoming = [
            IncomingOffer(source.source_id, post, _read_safely(post.text, post.url))
            for source, batch in fetched
            for post in batch.posts
        ]
        # Oldest first across accounts (a chat gets a cycle's offers in the order posted).
        incoming.sort(key=lambda o: o.post.posted_at or datetime.min.replace(tzinfo=UTC))
        now = self._clock.now()
        async with self._sessions.begin() as session:
            offer_ids = await outbox.store_offers(session, offers=incoming, now=now)
            await outbox.link_stories(
                session,
                offer_ids=offer_ids,
                since=now - STORY_WINDOW,
                near_identical=catalogue().near_identical,
            )
            written = await outbox.fan_out(session, offer_ids=offer_ids, now=now)
            for source, batch in fetched:
                await sources.record_poll(
                    session,
                    source_id=source.source_id,
                    cursor=batch.cursor,
                    next_poll_at=now + self._interval * self._stretch,
                )
            # Billed reads, counted with the posts they brought (one transaction).
            await usage.record(
                session,
                month=month_key(now),
                posts=sum(batch.billed for _, batch in fetched),
                requests=sum(batch.requests for _, batch in fetched),
            )
        if incoming:
            log.info(
                "%d new post(s) from %d account(s), %d delivery row(s)",
                len(offer_ids),
                len({o.source_id for o in incoming}),
                written,
            )
        return written

    async def _failed(self, source: SourceInfo, error: str) -> None:
        retry_at = self._clock.now() + backoff(self._interval, source.error_count)
        async with self._sessions.begin() as session:
            await sources.record_failure(
                session, source_id=source.source_id, error=error, next_poll_at=retry_at
            )

    async def _account_gone(self, source: SourceInfo, reason: str) -> None:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            if not await sources.mark_gone(session, source_id=source.source_id, reason=reason):
                return
            chat_ids = await outbox.subscriber_ids(session, source.source_id)
            await outbox.enqueue_notice(
                session,
                chat_ids=chat_ids,
                payload={"code": "account_gone", "handle": source.display_name},
                now=now,
            )
        log.info("@%s is gone (%s); told %d chat(s)", source.display_name, reason, len(chat_ids))
        self._on_new_deliveries()
