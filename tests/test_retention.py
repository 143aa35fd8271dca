"""Retention on a real SQLite file and a real PostgreSQL server: the daily prune (with a clock
the test moves), its batches, sources nobody follows, and the sources /forget takes along."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import FrozenClock
from bot.retention import Retention
from bot.sources.base import Post
from storage import applications, chats, feeds, outbox, sources
from storage.db import Sessions, create_engine, create_session_factory
from storage.models import (
    ApplicationStatus,
    Delivery,
    DeliveryStatus,
    Digest,
    FeedEntry,
    Offer,
    OfferCategory,
    Source,
)
from storage.outbox import IncomingOffer, Reading
from storage.retention import forget_chat

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    yield create_session_factory(engine)
    await engine.dispose()


async def _chat(session: AsyncSession, chat_id: int) -> None:
    await chats.upsert_chat(
        session,
        chat_id=chat_id,
        chat_type="private",
        title=None,
        language="en",
        timezone="Europe/Paris",
        now=NOW,
    )


async def _source(session: AsyncSession, key: str, *, board: bool = False) -> int:
    source_id = await sources.ensure_source(
        session, kind="x", key=key, external_id=key, display_name=key, now=NOW
    )
    if board:
        await session.execute(update(Source).where(Source.id == source_id).values(board=True))
    return source_id


async def _feed(session: AsyncSession, url: str, entries: list[str]) -> int:
    return await feeds.create_feed(
        session,
        kind="feed",
        key=url,
        url=url,
        label="Acme Careers",
        etag=None,
        last_modified=None,
        ttl=None,
        entry_keys=entries,
        now=NOW,
        next_poll_at=NOW,
    )


async def _offers(
    session: AsyncSession, source_id: int, count: int, *, at: datetime, first: int = 0
) -> list[int]:
    posts = [
        Post(
            external_id=f"{source_id}-{first + i}",
            author=f"author{source_id}",
            text=f"Job {first + i}",
            url=f"https://example.org/{source_id}/{first + i}",
            posted_at=at,
        )
        for i in range(count)
    ]
    reading = Reading(is_offer=True, categories=("software",))
    return await outbox.store_offers(
        session, offers=[IncomingOffer(source_id, post, reading) for post in posts], now=at
    )


async def _rows(session: AsyncSession, chat_id: int) -> dict[int, int]:
    """offer id -> delivery id of a chat."""
    rows = await session.execute(
        select(Delivery.offer_id, Delivery.id).where(Delivery.chat_id == chat_id)
    )
    return {int(offer): int(row) for offer, row in rows if offer is not None}


async def _settle(
    session: AsyncSession, delivery_id: int, status: DeliveryStatus, at: datetime, **more: object
) -> None:
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(status=status, sent_at=at if status != DeliveryStatus.HELD else None, **more)
    )


async def _ids(sessions: Sessions, model: type[Offer] | type[Delivery] | type[Source]) -> set[int]:
    async with sessions() as session:
        return set(await session.scalars(select(model.id)))


async def test_a_prune_deletes_what_is_settled_and_old_and_keeps_what_is_held_or_needed(
    sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FrozenClock(NOW)
    async with sessions.begin() as session:
        await _chat(session, 1)
        acme = await _source(session, "acme_jobs")
        other = await _source(session, "lyon_jobs")
        await sources.subscribe(session, chat_id=1, source_id=acme, now=NOW)
        old = await _offers(session, acme, 5, at=NOW)
        # An old copy of offer 3's story (posted by another account): it names that account.
        (copy,) = await _offers(session, other, 1, at=NOW)
        await session.execute(update(Offer).where(Offer.id == copy).values(story_id=old[3]))
        # An old story head nobody was sent, whose recent copy (below) still names it.
        (head,) = await _offers(session, other, 1, at=NOW, first=10)
        await outbox.fan_out(session, offer_ids=old, now=NOW)
        row = await _rows(session, 1)
        digest = Digest(
            chat_id=1, reason="scheduled", language="en", sent=True, parts_sent=1,
            created_at=NOW, sent_at=NOW,
        )  # fmt: skip
        session.add(digest)
        await session.flush()
        await _settle(session, row[old[0]], DeliveryStatus.SENT, NOW)
        await _settle(session, row[old[1]], DeliveryStatus.DIGESTED, NOW, digest_id=digest.id)
        await _settle(session, row[old[2]], DeliveryStatus.FAILED, NOW)
        await _settle(session, row[old[3]], DeliveryStatus.HELD, NOW, held_at=NOW)
        # old[4] stays pending (the chat is paused, say) for 100 days.
    clock.advance(80 * DAY)
    async with sessions.begin() as session:
        recent = await _offers(session, acme, 1, at=clock.now(), first=100)
        (late_copy,) = await _offers(session, other, 1, at=clock.now(), first=11)
        await session.execute(update(Offer).where(Offer.id == late_copy).values(story_id=head))
        await outbox.fan_out(session, offer_ids=recent, now=clock.now())
        sent = (await _rows(session, 1))[recent[0]]
        await _settle(session, sent, DeliveryStatus.SENT, clock.now())
    clock.advance(20 * DAY)  # the first rows are 100 days old, the recent one 20

    with caplog.at_level(logging.INFO, logger="bot.retention"):
        pruned = await Retention(sessions=sessions, clock=clock, days=90).prune()

    assert (pruned.deliveries, pruned.digests, pruned.offers) == (3, 1, 3)
    assert await _ids(sessions, Offer) == {old[3], old[4], copy, head, late_copy, recent[0]}
    async with sessions() as session:
        statuses = dict(
            list(await session.execute(select(Delivery.offer_id, Delivery.status)))
        )  # fmt: skip
        assert statuses == {
            old[3]: DeliveryStatus.HELD,
            old[4]: DeliveryStatus.PENDING,
            recent[0]: DeliveryStatus.SENT,
        }
        assert await session.scalar(select(func.count()).select_from(Digest)) == 0
        # The deleted offers' categories went with them; the kept ones' stayed.
        categorised = set(await session.scalars(select(OfferCategory.offer_id)))
        assert categorised == {old[3], old[4], copy, head, late_copy, recent[0]}
        assert await session.scalar(select(Offer.story_id).where(Offer.id == copy)) == old[3]
    assert "deleted 3 outbox rows, 1 digests and 3 offers older than 90 days" in caplog.text


async def test_rows_sent_within_the_stats_week_stay_even_when_created_long_ago(
    sessions: Sessions,
) -> None:
    clock = FrozenClock(NOW)
    async with sessions.begin() as session:
        await _chat(session, 1)
        acme = await _source(session, "acme_jobs")
        await sources.subscribe(session, chat_id=1, source_id=acme, now=NOW)
        offers = await _offers(session, acme, 2, at=NOW)
        await outbox.fan_out(session, offer_ids=offers, now=NOW)
        row = await _rows(session, 1)
        # Held for 95 days (a long pause), then digested 5 days ago: /stats still counts it.
        late = NOW + 95 * DAY
        await _settle(session, row[offers[0]], DeliveryStatus.DIGESTED, late, held_at=NOW)
        await _settle(session, row[offers[1]], DeliveryStatus.SENT, NOW)
    clock.advance(100 * DAY)
    pruned = await Retention(sessions=sessions, clock=clock, days=90).prune()
    assert (pruned.deliveries, pruned.offers) == (1, 1)
    assert await _ids(sessions, Offer) == {offers[0]}


async def test_a_prune_bigger_than_one_batch_completes_across_batches(sessions: Sessions) -> None:
    clock = FrozenClock(NOW)
    async with sessions.begin() as session:
        await _chat(session, 1)
        acme = await _source(session, "acme_jobs")
        await sources.subscribe(session, chat_id=1, source_id=acme, now=NOW)
        offers = await _offers(session, acme, 23, at=NOW)
        await outbox.fan_out(session, offer_ids=offers, now=NOW)
        await session.execute(
            update(Delivery).values(status=DeliveryStatus.SENT, sent_at=NOW)
        )  # fmt: skip
    clock.advance(91 * DAY)
    pruned = await Retention(sessions=sessions, clock=clock, days=90, batch=5).prune()
    assert (pruned.deliveries, pruned.offers) == (23, 23)
    assert await _ids(sessions, Delivery) == set()
    assert await _ids(sessions, Offer) == set()


async def test_sources_unfollowed_for_30_days_go_with_their_entries_but_boards_and_followed_stay(
    sessions: Sessions,
) -> None:
    clock = FrozenClock(NOW)
    async with sessions.begin() as session:
        await _chat(session, 1)
        feed = await _feed(session, "https://jobs.example/feed?token=s3cret", ["a", "b", "c"])
        board = await _source(session, "emploi_board", board=True)
        followed = await _source(session, "acme_jobs")
        back = await _source(session, "back_jobs")
        await sources.subscribe(session, chat_id=1, source_id=feed, now=NOW)
        await sources.subscribe(session, chat_id=1, source_id=followed, now=NOW)
        for source_id in (feed, board, back):
            await _offers(session, source_id, 2, at=NOW)
        await sources.unsubscribe(session, chat_id=1, source_ids=[feed])
    retention = Retention(sessions=sessions, clock=clock, days=90)
    await retention.prune()  # notes since when each has no follower
    clock.advance(20 * DAY)
    async with sessions.begin() as session:  # followed again for a while
        await sources.subscribe(session, chat_id=1, source_id=back, now=clock.now())
        await sources.unsubscribe(session, chat_id=1, source_ids=[back])
    clock.advance(9 * DAY)
    assert (await retention.prune()).sources == 0
    assert await _ids(sessions, Source) == {feed, board, followed, back}

    clock.advance(2 * DAY)  # 31 days since the feed lost its follower
    pruned = await retention.prune()

    assert pruned.sources == 1
    assert await _ids(sessions, Source) == {board, followed, back}
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(FeedEntry)) == 0
        owners = set(await session.scalars(select(Offer.source_id)))
    assert owners == {board, back}


async def test_forget_deletes_the_sources_only_that_chat_followed(sessions: Sessions) -> None:
    clock = FrozenClock(NOW)
    async with sessions.begin() as session:
        for chat_id in (1, 2, 3):
            await _chat(session, chat_id)
        private = await _feed(session, "https://jobs.example/mine?token=s3cret", ["a", "b"])
        needed = await _feed(session, "https://jobs.example/also?token=t0ken", ["c"])
        shared = await _source(session, "acme_jobs")
        for source_id in (private, needed, shared):
            await sources.subscribe(session, chat_id=1, source_id=source_id, now=NOW)
        await sources.subscribe(session, chat_id=2, source_id=shared, now=NOW)
        await _offers(session, private, 2, at=NOW)
        held = await _offers(session, needed, 1, at=NOW)
        await outbox.fan_out(session, offer_ids=held, now=NOW)
        # Chat 3 follows the category: it waits for one of `needed`'s offers.
        await session.execute(
            insert(Delivery).values(
                chat_id=3, offer_id=held[0], kind="offer", status="held", attempts=0,
                next_attempt_at=NOW, created_at=NOW, held_at=NOW, thread_id=0,
            )
        )  # fmt: skip

    async with sessions.begin() as session:
        assert await forget_chat(session, chat_id=1, now=clock.now()) == 2

    assert await _ids(sessions, Source) == {needed, shared}
    async with sessions() as session:
        emptied = await session.get(Source, needed)
        assert emptied is not None
        assert "t0ken" not in emptied.key
        assert emptied.url is None
        assert await session.scalar(select(func.count()).select_from(FeedEntry)) == 0
        assert set(await session.scalars(select(Offer.source_id))) == {needed}
        assert [tuple(r) for r in await session.execute(select(Delivery.chat_id))] == [(3,)]

    # Once chat 3 got its offer and the week of /stats is over, the next prune takes the rest.
    async with sessions.begin() as session:
        await session.execute(
            update(Delivery).values(status=DeliveryStatus.DIGESTED, sent_at=clock.now())
        )
    clock.advance(9 * DAY)
    pruned = await Retention(sessions=sessions, clock=clock, days=90).prune()
    assert pruned.sources == 1
    assert await _ids(sessions, Source) == {shared}
    assert await _ids(sessions, Delivery) == set()


async def test_saved_and_applied_offers_stay_with_their_source_until_the_chat_lets_them_go(
    sessions: Sessions,
) -> None:
    """Issue #17: an offer saved or applied to outlives RETENTION_DAYS and the 30 days its
    source went unfollowed (/saved and /applied still show it); unsaved, it goes at the next
    prune; /forget takes the chat's saved offers with it."""
    clock = FrozenClock(NOW)
    async with sessions.begin() as session:
        await _chat(session, 1)
        acme = await _source(session, "acme_jobs")
        await sources.subscribe(session, chat_id=1, source_id=acme, now=NOW)
        saved, applied, plain = await _offers(session, acme, 3, at=NOW)
        await outbox.fan_out(session, offer_ids=[saved, applied, plain], now=NOW)
        for delivery_id in (await _rows(session, 1)).values():
            await _settle(session, delivery_id, DeliveryStatus.SENT, NOW)
        await applications.save(session, chat_id=1, offer_id=saved, now=NOW)
        await applications.save(session, chat_id=1, offer_id=applied, now=NOW)
        await applications.set_status(
            session, chat_id=1, offer_id=applied, status=ApplicationStatus.APPLIED, now=NOW
        )
        await sources.unsubscribe_all(session, chat_id=1)
    await Retention(sessions=sessions, clock=clock, days=90).prune()  # unfollowed since now
    clock.advance(100 * DAY)
    pruned = await Retention(sessions=sessions, clock=clock, days=90).prune()
    assert pruned.deliveries == 3 and pruned.sources == 0
    assert await _ids(sessions, Offer) == {saved, applied}
    assert acme in await _ids(sessions, Source)
    async with sessions.begin() as session:
        await applications.unsave(session, chat_id=1, offer_id=saved)
    await Retention(sessions=sessions, clock=clock, days=90).prune()
    assert await _ids(sessions, Offer) == {applied}
    async with sessions.begin() as session:
        await forget_chat(session, chat_id=1, now=clock.now())
    await Retention(sessions=sessions, clock=clock, days=90).prune()
    assert await _ids(sessions, Offer) == set()
    assert acme not in await _ids(sessions, Source)
