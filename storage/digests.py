"""Held offers and the digests that deliver them, each part recorded as it is sent."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.policy import Hold
from storage.models import Chat, Delivery, DeliveryStatus, Digest, Offer
from storage.outbox import still_claimed
from storage.sql import affected


@dataclass(frozen=True, slots=True)
class PendingDigest:
    """A digest created but not completely sent."""

    digest_id: int
    chat_id: int
    language: str
    parts_sent: int
    thread_id: int = 0  # the forum topic digests go to
    pin: bool = False  # a club's weekly digest, pinned once sent
    chat_type: str = "private"
    # Saved offers not applied to, mentioned once at its end: [author, url, excerpt].
    followups: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class DigestOffer:
    """One offer inside a digest."""

    author: str
    text: str
    url: str
    tags: dict[str, Any] | None = None
    delivery_id: int = 0


async def hold(
    session: AsyncSession,
    *,
    delivery_id: int,
    reason: Hold,
    now: datetime,
    claim: int | None = None,
    score: float | None = None,
) -> None:
    """Keep an offer for a digest instead of pushing it (unless it was claimed again since
    `claim`: see outbox.still_claimed), with the chat's score of it, which orders the
    digest."""
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, still_claimed(claim))
        .values(
            status=DeliveryStatus.HELD,
            hold_reason=reason.value,
            held_at=now,
            score=score,
            lease_until=None,
        )
    )


async def held_by_chat(session: AsyncSession) -> dict[int, list[tuple[Hold, datetime]]]:
    """For every active chat with held offers: each hold reason with its oldest hold time."""
    rows = await session.execute(
        select(Delivery.chat_id, Delivery.hold_reason, func.min(Delivery.held_at))
        .join(Chat, Chat.id == Delivery.chat_id)
        .where(Delivery.status == DeliveryStatus.HELD, Chat.active.is_(True))
        .group_by(Delivery.chat_id, Delivery.hold_reason)
    )
    held: dict[int, list[tuple[Hold, datetime]]] = defaultdict(list)
    for chat_id, reason, held_at in rows:
        if held_at is not None:
            held[chat_id].append((Hold(reason or Hold.LIMIT), held_at))
    return dict(held)


async def held_count(session: AsyncSession, chat_id: int) -> int:
    """How many offers wait for this chat's next digest."""
    count = await session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.chat_id == chat_id, Delivery.status == DeliveryStatus.HELD)
    )
    return int(count or 0)


async def create_digest(
    session: AsyncSession,
    *,
    chat_id: int,
    reason: str,
    now: datetime,
    pin: bool = False,
    followups: list[list[str]] | None = None,
) -> int | None:
    """Gather every held offer of a chat into new digests, one per forum topic with held
    offers (posted in that topic); the first digest's id, or None when nothing is held. The
    `followups` go at the end of the first digest."""
    language = await session.scalar(select(Chat.language).where(Chat.id == chat_id))
    threads = await session.scalars(
        select(Delivery.thread_id)
        .where(Delivery.chat_id == chat_id, Delivery.status == DeliveryStatus.HELD)
        .distinct()
        .order_by(Delivery.thread_id)
    )
    first: int | None = None
    for thread_id in list(threads):
        digest = Digest(
            chat_id=chat_id,
            thread_id=thread_id or 0,
            reason=reason,
            language=language or "en",
            sent=False,
            parts_sent=0,
            created_at=now,
            pin=pin,
            followups=followups if first is None else None,
        )
        session.add(digest)
        await session.flush()
        result = await session.execute(
            update(Delivery)
            .where(
                Delivery.chat_id == chat_id,
                Delivery.thread_id == thread_id,
                Delivery.status == DeliveryStatus.HELD,
            )
            .values(status=DeliveryStatus.DIGESTING, digest_id=digest.id)
        )
        if not affected(result):
            await session.execute(delete(Digest).where(Digest.id == digest.id))
            continue
        first = first if first is not None else digest.id
    return first


async def set_followups(
    session: AsyncSession, *, digest_id: int, followups: list[list[str]]
) -> None:
    """The follow-ups a digest carries at its end (before its first part is sent)."""
    await session.execute(update(Digest).where(Digest.id == digest_id).values(followups=followups))


async def pending_digests(session: AsyncSession) -> list[PendingDigest]:
    """Digests still to send, oldest first, for active chats."""
    rows = await session.execute(
        select(
            Digest.id,
            Digest.chat_id,
            Digest.language,
            Digest.parts_sent,
            Digest.thread_id,
            Digest.pin,
            Chat.type,
            Digest.followups,
        )
        .join(Chat, Chat.id == Digest.chat_id)
        .where(Digest.sent.is_(False), Chat.active.is_(True))
        .order_by(Digest.id)
    )
    return [
        PendingDigest(
            digest_id,
            chat_id,
            language,
            parts_sent,
            thread_id or 0,
            bool(pin),
            chat_type or "private",
            tuple((str(a), str(u), str(x)) for a, u, x in followups or []),
        )
        for digest_id, chat_id, language, parts_sent, thread_id, pin, chat_type, followups in rows
    ]


async def digest_offers(session: AsyncSession, digest_id: int) -> list[DigestOffer]:
    """The offers of a digest, the best scored first (bot.ranking), then the oldest first."""
    rows = await session.execute(
        select(Offer.author, Offer.text, Offer.url, Offer.tags, Delivery.id)
        .join(Delivery, Delivery.offer_id == Offer.id)
        .where(Delivery.digest_id == digest_id)
        .order_by(Delivery.score.is_(None), Delivery.score.desc(), Offer.id)
    )
    return [DigestOffer(*row) for row in rows]


async def record_part(session: AsyncSession, *, digest_id: int, parts_sent: int) -> None:
    """One more Telegram message of the digest went out."""
    await session.execute(
        update(Digest).where(Digest.id == digest_id).values(parts_sent=parts_sent)
    )


async def finish_digest(session: AsyncSession, *, digest_id: int, now: datetime) -> None:
    """Every part went out: its offers are delivered."""
    await session.execute(
        update(Digest).where(Digest.id == digest_id).values(sent=True, sent_at=now)
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.digest_id == digest_id)
        .values(status=DeliveryStatus.DIGESTED, sent_at=now)
    )
