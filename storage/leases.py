"""Leases a dead process left behind: outbox rows being sent, poll groups and feeds being read."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Delivery, DeliveryStatus, PollGroup, Source
from storage.sql import affected


async def release_all(session: AsyncSession, *, now: datetime) -> int:
    """End every lease at once (an SQLite file serves one process: at its start, any lease
    is a previous run's); how many were held. A row being sent becomes due now: if Telegram
    had accepted it before the crash, it is the one duplicate a crash may cost."""
    released = affected(
        await session.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.SENDING)
            .values(lease_until=now - timedelta(seconds=1))
        )
    )
    for model in (PollGroup, Source):
        released += affected(
            await session.execute(
                update(model).where(model.lease_until.is_not(None)).values(lease_until=None)
            )
        )
    return released
