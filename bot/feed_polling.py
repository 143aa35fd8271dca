"""A feed poll: due feeds -> one conditional GET each -> entries never shown before -> offers
stored once -> outbox rows, in one transaction with the entries remembered."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.liveness import Owner, no_owner
from bot.polling import backoff, read_all, read_safely, relay
from bot.sources.base import Post, SourceError
from bot.sources.feeds import (
    BLUESKY_KIND,
    FEED_KIND,
    FEED_KINDS,
    MASTODON_KIND,
    MAX_ENTRIES,
    Entry,
    Feed,
    FeedFetcher,
    NotModified,
    to_post,
)
from storage import feeds, outbox
from storage.db import Sessions
from storage.feeds import FeedSource
from storage.outbox import IncomingOffer, Reading

log = logging.getLogger(__name__)

FEED_CONCURRENCY = 8
# A feed that answers, but slowly, is fetched less often, in proportion: one slow host must
# not hold a fetch slot, and the end of every cycle, at every interval.
SLOW_FETCH_SECONDS = 5.0
SLOW_SPACING_FACTOR = 60  # a fetch of 10 s: at most one every 10 minutes
# A claimed batch is fetched within DUE_BATCH / FEED_CONCURRENCY × 15 s (2 minutes) at worst,
# well inside its lease; a feed whose lease ran out anyway is not stored by this process.
DUE_BATCH = 64
FETCH_LEASE = timedelta(minutes=5)
# A tick takes batch after batch while they come full, for about this long (seconds).
TICK_BUDGET = 30.0
# A feed's own TTL or Cache-Control is followed when longer than the poll interval, up to this.
MAX_TTL = timedelta(hours=6)
# Entries a feed no longer shows are forgotten after this (it shows its latest ones).
FORGET_AFTER = timedelta(days=90)
PAUSE_AFTER_SECONDS = 48 * 3600.0
# A feed due this long ago was not fetched because nobody active followed it (or the bot was
# down): of what it shows that was never seen, only entries published since then are relayed,
# not the backlog of idle weeks (as X accounts, see bot.polling.STALE_AFTER).
STALE_AFTER = timedelta(days=1)
URL_LIMIT = 1024  # offers.url
LABEL_LIMIT = 255  # sources.display_name, offers.author
ICONS = {FEED_KIND: "📰", MASTODON_KIND: "🐘", BLUESKY_KIND: "🦋"}


def feed_label(kind: str, title: str, fallback: str) -> str:
    """How a feed names itself in messages: its kind's icon and its title (the key when the
    feed has none), never a bare word that could read as an X handle."""
    name = " ".join(title.split()) or fallback
    return f"{ICONS.get(kind, ICONS[FEED_KIND])} {name}"[:LABEL_LIMIT]


def next_poll(now: datetime, interval: timedelta, ttl: timedelta | None) -> datetime:
    """When a feed that just answered is fetched next: after the poll interval, or after its
    own refresh hint when that is longer (up to MAX_TTL)."""
    return now + (max(interval, min(ttl, MAX_TTL)) if ttl else interval)


class FeedPoller:
    """Fetches every due feed once for all its followers."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        clock: Clock,
        fetcher: FeedFetcher,
        interval_seconds: float,
        on_new_deliveries: Callable[[], None] = lambda: None,
        pause_after_seconds: float = PAUSE_AFTER_SECONDS,
        curated_only: bool = True,
        slow_fetch_seconds: float = SLOW_FETCH_SECONDS,
        owner: Owner = no_owner,
    ) -> None:
        self._owner = owner
        self._curated_only = curated_only
        self._slow = slow_fetch_seconds
        self._sessions = sessions
        self._clock = clock
        self._fetcher = fetcher
        self._interval = timedelta(seconds=interval_seconds)
        self._on_new_deliveries = on_new_deliveries
        self._pause_after = pause_after_seconds

    async def tick(self) -> int:
        """Fetch the feeds that are due, a batch (DUE_BATCH) at a time while full batches come
        and for at most TICK_BUDGET; returns how many outbox rows were written."""
        started = time.monotonic()
        written = 0
        while True:
            done, claimed = await self._batch()
            written += done
            if claimed < DUE_BATCH or time.monotonic() - started > TICK_BUDGET:
                return written

    async def _batch(self) -> tuple[int, int]:
        """One batch of due feeds: (outbox rows written, feeds claimed).

        Each feed is stored as soon as it is fetched, in its own transaction (its offers,
        outbox rows, remembered entries and validators commit together), while the feed is
        still this process's: one whose lease another process took over is left to it.
        """
        now = self._clock.now()
        lease = now + FETCH_LEASE
        async with self._sessions.begin() as session:
            due = await feeds.claim_due_feeds(
                session,
                kinds=FEED_KINDS,
                now=now,
                limit=DUE_BATCH,
                lease_until=lease,
                owner=self._owner(),
            )
        if not due:
            return 0, 0
        semaphore = asyncio.Semaphore(FEED_CONCURRENCY)
        storing = asyncio.Lock()  # one writer at a time (SQLite has only one)
        unchanged: list[tuple[FeedSource, NotModified, float]] = []

        async def one(feed: FeedSource) -> int:
            async with semaphore:
                started = time.monotonic()
                try:
                    result = await self._fetcher.fetch(
                        feed.url, etag=feed.etag, last_modified=feed.last_modified
                    )
                except SourceError as exc:
                    failure: BaseException = exc
                except Exception as exc:
                    # One feed's surprise must not stop the others' fetches.
                    log.exception("fetching %s failed unexpectedly", shown(feed.url))
                    failure = exc
                else:
                    took = time.monotonic() - started
                    if took > self._slow:
                        took *= SLOW_FETCH_SECONDS / self._slow  # as slow, on the scale
                        log.info(
                            "%s took %.1f s to answer: fetched less often", shown(feed.url), took
                        )
                    if isinstance(result, NotModified):
                        unchanged.append((feed, result, took))  # recorded together, below
                        return 0
                    try:
                        async with storing:
                            return await self._store(feed, result, lease, took)
                    except Exception as exc:
                        # Nothing of it was saved; fetched again after a backoff.
                        log.exception("storing what %s brought failed", shown(feed.url))
                        failure = exc
                try:
                    async with storing:
                        await self._failed(feed, failure, lease)
                except Exception:
                    # Not recorded: its lease runs out and it is fetched again then.
                    log.exception("recording the failure of %s failed", shown(feed.url))
                return 0

        written = sum(await asyncio.gather(*(one(f) for f in due)))
        # The feeds that answered 304 have only their validators and next fetch to record: one
        # transaction for all (one each cost a commit apiece, most of a quiet cycle's time).
        try:
            await self._store_unchanged(unchanged, lease)
        except Exception:
            log.exception("recording %d unchanged feed(s) failed", len(unchanged))
        if written:
            self._on_new_deliveries()
        return written, len(due)

    async def _store_unchanged(
        self, unchanged: list[tuple[FeedSource, NotModified, float]], lease: datetime
    ) -> None:
        """Record the feeds that answered 304 (those still held under `lease`): unchanged since
        their last full answer, whose entries were all remembered. A 304 has no body: a feed's
        <ttl> is the one its last full answer gave."""
        if not unchanged:
            return
        now = self._clock.now()
        async with self._sessions.begin() as session:
            resumed = await feeds.record_unchanged(
                session,
                unchanged=[
                    feeds.Unchanged(
                        source_id=feed.source_id,
                        etag=result.etag or feed.etag,
                        last_modified=result.last_modified or feed.last_modified,
                        ttl=result.ttl or feed.ttl,
                        next_poll_at=spaced(
                            next_poll(now, self._interval, result.ttl or feed.ttl), now, took
                        ),
                    )
                    for feed, result, took in unchanged
                ],
                lease=lease,
                now=now,
            )
            for feed, _, _ in unchanged:
                if feed.source_id in resumed:
                    await self._tell(session, feed, "feed_resumed", now)

    async def _store(
        self, feed: FeedSource, result: Feed, lease: datetime, took: float = 0.0
    ) -> int:
        now = self._clock.now()
        ttl = result.ttl
        next_poll_at = spaced(next_poll(now, self._interval, ttl), now, took)
        label = feed_label(feed.kind, result.title, feed.key)
        entries = distinct(result.entries)
        keys = [entry.key for entry in entries]
        written = 0
        # Read what is probably new before the write transaction (reading is the slow part,
        # done off the event loop); the transaction decides what is new.
        readings: dict[str, Reading | None] = {}
        if feed.primed:
            async with self._sessions() as session:
                maybe_new = await feeds.unseen(session, source_id=feed.source_id, keys=keys)
            fresh = [entry for entry in entries if entry.key in maybe_new]
            fitted = [_fit(to_post(label, entry), result.link or feed.url) for entry in fresh]
            readings = dict(zip([e.key for e in fresh], await read_all(fitted), strict=True))
        async with self._sessions.begin() as session:
            primed = await feeds.primed_if_held(session, source_id=feed.source_id, lease=lease)
            if primed is None:
                log.info("%s was taken over by another process; left to it", shown(feed.url))
                return 0
            new = await feeds.unseen(session, source_id=feed.source_id, keys=keys)
            posts: list[Post] = []
            if feed.primed and primed:  # the first fetch only remembers what the feed shows
                # Due long ago (unwatched, or the bot was down): only the last day is news,
                # and an undated entry then counts as old.
                horizon = now - STALE_AFTER if feed.next_poll_at < now - STALE_AFTER else None
                keyed = [
                    (entry.key, _fit(to_post(label, entry), result.link or feed.url))
                    for entry in reversed(entries)  # feeds list newest first
                    if entry.key in new
                    and (horizon is None or (entry.published or horizon) > horizon)
                ]
                keyed.sort(key=lambda kp: kp[1].posted_at or datetime.min.replace(tzinfo=UTC))
                posts = [post for _, post in keyed]
            if posts:
                incoming = [
                    IncomingOffer(
                        feed.source_id,
                        post,
                        readings[key] if key in readings else read_safely(post.text, post.url),
                    )
                    for key, post in keyed
                ]
                _, written = await relay(session, incoming, now, curated_only=self._curated_only)
            await feeds.remember_entries(session, source_id=feed.source_id, keys=keys, now=now)
            await feeds.forget_entries(session, source_id=feed.source_id, before=now - FORGET_AFTER)
            resumed = await feeds.record_fetch(
                session,
                source_id=feed.source_id,
                now=now,
                next_poll_at=next_poll_at,
                etag=result.etag,
                last_modified=result.last_modified,
                ttl=ttl,
                label=label,
                posted=bool(posts),
            )
            if resumed:
                await self._tell(session, feed, "feed_resumed", now)
        if posts:
            log.info(
                "%d new entr(ies) from %s, %d delivery row(s)", len(posts), shown(feed.url), written
            )
        return written

    async def _failed(self, feed: FeedSource, exc: BaseException, lease: datetime) -> None:
        now = self._clock.now()
        error = f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
        log.info("fetching %s failed: %s", shown(feed.url), error)
        async with self._sessions.begin() as session:
            if await feeds.primed_if_held(session, source_id=feed.source_id, lease=lease) is None:
                return
            paused = await feeds.record_feed_failure(
                session,
                source_id=feed.source_id,
                now=now,
                error=error,
                next_poll_at=now + backoff(self._interval, feed.error_count),
                pause_after=self._pause_after,
            )
            if paused:
                # A feed that answers with what cannot be read is not "not answering": its
                # followers are told which it is.
                reason = "unreadable" if getattr(exc, "unreadable", False) else "no_answer"
                await self._tell(session, feed, "feed_paused", now, reason=reason)
        if paused:
            log.warning(
                "%s has failed for %.0f s: paused, followers told",
                shown(feed.url),
                self._pause_after,
            )

    async def _tell(
        self,
        session: AsyncSession,
        feed: FeedSource,
        code: str,
        now: datetime,
        reason: str | None = None,
    ) -> None:
        chat_ids = await outbox.subscriber_ids(session, feed.source_id)
        payload = {
            "code": code,
            "name": feed.label,
            "address": feed.key,
            "since": (feed.failing_since or now).strftime("%Y-%m-%d %H:%M"),
        }
        if reason is not None:
            payload["reason"] = reason
        await outbox.enqueue_notice(session, chat_ids=chat_ids, payload=payload, now=now)
        self._on_new_deliveries()


def spaced(at: datetime, now: datetime, took: float) -> datetime:
    """When to fetch a feed next, later than `at` when its last answer took long."""
    if took <= SLOW_FETCH_SECONDS:
        return at
    return max(at, now + timedelta(seconds=took * SLOW_SPACING_FACTOR))


def shown(url: str) -> str:
    """A feed's URL as logs show it: without its query, where private feeds keep their keys."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def distinct(entries: list[Entry]) -> list[Entry]:
    """The first MAX_ENTRIES entries, each id once (a broken feed may repeat one)."""
    seen: set[str] = set()
    kept: list[Entry] = []
    for entry in entries[:MAX_ENTRIES]:
        if entry.key not in seen:
            seen.add(entry.key)
            kept.append(entry)
    return kept


def _fit(post: Post, fallback_url: str) -> Post:
    """A post within the columns' sizes (a URL too long to store is replaced by the feed's)."""
    url = post.url if post.url and len(post.url) <= URL_LIMIT else fallback_url[:URL_LIMIT]
    if url == post.url and len(post.author) <= LABEL_LIMIT:
        return post
    return Post(
        external_id=post.external_id,
        author=post.author[:LABEL_LIMIT],
        text=post.text,
        url=url,
        posted_at=post.posted_at,
    )
