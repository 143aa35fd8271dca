"""The outbox: offers stored once, one delivery row per chat, claimed and settled by the sender."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Chat, Delivery, DeliveryKind, DeliveryStatus, Offer, Subscription
from storage.sql import affected, insert_ignoring_conflicts, is_postgresql


class NewOffer(Protocol):
    """What storing an offer needs of a post (bot.sources.base.Post has it)."""

    @property
    def external_id(self) -> str: ...
    @property
    def author(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def posted_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """One outbox row a sender now holds, with everything needed to render it."""

    delivery_id: int
    chat_id: int
    language: str
    kind: DeliveryKind
    attempts: int
    offer_author: str | None
    offer_text: str | None
    offer_url: str | None
    payload: dict[str, Any] | None


async def store_offers(
    session: AsyncSession, *, source_id: int, offers: Sequence[NewOffer], now: datetime
) -> list[int]:
    """Store new offers of a source (ignoring ones already stored); the ids of those inserted."""
    if not offers:
        return []
    statement = (
        insert_ignoring_conflicts(session, Offer)
        .values(
            [
                {
                    "source_id": source_id,
                    "external_id": offer.external_id,
                    "author": offer.author,
                    "text": offer.text,
                    "url": offer.url,
                    "posted_at": offer.posted_at,
                    "created_at": now,
                }
                for offer in offers
            ]
        )
        .on_conflict_do_nothing(index_elements=["source_id", "external_id"])
        .returning(Offer.id)
    )
    result = await session.execute(statement)
    return sorted(int(row[0]) for row in result)


async def fan_out(
    session: AsyncSession, *, source_id: int, offer_ids: list[int], now: datetime
) -> int:
    """One pending delivery per active subscriber and offer, in one set-based statement."""
    if not offer_ids:
        return 0
    chosen = (
        select(
            Subscription.chat_id,
            Offer.id,
            literal(DeliveryKind.OFFER.value),
            literal(DeliveryStatus.PENDING.value),
            literal(0),
            literal(now, type_=Delivery.__table__.c.next_attempt_at.type),
            literal(now, type_=Delivery.__table__.c.created_at.type),
        )
        .join(Chat, and_(Chat.id == Subscription.chat_id, Chat.active.is_(True)))
        .join(Offer, Offer.id.in_(offer_ids))
        .where(Subscription.source_id == source_id)
        .order_by(Offer.id, Subscription.chat_id)
    )
    statement = (
        insert_ignoring_conflicts(session, Delivery)
        .from_select(
            ["chat_id", "offer_id", "kind", "status", "attempts", "next_attempt_at", "created_at"],
            chosen,
        )
        .on_conflict_do_nothing(index_elements=["chat_id", "offer_id"])
    )
    result = await session.execute(statement)
    return affected(result)


async def enqueue_notice(
    session: AsyncSession, *, chat_ids: list[int], payload: dict[str, Any], now: datetime
) -> None:
    """Queue a service message (rendered in each chat's language when sent)."""
    if not chat_ids:
        return
    await session.execute(
        insert(Delivery),
        [
            {
                "chat_id": chat_id,
                "offer_id": None,
                "kind": DeliveryKind.NOTICE.value,
                "payload": payload,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for chat_id in chat_ids
        ],
    )


async def subscriber_ids(session: AsyncSession, source_id: int) -> list[int]:
    """The active chats that follow a source."""
    rows = await session.scalars(
        select(Subscription.chat_id)
        .join(Chat, and_(Chat.id == Subscription.chat_id, Chat.active.is_(True)))
        .where(Subscription.source_id == source_id)
    )
    return list(rows)


async def claim(
    session: AsyncSession,
    *,
    now: datetime,
    lease_until: datetime,
    limit: int,
    per_chat: int = 5,
) -> list[ClaimedDelivery]:
    """Take up to `limit` due rows of active chats, oldest first, leasing them until `lease_until`.

    A row still `sending` after its lease ran out belongs to a sender that died: it is due again.
    """
    older = aliased(Delivery)
    # A chat's messages go out in order: a row waits while an older one of its chat is held
    # by a live lease or waits for a retry.
    blocked_by_older = (
        select(older.id)
        .where(
            older.chat_id == Delivery.chat_id,
            older.id < Delivery.id,
            older.kind == DeliveryKind.OFFER,  # a deferred service message holds up nothing
            or_(
                and_(older.status == DeliveryStatus.PENDING, older.next_attempt_at > now),
                and_(older.status == DeliveryStatus.SENDING, older.lease_until >= now),
            ),
        )
        .exists()
    )
    ranked = (
        select(
            Delivery.id,
            func.row_number()
            .over(partition_by=Delivery.chat_id, order_by=Delivery.id)
            .label("rank"),
        )
        .join(Chat, and_(Chat.id == Delivery.chat_id, Chat.active.is_(True)))
        .where(
            or_(
                and_(
                    Delivery.status == DeliveryStatus.PENDING,
                    Delivery.next_attempt_at <= now,
                ),
                and_(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_until < now),
            ),
            ~blocked_by_older,
        )
        .subquery()
    )
    # A few rows per chat per batch: a slow group (20 messages a minute) never holds up
    # everyone else's batch.
    chosen = select(ranked.c.id).where(ranked.c.rank <= per_chat).order_by(ranked.c.id).limit(limit)
    due = select(Delivery.id).where(Delivery.id.in_(chosen)).order_by(Delivery.id)
    if is_postgresql(session):
        due = due.with_for_update(skip_locked=True)
    ids = list(await session.scalars(due))
    if not ids:
        return []
    await session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids))
        .values(
            status=DeliveryStatus.SENDING,
            lease_until=lease_until,
            attempts=Delivery.attempts + 1,
        )
    )
    rows = await session.execute(
        select(Delivery, Chat.language, Offer.author, Offer.text, Offer.url)
        .join(Chat, Chat.id == Delivery.chat_id)
        .outerjoin(Offer, Offer.id == Delivery.offer_id)
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.id)
    )
    return [
        ClaimedDelivery(
            delivery_id=delivery.id,
            chat_id=delivery.chat_id,
            language=language,
            kind=delivery.kind,
            attempts=delivery.attempts,
            offer_author=author,
            offer_text=text,
            offer_url=url,
            payload=delivery.payload,
        )
        for delivery, language, author, text, url in rows
    ]


async def mark_sent(
    session: AsyncSession, *, delivery_id: int, message_id: int | None, now: datetime
) -> None:
    """The message reached Telegram."""
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(
            status=DeliveryStatus.SENT,
            sent_at=now,
            message_id=message_id,
            lease_until=None,
            last_error=None,
        )
    )


async def mark_failed(session: AsyncSession, *, delivery_id: int, error: str) -> None:
    """Telegram rejected the message for good: never retried, never blocks the queue."""
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(status=DeliveryStatus.FAILED, lease_until=None, last_error=error[:500])
    )


async def retry_later(session: AsyncSession, *, delivery_id: int, at: datetime, error: str) -> None:
    """Give the row back to the queue, due again at `at`."""
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(
            status=DeliveryStatus.PENDING,
            next_attempt_at=at,
            lease_until=None,
            last_error=error[:500],
        )
    )
