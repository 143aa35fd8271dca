"""Saved offers and applications (the `applications` table): the marks under a push, the
/saved and /applied pages, the CSV export, the follow-ups and the funnel's counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Application,
    ApplicationStatus,
    Delivery,
    DeliveryKind,
    Offer,
    Source,
    Subscription,
)
from storage.sql import affected, is_postgresql

NOT_FOR_ME = "not_for_me"
# Statuses reached by applying: the application is no longer just a saved offer.
APPLIED_OR_LATER = (
    ApplicationStatus.APPLIED,
    ApplicationStatus.INTERVIEW,
    ApplicationStatus.OFFER,
    ApplicationStatus.REJECTED,
)


@dataclass(frozen=True, slots=True)
class Marks:
    """What a chat said about the offer of one of its deliveries."""

    offer_id: int
    status: ApplicationStatus | None  # None: neither saved nor applied
    not_for_me: bool

    @property
    def saved(self) -> bool:
        """Saved (applied offers are saved too)."""
        return self.status is not None

    @property
    def applied(self) -> bool:
        """Applied, whatever came of it since."""
        return self.status in APPLIED_OR_LATER


@dataclass(frozen=True, slots=True)
class Tracked:
    """One row of /saved, /applied or the CSV."""

    application_id: int
    offer_id: int
    author: str
    text: str
    url: str
    tags: dict[str, Any] | None
    status: ApplicationStatus
    saved_at: datetime
    applied_at: datetime | None


async def delivery_marks(session: AsyncSession, *, chat_id: int, delivery_id: int) -> Marks | None:
    """The marks of one of this chat's offer deliveries; None when the delivery is not this
    chat's (forged or another chat's id), not an offer, or no longer stored."""
    row = (
        await session.execute(
            select(Delivery.offer_id, Delivery.feedback, Application.status)
            .outerjoin(
                Application,
                (Application.chat_id == Delivery.chat_id)
                & (Application.offer_id == Delivery.offer_id),
            )
            .join(Offer, Offer.id == Delivery.offer_id)
            .where(
                Delivery.id == delivery_id,
                Delivery.chat_id == chat_id,
                Delivery.kind == DeliveryKind.OFFER,
            )
        )
    ).first()
    offer_id = row[0] if row is not None else None
    if row is None or offer_id is None:
        return None
    return Marks(offer_id=offer_id, status=row[2], not_for_me=row[1] == NOT_FOR_ME)


async def save(session: AsyncSession, *, chat_id: int, offer_id: int, now: datetime) -> None:
    """Save an offer for a chat (nothing when it already is: two quick presses, two workers)."""
    values = {
        "chat_id": chat_id,
        "offer_id": offer_id,
        "status": ApplicationStatus.SAVED,
        "saved_at": now,
        "status_at": now,
    }
    insert = pg_insert if is_postgresql(session) else sqlite_insert
    await session.execute(
        insert(Application)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["chat_id", "offer_id"])
    )


async def set_status(
    session: AsyncSession,
    *,
    chat_id: int,
    offer_id: int,
    status: ApplicationStatus,
    now: datetime,
) -> None:
    """Move a saved offer to `status`: applying dates the application, an interview is dated
    once, going back to "saved" forgets the application's dates."""
    values: dict[str, Any] = {"status": status, "status_at": now}
    if status is ApplicationStatus.SAVED:
        values.update(applied_at=None, interview_at=None)
    elif status is ApplicationStatus.APPLIED:
        values["applied_at"] = func.coalesce(Application.applied_at, now)
    elif status is ApplicationStatus.INTERVIEW:
        values["interview_at"] = func.coalesce(Application.interview_at, now)
    if status in APPLIED_OR_LATER and status is not ApplicationStatus.APPLIED:
        values.setdefault("applied_at", func.coalesce(Application.applied_at, now))
    await session.execute(
        update(Application)
        .where(Application.chat_id == chat_id, Application.offer_id == offer_id)
        .values(**values)
    )


async def unsave(session: AsyncSession, *, chat_id: int, offer_id: int) -> None:
    """Forget a saved offer."""
    await session.execute(
        delete(Application).where(Application.chat_id == chat_id, Application.offer_id == offer_id)
    )


async def set_not_for_me(session: AsyncSession, *, chat_id: int, offer_id: int, on: bool) -> None:
    """Mark (or unmark) 👎 on every delivery of the offer to this chat."""
    await session.execute(
        update(Delivery)
        .where(Delivery.chat_id == chat_id, Delivery.offer_id == offer_id)
        .values(feedback=NOT_FOR_ME if on else None)
    )


async def status_of(
    session: AsyncSession, *, chat_id: int, application_id: int
) -> tuple[int, ApplicationStatus] | None:
    """(offer id, status) of one of this chat's applications; None for anyone else's."""
    row = (
        await session.execute(
            select(Application.offer_id, Application.status).where(
                Application.id == application_id, Application.chat_id == chat_id
            )
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


def _tracked_query(chat_id: int, applied: bool) -> Any:
    statuses = APPLIED_OR_LATER if applied else (ApplicationStatus.SAVED,)
    newest = Application.applied_at if applied else Application.saved_at
    return (
        select(
            Application.id,
            Application.offer_id,
            Offer.author,
            Offer.text,
            Offer.url,
            Offer.tags,
            Application.status,
            Application.saved_at,
            Application.applied_at,
        )
        .join(Offer, Offer.id == Application.offer_id)
        .where(Application.chat_id == chat_id, Application.status.in_(statuses))
        .order_by(newest.desc(), Application.id.desc())
    )


async def count_tracked(session: AsyncSession, *, chat_id: int, applied: bool) -> int:
    """How many offers /saved (or /applied) lists."""
    statuses = APPLIED_OR_LATER if applied else (ApplicationStatus.SAVED,)
    count = await session.scalar(
        select(func.count())
        .select_from(Application)
        .where(Application.chat_id == chat_id, Application.status.in_(statuses))
    )
    return int(count or 0)


async def count_all_tracked(session: AsyncSession, *, chat_id: int) -> int:
    """How many offers the chat keeps, saved or applied to (bounded: bot.tracker.MAX_TRACKED)."""
    count = await session.scalar(
        select(func.count()).select_from(Application).where(Application.chat_id == chat_id)
    )
    return int(count or 0)


async def tracked_page(
    session: AsyncSession, *, chat_id: int, applied: bool, offset: int, limit: int
) -> list[Tracked]:
    """A page of the chat's saved offers (or applications), newest first."""
    rows = await session.execute(_tracked_query(chat_id, applied).offset(offset).limit(limit))
    return [Tracked(*row) for row in rows]


async def due_followups(
    session: AsyncSession, *, chat_id: int, saved_before: datetime, now: datetime, limit: int
) -> list[Tracked]:
    """Saved offers not applied to, saved before `saved_before` and never followed up: marked
    as followed up now (in the caller's transaction, with the digest or summary that carries
    them, so each is mentioned once)."""
    rows = await session.execute(
        _tracked_query(chat_id, applied=False)
        .where(Application.saved_at <= saved_before, Application.reminded_at.is_(None))
        .limit(limit)
    )
    due = [Tracked(*row) for row in rows]
    if due:
        await session.execute(
            update(Application)
            .where(Application.id.in_([t.application_id for t in due]))
            .values(reminded_at=now)
        )
    return due


@dataclass(frozen=True, slots=True)
class Funnel:
    """What a chat did with its offers over a period."""

    saved: int = 0
    applied: int = 0
    interviews: int = 0


async def funnel_since(session: AsyncSession, *, chat_id: int, since: datetime) -> Funnel:
    """Offers saved, applications sent and interviews reached since `since` (each counted in
    the period its step happened in)."""
    row = (
        await session.execute(
            select(
                func.count().filter(Application.saved_at >= since),
                func.count().filter(Application.applied_at >= since),
                func.count().filter(Application.interview_at >= since),
            ).where(Application.chat_id == chat_id)
        )
    ).one()
    return Funnel(saved=int(row[0]), applied=int(row[1]), interviews=int(row[2]))


async def not_for_me_on_source(
    session: AsyncSession, *, chat_id: int, offer_id: int
) -> tuple[int, str, int, bool] | None:
    """For the source of an offer: its id, its name, how many of its offers the chat marked
    👎, and whether the chat follows it by name (what a one-tap mute can undo)."""
    source = (
        await session.execute(
            select(Source.id, Source.display_name, Source.kind).where(
                Source.id == select(Offer.source_id).where(Offer.id == offer_id).scalar_subquery()
            )
        )
    ).first()
    if source is None:
        return None
    source_id, name, kind = source
    count = await session.scalar(
        select(func.count(func.distinct(Delivery.offer_id)))
        .join(Offer, Offer.id == Delivery.offer_id)
        .where(
            Delivery.chat_id == chat_id,
            Delivery.feedback == NOT_FOR_ME,
            Offer.source_id == source_id,
        )
    )
    followed = await session.scalar(
        select(Subscription.id)
        .where(Subscription.chat_id == chat_id, Subscription.source_id == source_id)
        .limit(1)
    )
    shown = f"@{name}" if kind == "x" else name
    return source_id, shown, int(count or 0), followed is not None


async def mute_source(session: AsyncSession, *, chat_id: int, source_id: int) -> bool:
    """Stop following a source (every forum topic of the chat); False if it was not followed."""
    result = await session.execute(
        delete(Subscription).where(
            Subscription.chat_id == chat_id, Subscription.source_id == source_id
        )
    )
    return bool(affected(result))
