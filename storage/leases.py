"""Leases a dead process left behind: outbox rows being sent, poll groups and feeds being read.

SQLite serves one process: at its start every lease is a previous run's (`release_all`).
PostgreSQL may serve several: each beats in `workers` (`register`, `beat`), every lease names
its owner, and the leases of a process whose beat is too old are released by any live one
(`release_dead`), instead of holding their rows and polls until they run out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Delivery, DeliveryStatus, PollGroup, Source, Worker
from storage.sql import affected


async def release_all(session: AsyncSession, *, now: datetime) -> int:
    """End every lease at once (an SQLite file serves one process: at its start, any lease
    is a previous run's); how many were held. A row being sent becomes due now: if Telegram
    had accepted it before the crash, it is the one duplicate a crash may cost."""
    released = affected(
        await session.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.SENDING)
            .values(lease_until=now - timedelta(seconds=1), lease_owner=None)
        )
    )
    for model in (PollGroup, Source):
        released += affected(
            await session.execute(
                update(model)
                .where(model.lease_until.is_not(None))
                .values(lease_until=None, lease_owner=None)
            )
        )
    return released


async def register(session: AsyncSession, *, host: str, pid: int) -> int:
    """A new live worker, beating from now (the database's clock: workers on several hosts
    are compared on one clock); its id, the owner its leases record."""
    worker_id = await session.scalar(
        insert(Worker)
        .values(host=host[:255], pid=pid, started_at=func.now(), beat_at=func.now())
        .returning(Worker.id)
    )
    assert worker_id is not None
    return int(worker_id)


async def beat(session: AsyncSession, *, worker_id: int) -> bool:
    """This worker is alive now; False when its row is gone (the others found it silent too
    long and took its leases over: it must register again)."""
    result = await session.execute(
        update(Worker).where(Worker.id == worker_id).values(beat_at=func.now())
    )
    return affected(result) > 0


async def unregister(session: AsyncSession, *, worker_id: int) -> None:
    """A worker stopping cleanly: whatever it still holds is anybody's at the next check."""
    await session.execute(delete(Worker).where(Worker.id == worker_id))


def _dead_owner(owner: Any, dead_after: timedelta) -> Any:
    """SQL: the lease's owner is no live worker (its beat is older than `dead_after`, or its
    row is gone)."""
    alive = exists().where(Worker.id == owner, Worker.beat_at >= func.now() - dead_after)
    return and_(owner.is_not(None), ~alive)


async def release_dead(session: AsyncSession, *, dead_after: timedelta, now: datetime) -> int:
    """Release the leases of workers that stopped beating `dead_after` ago (and forget those
    workers); how many leases. A row being sent becomes due now: if Telegram had accepted it
    before the worker died, it is the one duplicate a crash may cost, as after a restart."""
    released = affected(
        await session.execute(
            update(Delivery)
            .where(
                Delivery.status == DeliveryStatus.SENDING,
                _dead_owner(Delivery.lease_owner, dead_after),
            )
            .values(lease_until=now - timedelta(seconds=1), lease_owner=None)
            .execution_options(synchronize_session=False)
        )
    )
    for model in (PollGroup, Source):
        released += affected(
            await session.execute(
                update(model)
                .where(model.lease_until.is_not(None), _dead_owner(model.lease_owner, dead_after))
                .values(lease_until=None, lease_owner=None)
                .execution_options(synchronize_session=False)
            )
        )
    await session.execute(delete(Worker).where(Worker.beat_at < func.now() - dead_after))
    return released
