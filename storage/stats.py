"""Counts for operators: chats, sources and the outbox at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Chat, Delivery, DeliveryStatus, Digest, Offer, Source


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """The state of the relay right now."""

    active_chats: int
    inactive_chats: int
    sources: int
    failing_sources: int
    gone_sources: int
    feeds: int
    failing_feeds: int
    paused_feeds: int
    queued: int
    oldest_queued: datetime | None
    sent_last_day: int
    failed_last_day: int


async def relay_status(session: AsyncSession, *, now: datetime) -> RelayStatus:
    """Chats, sources and outbox counts (a handful of aggregate queries)."""
    # Results have a keys() method, so dict() would take them for mappings: list them first.
    chats = dict(
        list(await session.execute(select(Chat.active, func.count()).group_by(Chat.active)))
    )
    is_x = Source.kind == "x"
    source_row = (
        await session.execute(
            select(
                func.count().filter(is_x),
                func.count().filter(is_x, Source.error_count > 0),
                func.count().filter(is_x, Source.gone.is_(True)),
                func.count().filter(~is_x),
                func.count().filter(~is_x, Source.error_count > 0),
                func.count().filter(~is_x, Source.paused.is_(True)),
            ).select_from(Source)
        )
    ).one()
    queued_row = (
        await session.execute(
            select(func.count(), func.min(Delivery.created_at))
            .join(Chat, and_(Chat.id == Delivery.chat_id, Chat.active.is_(True)))
            .where(Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]))
        )
    ).one()
    since = now - timedelta(days=1)
    settled = dict(
        list(
            await session.execute(
                select(Delivery.status, func.count())
                .where(
                    Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.FAILED]),
                    # Failed rows have no sent_at: they count from when they were queued.
                    func.coalesce(Delivery.sent_at, Delivery.created_at) >= since,
                )
                .group_by(Delivery.status)
            )
        )
    )
    oldest = queued_row[1]
    return RelayStatus(
        active_chats=int(chats.get(True, 0)),
        inactive_chats=int(chats.get(False, 0)),
        sources=int(source_row[0]),
        failing_sources=int(source_row[1]),
        gone_sources=int(source_row[2]),
        feeds=int(source_row[3]),
        failing_feeds=int(source_row[4]),
        paused_feeds=int(source_row[5]),
        queued=int(queued_row[0]),
        oldest_queued=oldest,
        sent_last_day=int(settled.get(DeliveryStatus.SENT, 0)),
        failed_last_day=int(settled.get(DeliveryStatus.FAILED, 0)),
    )


@dataclass(frozen=True, slots=True)
class DeliveryFact:
    """One offer delivery of a chat, as the statistics need it."""

    status: DeliveryStatus
    sent_at: datetime | None
    held_at: datetime | None
    feedback: str | None
    author: str
    text: str
    url: str


async def chat_deliveries_since(
    session: AsyncSession, chat_id: int, since: datetime
) -> list[DeliveryFact]:
    """A chat's offer deliveries created, held or sent since `since`."""
    rows = await session.execute(
        select(
            Delivery.status,
            Delivery.sent_at,
            Delivery.held_at,
            Delivery.feedback,
            Offer.author,
            Offer.text,
            Offer.url,
        )
        .join(Offer, Offer.id == Delivery.offer_id)
        .where(Delivery.chat_id == chat_id, Delivery.created_at >= since)
        .order_by(Delivery.id)
    )
    return [DeliveryFact(*row) for row in rows]


async def chats_active_since(session: AsyncSession, since: datetime) -> list[int]:
    """Active chats that received or held an offer since `since`."""
    rows = await session.scalars(
        select(Delivery.chat_id)
        .join(Chat, and_(Chat.id == Delivery.chat_id, Chat.active.is_(True)))
        .where(Delivery.created_at >= since, Delivery.offer_id.is_not(None))
        .distinct()
    )
    return list(rows)


async def marked_not_for_me(session: AsyncSession, *, limit: int) -> list[tuple[str, str, int]]:
    """The offers people marked "not for me" (most marked, then newest, first, at most
    `limit`): their text, their source's kind, and how many chats marked them. Nothing
    about who marked them."""
    marks = func.count(func.distinct(Delivery.chat_id))
    rows = await session.execute(
        select(Offer.text, Source.kind, marks)
        .join(Delivery, Delivery.offer_id == Offer.id)
        .join(Source, Source.id == Offer.source_id)
        .where(Delivery.feedback == "not_for_me")
        .group_by(Offer.id, Offer.text, Source.kind)
        .order_by(marks.desc(), Offer.id.desc())
        .limit(limit)
    )
    return [(text, kind, int(count)) for text, kind, count in rows]


async def digests_sent_since(session: AsyncSession, chat_id: int, since: datetime) -> int:
    """How many digests a chat received since `since` (each may be several messages)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Digest)
        .where(Digest.chat_id == chat_id, Digest.sent.is_(True), Digest.sent_at >= since)
    )
    return int(count or 0)
