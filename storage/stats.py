"""Counts for operators: chats, sources and the outbox at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Chat, Delivery, DeliveryStatus, Source


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """The state of the relay right now."""

    active_chats: int
    inactive_chats: int
    sources: int
    failing_sources: int
    gone_sources: int
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
    source_row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Source.error_count > 0),
                func.count().filter(Source.gone.is_(True)),
            ).select_from(Source)
        )
    ).one()
    queued_row = (
        await session.execute(
            select(func.count(), func.min(Delivery.created_at)).where(
                Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING])
            )
        )
    ).one()
    since = now - timedelta(days=1)
    settled = dict(
        list(
            await session.execute(
                select(Delivery.status, func.count())
                .where(
                    Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.FAILED]),
                    Delivery.created_at >= since,
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
        queued=int(queued_row[0]),
        oldest_queued=oldest,
        sent_last_day=int(settled.get(DeliveryStatus.SENT, 0)),
        failed_last_day=int(settled.get(DeliveryStatus.FAILED, 0)),
    )
