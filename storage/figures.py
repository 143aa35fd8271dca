"""What every worker reports the same way: the figures /metrics reads from the database."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Delivery, DeliveryStatus, PollGroup, Source, XUsage
from storage.sources import X_KIND, watched

# Not yet delivered: waiting for its turn (or a retry), or claimed by a sender right now.
# Held rows wait for a digest by the chat's own choice and are not a backlog.
UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


@dataclass(frozen=True, slots=True)
class SharedFigures:
    """The outbox backlog, the month's X reads and how late the polls run, at `now`."""

    outbox_pending: int
    outbox_oldest_pending_seconds: float
    x_posts_read_month: int
    x_poll_lag_seconds: float
    feed_poll_lag_seconds: float


def _seconds_behind(now: datetime, since: datetime | None) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0


async def ping(session: AsyncSession) -> None:
    """Raise unless the database answers a trivial query."""
    await session.execute(text("SELECT 1"))


async def read(
    session: AsyncSession, *, now: datetime, month: str, feed_kinds: Collection[str]
) -> SharedFigures:
    """One statement of five aggregates, each served by an index (the outbox's status index,
    the month's primary key, the poll groups' and sources' next_poll_at indexes).

    Poll lag: how long the most overdue X poll group, or watched feed, has been due (0 when
    none is due): a poller that keeps up stays within a tick of zero."""
    unsent = Delivery.status.in_(UNSENT)
    outbox_count = select(func.count()).select_from(Delivery).where(unsent).scalar_subquery()
    outbox_oldest = select(func.min(Delivery.created_at)).where(unsent).scalar_subquery()
    posts = select(XUsage.posts).where(XUsage.month == month).scalar_subquery()
    x_due = (
        select(func.min(PollGroup.next_poll_at))
        .where(PollGroup.kind == X_KIND, PollGroup.next_poll_at <= now)
        .scalar_subquery()
    )
    feed_due = (
        select(func.min(Source.next_poll_at))
        .where(Source.kind.in_(list(feed_kinds)), Source.next_poll_at <= now, watched())
        .scalar_subquery()
    )
    row = (await session.execute(select(outbox_count, outbox_oldest, posts, x_due, feed_due))).one()
    count, oldest, read_posts, x_since, feed_since = row
    return SharedFigures(
        outbox_pending=int(count or 0),
        outbox_oldest_pending_seconds=_seconds_behind(now, _aware(oldest)),
        x_posts_read_month=int(read_posts or 0),
        x_poll_lag_seconds=_seconds_behind(now, _aware(x_since)),
        feed_poll_lag_seconds=_seconds_behind(now, _aware(feed_since)),
    )


def _aware(value: datetime | None) -> datetime | None:
    """MIN keeps the column's UTC type; a naive value would still be UTC (SQLite stores them
    so), never local time."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
