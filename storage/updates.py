"""Telegram updates some process began to handle: each is handled once, whoever receives it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import HandledUpdate
from storage.sql import affected, insert_ignoring_conflicts


async def claim(session: AsyncSession, *, update_id: int, now: datetime) -> bool:
    """Note that an update is being handled; False when it already was (by this process or
    another: the insert is the claim, so two receivers cannot both get True)."""
    statement = (
        insert_ignoring_conflicts(session, HandledUpdate)
        .values(update_id=update_id, handled_at=now)
        .on_conflict_do_nothing(index_elements=["update_id"])
    )
    return affected(await session.execute(statement)) == 1


async def forget_before(session: AsyncSession, before: datetime) -> int:
    """Forget the updates handled before `before` (Telegram no longer sends them); how many."""
    return affected(
        await session.execute(delete(HandledUpdate).where(HandledUpdate.handled_at < before))
    )
