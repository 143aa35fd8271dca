"""Sources and subscriptions: which accounts exist, who follows them, when to poll them next."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.categories import any_active_follower
from storage.models import Chat, Source, Subscription
from storage.sql import affected, insert_ignoring_conflicts, is_postgresql


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """A source as the poller sees it."""

    source_id: int
    kind: str
    key: str
    external_id: str
    display_name: str
    cursor: str | None
    error_count: int
    gone: bool
    created_at: datetime
    next_poll_at: datetime


def _info(source: Source) -> SourceInfo:
    return SourceInfo(
        source_id=source.id,
        kind=source.kind,
        key=source.key,
        external_id=source.external_id,
        display_name=source.display_name,
        cursor=source.cursor,
        error_count=source.error_count,
        gone=source.gone,
        created_at=source.created_at,
        next_poll_at=source.next_poll_at,
    )


async def find_sources(session: AsyncSession, kind: str, keys: list[str]) -> dict[str, SourceInfo]:
    """The known sources among `keys`, by key."""
    if not keys:
        return {}
    rows = await session.scalars(select(Source).where(Source.kind == kind, Source.key.in_(keys)))
    return {row.key: _info(row) for row in rows}


async def ensure_source(
    session: AsyncSession,
    *,
    kind: str,
    key: str,
    external_id: str,
    display_name: str,
    now: datetime,
) -> int:
    """The id of the source with this key, created if needed (idempotent under races)."""
    statement = (
        insert_ignoring_conflicts(session, Source)
        .values(
            kind=kind,
            key=key,
            external_id=external_id,
            display_name=display_name,
            cursor=None,
            next_poll_at=now,
            error_count=0,
            gone=False,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["kind", "key"])
    )
    await session.execute(statement)
    source = await session.scalar(select(Source).where(Source.kind == kind, Source.key == key))
    assert source is not None
    if source.gone:
        # The account came back (or a new account took the handle): start it afresh.
        source.gone = False
        source.external_id = external_id
        source.display_name = display_name
        source.cursor = None
        source.created_at = now
        source.next_poll_at = now
        source.error_count = 0
    return source.id


async def restart(session: AsyncSession, *, source_id: int, since: datetime) -> None:
    """Forget a source's cursor: its next polls take what was posted after `since`."""
    await session.execute(
        update(Source).where(Source.id == source_id).values(cursor=None, created_at=since)
    )


async def restart_if_unwatched(session: AsyncSession, *, source_id: int, now: datetime) -> None:
    """A source nobody active follows was not polled: its cursor is stale. Start it afresh, so
    a new follower gets what is posted from now on, not the backlog of the idle weeks."""
    if await subscriber_count(session, source_id) == 0:
        await restart(session, source_id=source_id, since=now)
        await session.execute(
            update(Source).where(Source.id == source_id).values(next_poll_at=now, error_count=0)
        )


async def subscribe(
    session: AsyncSession, *, chat_id: int, source_id: int, now: datetime, thread_id: int = 0
) -> bool:
    """Subscribe a chat (in a forum, one of its topics) to a source; False if it already was."""
    statement = (
        insert_ignoring_conflicts(session, Subscription)
        .values(chat_id=chat_id, source_id=source_id, thread_id=thread_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["chat_id", "source_id", "thread_id"])
    )
    result = await session.execute(statement)
    return bool(affected(result))


async def unsubscribe(
    session: AsyncSession, *, chat_id: int, source_ids: list[int], thread_id: int | None = None
) -> int:
    """Remove subscriptions (of one forum topic when `thread_id` is given); how many went."""
    if not source_ids:
        return 0
    statement = delete(Subscription).where(
        Subscription.chat_id == chat_id, Subscription.source_id.in_(source_ids)
    )
    if thread_id is not None:
        statement = statement.where(Subscription.thread_id == thread_id)
    result = await session.execute(statement)
    return affected(result)


async def unsubscribe_all(
    session: AsyncSession, *, chat_id: int, thread_id: int | None = None
) -> int:
    """Remove every subscription of a chat (of one forum topic when `thread_id` is given)."""
    statement = delete(Subscription).where(Subscription.chat_id == chat_id)
    if thread_id is not None:
        statement = statement.where(Subscription.thread_id == thread_id)
    result = await session.execute(statement)
    return affected(result)


async def followed_sources(
    session: AsyncSession, chat_id: int, thread_id: int | None = None
) -> list[SourceInfo]:
    """The sources a chat follows (in one forum topic when `thread_id` is given), by handle."""
    statement = (
        select(Source)
        .join(Subscription, Subscription.source_id == Source.id)
        .where(Subscription.chat_id == chat_id)
        .order_by(Source.key)
        .distinct()
    )
    if thread_id is not None:
        statement = statement.where(Subscription.thread_id == thread_id)
    return [_info(row) for row in await session.scalars(statement)]


async def followed_by_topic(session: AsyncSession, chat_id: int) -> list[tuple[int, str]]:
    """(thread id, handle) of every account a chat follows, topic by topic (0 first)."""
    rows = await session.execute(
        select(Subscription.thread_id, Source.display_name)
        .join(Source, Source.id == Subscription.source_id)
        .where(Subscription.chat_id == chat_id)
        .order_by(Subscription.thread_id, Source.key)
    )
    return [(int(thread), str(name)) for thread, name in rows]


def _has_active_subscriber() -> object:
    return exists().where(
        Subscription.source_id == Source.id,
        Subscription.chat_id == Chat.id,
        Chat.active.is_(True),
    )


async def due_sources(
    session: AsyncSession, *, kind: str, now: datetime, limit: int
) -> list[SourceInfo]:
    """Sources whose poll time has come and that at least one active chat still follows (by
    name, or for a job board by category)."""
    rows = await session.scalars(
        select(Source)
        .where(
            Source.kind == kind,
            Source.gone.is_(False),
            Source.next_poll_at <= now,
            or_(
                _has_active_subscriber(),  # type: ignore[arg-type]
                and_(Source.board.is_(True), any_active_follower()),  # type: ignore[arg-type]
            ),
        )
        .order_by(Source.next_poll_at)
        .limit(limit)
    )
    return [_info(row) for row in rows]


async def claim_due_sources(
    session: AsyncSession, *, kind: str, now: datetime, limit: int, lease_until: datetime
) -> list[SourceInfo]:
    """`due_sources`, each leased to this process until `lease_until`: another process (one
    database, several workers) skips it meanwhile, and takes it again if this one dies."""
    wanted = (
        select(Source.id)
        .where(
            Source.kind == kind,
            Source.gone.is_(False),
            Source.next_poll_at <= now,
            or_(Source.lease_until.is_(None), Source.lease_until < now),
            or_(
                _has_active_subscriber(),  # type: ignore[arg-type]
                and_(Source.board.is_(True), any_active_follower()),  # type: ignore[arg-type]
            ),
        )
        .order_by(Source.next_poll_at)
        .limit(limit)
    )
    if is_postgresql(session):
        wanted = wanted.with_for_update(skip_locked=True, of=Source)
    ids = list(await session.scalars(wanted))
    if not ids:
        return []
    await session.execute(update(Source).where(Source.id.in_(ids)).values(lease_until=lease_until))
    rows = await session.scalars(
        select(Source).where(Source.id.in_(ids)).order_by(Source.next_poll_at)
    )
    return [_info(row) for row in rows]


async def record_poll(
    session: AsyncSession,
    *,
    source_id: int,
    cursor: str | None,
    next_poll_at: datetime,
) -> None:
    """A successful poll: store the cursor, clear the error streak, set the next poll (never
    earlier than a hold set meanwhile, e.g. by a rate limit hit by another poll)."""
    later = case((Source.next_poll_at > next_poll_at, Source.next_poll_at), else_=next_poll_at)
    await session.execute(
        update(Source)
        .where(Source.id == source_id)
        .values(cursor=cursor, next_poll_at=later, error_count=0, last_error=None, lease_until=None)
    )


async def record_failure(
    session: AsyncSession,
    *,
    source_id: int,
    error: str,
    next_poll_at: datetime,
    count_error: bool = True,
) -> None:
    """A failed poll: remember the error and when to try again."""
    values: dict[str, object] = {
        "last_error": error[:500],
        "next_poll_at": next_poll_at,
        "lease_until": None,
    }
    if count_error:
        values["error_count"] = Source.error_count + 1
    await session.execute(update(Source).where(Source.id == source_id).values(**values))


async def postpone_all(session: AsyncSession, *, kind: str, until: datetime) -> None:
    """Hold every source of a network until `until` (its API asked us to wait); their leases
    go too (the sources a cycle claimed but could not poll are due again then, not later)."""
    await session.execute(
        update(Source)
        .where(Source.kind == kind, Source.next_poll_at < until)
        .values(next_poll_at=until, lease_until=None)
    )


async def mark_gone(session: AsyncSession, *, source_id: int, reason: str) -> bool:
    """Flag a source whose account disappeared; False if it was already flagged."""
    result = await session.execute(
        update(Source)
        .where(Source.id == source_id, Source.gone.is_(False))
        .values(gone=True, last_error=reason[:500])
    )
    return bool(affected(result))


async def subscriber_count(session: AsyncSession, source_id: int) -> int:
    """How many active chats follow a source."""
    count = await session.scalar(
        select(func.count())
        .select_from(Subscription)
        .join(Chat, and_(Chat.id == Subscription.chat_id, Chat.active.is_(True)))
        .where(Subscription.source_id == source_id)
    )
    return int(count or 0)


async def set_boards(
    session: AsyncSession, *, kind: str, accounts: list[tuple[str, str, str]], now: datetime
) -> None:
    """Make exactly these (key, external_id, display_name) accounts the job boards."""
    keys = [key for key, _, _ in accounts]
    for key, external_id, display_name in accounts:
        await ensure_source(
            session,
            kind=kind,
            key=key,
            external_id=external_id,
            display_name=display_name,
            now=now,
        )
    await session.execute(
        update(Source).where(Source.kind == kind).values(board=Source.key.in_(keys))
    )


async def boards(session: AsyncSession, kind: str) -> list[str]:
    """The display names of the job boards."""
    rows = await session.scalars(
        select(Source.display_name)
        .where(Source.kind == kind, Source.board.is_(True))
        .order_by(Source.key)
    )
    return list(rows)
