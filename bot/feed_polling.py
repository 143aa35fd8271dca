"""A feed poll: due feeds -> one conditional GET each -> entries never shown before -> offers
stored once -> outbox rows, in one transaction with the entries remembered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.polling import backoff, read_safely, relay
from bot.sources.base import Post, SourceError
from bot.sources.feeds import FEED_KINDS, Feed, FeedFetcher, NotModified, to_post
from storage import feeds, outbox
from storage.feeds import FeedSource
from storage.outbox import IncomingOffer

log = logging.getLogger(__name__)

FEED_CONCURRENCY = 8
DUE_BATCH = 200
FETCH_LEASE = timedelta(minutes=2)
# A feed's own TTL or Cache-Control is followed when longer than the poll interval, up to this.
MAX_TTL = timedelta(hours=6)
# Entries a feed no longer shows are forgotten after this (it shows its latest ones).
FORGET_AFTER = timedelta(days=90)
PAUSE_AFTER_SECONDS = 48 * 3600.0
URL_LIMIT = 1024  # offers.url
LABEL_LIMIT = 255  # sources.display_name, offers.author
ICONS = {"feed": "📰", "mastodon": "🐘", "bluesky": "🦋"}


def feed_label(kind: str, title: str, fallback: str) -> str:
    """How a feed names itself in messages: its kind's icon and its title (the key when the
    feed has none), never a bare word that could read as an X handle."""
    name = " ".join(title.split()) or fallback
    return f"{ICONS.get(kind, '📰')} {name}"[:LABEL_LIMIT]


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one feed's fetch brought: the new entries as posts, or nothing new."""

    feed: FeedSource
    result: Feed | NotModified


class FeedPoller:
    """Fetches every due feed once for all its followers."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        fetcher: FeedFetcher,
        interval_seconds: float,
        on_new_deliveries: Callable[[], None] = lambda: None,
        pause_after_seconds: float = PAUSE_AFTER_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._fetcher = fetcher
        self._interval = timedelta(seconds=interval_seconds)
        self._on_new_deliveries = on_new_deliveries
        self._pause_after = pause_after_seconds

    async def tick(self) -> int:
        """Fetch the feeds that are due; returns how many outbox rows were written."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            due = await feeds.claim_due_feeds(
                session, kinds=FEED_KINDS, now=now, limit=DUE_BATCH, lease_until=now + FETCH_LEASE
            )
        if not due:
            return 0
        semaphore = asyncio.Semaphore(FEED_CONCURRENCY)

        async def one(feed: FeedSource) -> Fetched | None:
            async with semaphore:
                try:
                    result = await self._fetcher.fetch(
                        feed.url, etag=feed.etag, last_modified=feed.last_modified
                    )
                except SourceError as exc:
                    await self._failed(feed, exc)
                    return None
                except Exception as exc:
                    # One feed's surprise must not stop the others' fetches.
                    log.exception("fetching %s failed unexpectedly", feed.url)
                    await self._failed(feed, exc)
                    return None
                return Fetched(feed, result)

        fetched = [done for done in await asyncio.gather(*(one(f) for f in due)) if done]
        # The feeds that answered 304 have only their validators to record: all in one
        # transaction (one per feed cost a commit each, most of a quiet cycle's time).
        await self._store_unchanged(
            [(done.feed, done.result) for done in fetched if isinstance(done.result, NotModified)]
        )
        written = 0
        for done in fetched:
            if isinstance(done.result, Feed):
                # One transaction per feed: its entries, offers and validators commit together.
                written += await self._store(done.feed, done.result)
        if written:
            self._on_new_deliveries()
        return written

    def _next_poll(self, now: datetime, ttl: timedelta | None) -> datetime:
        wait = max(self._interval, min(ttl, MAX_TTL)) if ttl else self._interval
        return now + wait

    async def _store_unchanged(self, unchanged: list[tuple[FeedSource, NotModified]]) -> None:
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
                        next_poll_at=self._next_poll(now, result.ttl),
                    )
                    for feed, result in unchanged
                ],
                now=now,
            )
            for feed, _ in unchanged:
                if feed.source_id in resumed:
                    await self._tell(session, feed, "feed_resumed", now)

    async def _store(self, feed: FeedSource, result: Feed) -> int:
        now = self._clock.now()
        next_poll_at = self._next_poll(now, result.ttl)
        label = feed_label(feed.kind, result.title, feed.key)
        keys = [entry.key for entry in result.entries]
        written = 0
        async with self._sessions.begin() as session:
            new = await feeds.unseen(session, source_id=feed.source_id, keys=keys)
            posts: list[Post] = []
            if feed.primed:  # the first fetch only remembers what the feed shows
                posts = [
                    _fit(to_post(label, entry), result.link or feed.url)
                    for entry in reversed(result.entries)  # feeds list newest first
                    if entry.key in new
                ]
                posts.sort(key=lambda p: p.posted_at or datetime.min.replace(tzinfo=UTC))
            if posts:
                incoming = [
                    IncomingOffer(feed.source_id, post, read_safely(post.text, post.url))
                    for post in posts
                ]
                _, written = await relay(session, incoming, now)
            await feeds.remember_entries(session, source_id=feed.source_id, keys=keys, now=now)
            await feeds.forget_entries(session, source_id=feed.source_id, before=now - FORGET_AFTER)
            resumed = await feeds.record_fetch(
                session,
                source_id=feed.source_id,
                now=now,
                next_poll_at=next_poll_at,
                etag=result.etag,
                last_modified=result.last_modified,
                label=label,
                posted=bool(posts),
            )
            if resumed:
                await self._tell(session, feed, "feed_resumed", now)
        if posts:
            log.info("%d new entr(ies) from %s, %d delivery row(s)", len(posts), feed.url, written)
        return written

    async def _failed(self, feed: FeedSource, exc: BaseException) -> None:
        now = self._clock.now()
        error = f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
        log.info("fetching %s failed: %s", feed.url, error)
        async with self._sessions.begin() as session:
            paused = await feeds.record_feed_failure(
                session,
                source_id=feed.source_id,
                now=now,
                error=error,
                next_poll_at=now + backoff(self._interval, feed.error_count),
                pause_after=self._pause_after,
            )
            if paused:
                await self._tell(session, feed, "feed_paused", now)
        if paused:
            log.warning(
                "%s has failed for %.0f s: paused, followers told", feed.url, self._pause_after
            )

    async def _tell(
        self, session: AsyncSession, feed: FeedSource, code: str, now: datetime
    ) -> None:
        chat_ids = await outbox.subscriber_ids(session, feed.source_id)
        await outbox.enqueue_notice(
            session,
            chat_ids=chat_ids,
            payload={
                "code": code,
                "name": feed.label,
                "address": feed.key,
                "since": (feed.failing_since or now).strftime("%Y-%m-%d %H:%M"),
            },
            now=now,
        )
        self._on_new_deliveries()


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
