"""Feed sources (RSS/Atom feeds, Mastodon and Bluesky profiles): their fetch state and the
entries they have shown."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import FeedEntry, Source
from storage.sources import watched
from storage.sql import insert_ignoring_conflicts, is_postgresql


@dataclass(frozen=True, slots=True)
class FeedSource:
    """A feed as the feed poller and the follow service see it."""

    source_id: int
    kind: str
    key: str
    url: str
    label: str
    etag: str | None
    last_modified: str | None
    error_count: int
    failing_since: datetime | None
    paused: bool
    primed: bool  # fetched once since it is watched: its later entries are new


def _feed(source: Source) -> FeedSource:
    return FeedSource(
        source_id=source.id,
        kind=source.kind,
        key=source.key,
        url=source.url or source.key,
        label=source.display_name,
        etag=source.etag,
        last_modified=source.last_modified,
        error_count=source.error_count,
        failing_since=source.failing_since,
        paused=source.paused,
        primed=source.checked_at is not None,
    )


async def find_feeds(
    session: AsyncSession, kinds: Collection[str], keys: Collection[str]
) -> dict[str, FeedSource]:
    """The known feeds whose key (or fetched URL) is among `keys`, by what matched."""
    if not keys:
        return {}
    rows = await session.scalars(
        select(Source).where(
            Source.kind.in_(kinds), or_(Source.key.in_(keys), Source.url.in_(keys))
        )
    )
    found: dict[str, FeedSource] = {}
    for row in rows:
        feed = _feed(row)
        for key in (row.key, row.url):
            if key is not None and key in keys:
                found[key] = feed
    return found


async def create_feed(
    session: AsyncSession,
    *,
    kind: str,
    key: str,
    url: str,
    label: str,
    etag: str | None,
    last_modified: str | None,
    entry_keys: Collection[str],
    now: datetime,
    next_poll_at: datetime,
) -> int:
    """The id of the feed with this key, created if needed from a first fetch (whose entries
    are remembered as seen: nothing old is relayed). Idempotent under races."""
    result = await session.execute(
        insert_ignoring_conflicts(session, Source)
        .values(
            kind=kind,
            key=key,
            external_id="",
            display_name=label,
            url=url,
            etag=etag,
            last_modified=last_modified,
            next_poll_at=next_poll_at,
            error_count=0,
            gone=False,
            paused=False,
            created_at=now,
            checked_at=now,
        )
        .on_conflict_do_nothing(index_elements=["kind", "key"])
        .returning(Source.id)
    )
    created = result.scalar_one_or_none()
    if created is not None:
        await remember_entries(session, source_id=created, keys=entry_keys, now=now)
        return int(created)
    source_id = await session.scalar(
        select(Source.id).where(Source.kind == kind, Source.key == key)
    )
    assert source_id is not None
    return int(source_id)


async def restart_if_unwatched(session: AsyncSession, *, source_id: int, now: datetime) -> None:
    """A feed nobody active follows was not fetched: what it showed meanwhile is old news. Its
    next fetch (due now) only remembers its entries; later ones are relayed."""
    followed = await session.scalar(select(watched()).where(Source.id == source_id))
    if not followed:
        await session.execute(
            update(Source)
            .where(Source.id == source_id)
            .values(checked_at=None, next_poll_at=now, error_count=0, lease_until=None)
        )


async def claim_due_feeds(
    session: AsyncSession,
    *,
    kinds: Collection[str],
    now: datetime,
    limit: int,
    lease_until: datetime,
) -> list[FeedSource]:
    """Feeds somebody active follows whose next fetch is due and that no process is fetching;
    they are this process's until `lease_until` (a dead process's lease runs out)."""
    statement = (
        select(Source)
        .where(
            Source.kind.in_(kinds),
            Source.next_poll_at <= now,
            or_(Source.lease_until.is_(None), Source.lease_until < now),
            watched(),
        )
        .order_by(Source.next_poll_at)
        .limit(limit)
    )
    if is_postgresql(session):
        statement = statement.with_for_update(skip_locked=True, of=Source)
    rows = list(await session.scalars(statement))
    if rows:
        await session.execute(
            update(Source)
            .where(Source.id.in_([row.id for row in rows]))
            .values(lease_until=lease_until)
        )
    return [_feed(row) for row in rows]


async def unseen(session: AsyncSession, *, source_id: int, keys: Collection[str]) -> set[str]:
    """Which of these entry keys the feed never showed before."""
    if not keys:
        return set()
    seen = set(
        await session.scalars(
            select(FeedEntry.key).where(FeedEntry.source_id == source_id, FeedEntry.key.in_(keys))
        )
    )
    return set(keys) - seen


async def remember_entries(
    session: AsyncSession, *, source_id: int, keys: Collection[str], now: datetime
) -> None:
    """Record that the feed shows these entries now (new ones are added, known ones touched)."""
    if not keys:
        return
    await session.execute(
        update(FeedEntry)
        .where(FeedEntry.source_id == source_id, FeedEntry.key.in_(keys))
        .values(last_seen_at=now)
    )
    rows = [
        {"source_id": source_id, "key": key, "first_seen_at": now, "last_seen_at": now}
        for key in keys
    ]
    await session.execute(
        insert_ignoring_conflicts(session, FeedEntry)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["source_id", "key"])
    )


async def forget_entries(session: AsyncSession, *, source_id: int, before: datetime) -> None:
    """Forget entries the feed has not shown since `before` (a feed shows its latest ones)."""
    await session.execute(
        delete(FeedEntry).where(FeedEntry.source_id == source_id, FeedEntry.last_seen_at < before)
    )


async def record_fetch(
    session: AsyncSession,
    *,
    source_id: int,
    now: datetime,
    next_poll_at: datetime,
    etag: str | None,
    last_modified: str | None,
    label: str | None = None,
    posted: bool = False,
) -> bool:
    """The feed answered: its validators, its next fetch, no error streak; True when it was
    paused (it resumes now)."""
    paused = bool(await session.scalar(select(Source.paused).where(Source.id == source_id)))
    values: dict[str, object] = {
        "etag": etag,
        "last_modified": last_modified,
        "next_poll_at": next_poll_at,
        "error_count": 0,
        "last_error": None,
        "failing_since": None,
        "paused": False,
        "lease_until": None,
        "checked_at": now,
    }
    if label:
        values["display_name"] = label
    if posted:
        values["last_post_at"] = now
    await session.execute(update(Source).where(Source.id == source_id).values(**values))
    return paused


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A feed that answered 304 Not Modified: its validators and its next fetch."""

    source_id: int
    etag: str | None
    last_modified: str | None
    next_poll_at: datetime


async def record_unchanged(
    session: AsyncSession, *, unchanged: Sequence[Unchanged], now: datetime
) -> set[int]:
    """What `record_fetch` records, for many feeds that answered 304 at once (one UPDATE by
    primary key, executed for all); the ids of those that were paused (they resume now)."""
    if not unchanged:
        return set()
    paused = set(
        await session.scalars(
            select(Source.id).where(
                Source.id.in_([feed.source_id for feed in unchanged]), Source.paused.is_(True)
            )
        )
    )
    await session.execute(
        update(Source),
        [
            {
                "id": feed.source_id,
                "etag": feed.etag,
                "last_modified": feed.last_modified,
                "next_poll_at": feed.next_poll_at,
                "error_count": 0,
                "last_error": None,
                "failing_since": None,
                "paused": False,
                "lease_until": None,
                "checked_at": now,
            }
            for feed in unchanged
        ],
    )
    return paused


async def record_feed_failure(
    session: AsyncSession,
    *,
    source_id: int,
    now: datetime,
    error: str,
    next_poll_at: datetime,
    pause_after: float,
) -> bool:
    """The feed failed: one more error, retried at `next_poll_at`; True when it has now failed
    for `pause_after` seconds and is paused (its followers are to be told, once)."""
    source = await session.get(Source, source_id)
    if source is None:
        return False
    source.error_count += 1
    source.last_error = error[:500]
    source.next_poll_at = next_poll_at
    source.lease_until = None
    if source.failing_since is None:
        source.failing_since = now
    newly_paused = not source.paused and (now - source.failing_since).total_seconds() >= pause_after
    if newly_paused:
        source.paused = True
    return newly_paused
