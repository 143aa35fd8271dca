"""What a chat's ranking model learns from: only that chat's own received offers and marks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Application, Delivery, DeliveryKind, DeliveryStatus, Offer

HISTORY_RECEIVED = 500  # the chat's latest received offers read at most
HISTORY_SAVED = 200  # and its latest saved offers


async def chats_to_rank(
    session: AsyncSession, chat_ids: list[int], *, min_saved: int
) -> dict[int, tuple[int, datetime | None]]:
    """Which of these chats saved at least `min_saved` offers (the others are at cold start:
    their history is not even read), each with the fingerprint of its saves (how many, the
    latest change): a model trained on the same fingerprint can be reused."""
    if not chat_ids:
        return {}
    rows = await session.execute(
        select(Application.chat_id, func.count(), func.max(Application.status_at))
        .where(Application.chat_id.in_(chat_ids))
        .group_by(Application.chat_id)
        .having(func.count() >= min_saved)
    )
    return {chat_id: (int(count), latest) for chat_id, count, latest in rows}


async def history(
    session: AsyncSession, chat_id: int
) -> list[tuple[str, str, dict[str, Any] | None, bool, bool]]:
    """The chat's latest received offers and saved offers: (author, text, tags, saved, marked
    not for me), each offer once."""
    received = await session.execute(
        select(
            Offer.id,
            Offer.author,
            Offer.text,
            Offer.tags,
            Application.id.is_not(None),
            Delivery.feedback == "not_for_me",
        )
        .join(Delivery, Delivery.offer_id == Offer.id)
        .outerjoin(
            Application,
            and_(Application.chat_id == Delivery.chat_id, Application.offer_id == Offer.id),
        )
        .where(
            Delivery.chat_id == chat_id,
            Delivery.kind == DeliveryKind.OFFER,
            Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.DIGESTED]),
        )
        .order_by(Delivery.id.desc())
        .limit(HISTORY_RECEIVED)
    )
    seen: dict[int, tuple[str, str, dict[str, Any] | None, bool, bool]] = {}
    for offer_id, author, text, tags, saved, not_for_me in received:
        seen.setdefault(offer_id, (author, text, tags, bool(saved), bool(not_for_me)))
    # Saved offers whose outbox row is gone (pruned) or older than the window still teach.
    saved_rows = await session.execute(
        select(Offer.id, Offer.author, Offer.text, Offer.tags)
        .join(Application, Application.offer_id == Offer.id)
        .where(Application.chat_id == chat_id)
        .order_by(Application.id.desc())
        .limit(HISTORY_SAVED)
    )
    for offer_id, author, text, tags in saved_rows:
        seen.setdefault(offer_id, (author, text, tags, True, False))
    return list(seen.values())
