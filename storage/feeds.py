"""Feed sources (RSS/Atom feeds, Mastodon and Bluesky profiles): their fetch state and the
entries they have shown."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import FeedEntry, Source
from storage.sources import watched
from storage.sql import insert_ignoring_conflicts, is_postgresql

KEYS_PER_STATEMENT = 1000  # PostgreSQL takes at most 32,767 parameters a statement
DROP_VALIDATORS_AFTER = 3  # consecutive failures


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
    next_poll_at: datetime
    ttl: timedelta | None  # the refresh hint of its last full answer


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
        next_poll_at=source.next_poll_at,
        ttl=timedelta(seconds=source.ttl_seconds) if source.ttl_seconds else None,
    )


async def find_feeds(
    session: AsyncSession, kinds: Collection[str], keys: Collection[str]
) -> dict[str, FeedSource]:
    """The known feeds among these keys (what `feed_address` makes of an address), by key."""
    if not keys:
        return {}
    rows = await session.scalars(select(Source).where(Source.kind.in_(kinds), Source.key.in_(keys)))
    return {row.key: _feed(row) for row in rows}


async def create_feed(
    session: AsyncSession,
    *,
    kind: str,
    key: str,
    url: str,
    label: str,
    etag: str | None,
    last_modified: str | None,
    ttl: timedelta | None,
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
            etag=_validator(etag, 1024),
            last_modified=_validator(last_modified, 64),
            ttl_seconds=int(ttl.total_seconds()) if ttl else None,
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


def _validator(value: str | None, limit: int) -> str | None:
    """A validator to send back, or None when it is too long to be a real one (a hostile
    header must not make every poll of a feed fail)."""
    return value if value and len(value) <= limit else None


async def restart_if_unwatched(session: AsyncSession, *, source_id: int, now: datetime) -> None:
    """A feed nobody active follows was not fetched: what it showed meanwhile is old news. Its
    next fetch (due now) only remembers its entries; later ones are relayed."""
    followed = await session.scalar(select(watched()).where(Source.id == source_id))
    if not followed:
        # (A fetch still leased by a process finds `checked_at` gone and relays nothing.)
        await session.execute(
            update(Source)
            .where(Source.id == source_id)
            .values(
                checked_at=None,
                next_poll_at=now,
                error_count=0,
                failing_since=None,
                paused=False,
            )
        )


async def claim_due_feeds(
    session: AsyncSession,
    *,
    kinds: Collection[str],
    now: datetime,
    limit: int,
    lease_until: datetime,
    owner: int | None = None,
) -> list[FeedSource]:
    """Feeds somebody active follows whose next fetch is due and that no process is fetching;
    they are this process's (worker `owner`) until `lease_until` (or until it dies)."""
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
        # FOR NO KEY UPDATE (key_share): a chat subscribing meanwhile (its foreign key takes
        # KEY SHARE on the feed) neither waits for a poll nor deadlocks with one.
        statement = statement.with_for_update(skip_locked=True, of=Source, key_share=True)
    rows = list(await session.scalars(statement))
    if rows:
        await session.execute(
            update(Source)
            .where(Source.id.in_([row.id for row in rows]))
            .values(lease_until=lease_until, lease_owner=owner)
        )
    return [_feed(row) for row in rows]


async def primed_if_held(session: AsyncSession, *, source_id: int, lease: datetime) -> bool | None:
    """None when the feed is no longer held under this claim's lease (a fetch that outlived
    it must not store over another process's); else whether it is primed now (a follow after
    an unwatched spell may have restarted it during the fetch). The row stays locked until
    the transaction ends."""
    statement = select(Source.checked_at).where(Source.id == source_id, Source.lease_until == lease)
    if is_postgresql(session):
        statement = statement.with_for_update(key_share=True)
    row = (await session.execute(statement)).first()
    return None if row is None else row[0] is not None


def _chunks(keys: Collection[str]) -> list[list[str]]:
    ordered = list(keys)
    return [ordered[i : i + KEYS_PER_STATEMENT] for i in range(0, len(ordered), KEYS_PER_STATEMENT)]


async def unseen(session: AsyncSession, *, source_id: int, keys: Collection[str]) -> set[str]:
    """Which of these entry keys the feed never showed before."""
    seen: set[str] = set()
    for chunk in _chunks(keys):
        seen.update(
            await session.scalars(
                select(FeedEntry.key).where(
                    FeedEntry.source_id == source_id, FeedEntry.key.in_(chunk)
                )
            )
        )
    return set(keys) - seen


async def remember_entries(
    session: AsyncSession, *, source_id: int, keys: Collection[str], now: datetime
) -> None:
    """Record that the feed shows these entries now (new ones are added, known ones touched)."""
    for chunk in _chunks(keys):
        await session.execute(
            update(FeedEntry)
            .where(FeedEntry.source_id == source_id, FeedEntry.key.in_(chunk))
            .values(last_seen_at=now)
        )
        rows = [
            {"source_id": source_id, "key": key, "first_seen_at": now, "last_seen_at": now}
            for key in chunk
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
    ttl: timedelta | None,
    label: str | None = None,
    posted: bool = False,
) -> bool:
    """The feed answered: its validators, its next fetch, no error streak; True when it was
    paused and resumes now (one process sees it: the flag is flipped by a conditional UPDATE)."""
    resumed = await _resume(session, [source_id])
    values = _answered(etag, last_modified, ttl, next_poll_at, now)
    if label:
        values["display_name"] = label
    if posted:
        values["last_post_at"] = now
    await session.execute(update(Source).where(Source.id == source_id).values(**values))
    return bool(resumed)


def _answered(
    etag: str | None,
    last_modified: str | None,
    ttl: timedelta | None,
    next_poll_at: datetime,
    now: datetime,
) -> dict[str, object]:
    """What a feed's answer (full or 304) sets: its validators and refresh hint, its next fetch,
    no error streak, no lease, and that it is primed."""
    return {
        "etag": _validator(etag, 1024),
        "last_modified": _validator(last_modified, 64),
        "ttl_seconds": int(ttl.total_seconds()) if ttl else None,
        "next_poll_at": next_poll_at,
        "error_count": 0,
        "last_error": None,
        "failing_since": None,
        "lease_until": None,
        "checked_at": now,
    }


async def _resume(session: AsyncSession, source_ids: Collection[int]) -> set[int]:
    """Unpause these feeds; the ids of those that were paused (a conditional UPDATE: when
    several processes record answers, one of them sees each resume)."""
    return set(
        await session.scalars(
            update(Source)
            .where(Source.id.in_(source_ids), Source.paused.is_(True))
            .values(paused=False)
            .returning(Source.id)
        )
    )


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A feed that answered 304 Not Modified: its validators and its next fetch."""

    source_id: int
    etag: str | None
    last_modified: str | None
    ttl: timedelta | None
    next_poll_at: datetime


async def record_unchanged(
    session: AsyncSession, *, unchanged: Sequence[Unchanged], lease: datetime, now: datetime
) -> set[int]:
    """What `record_fetch` records, for many feeds that answered 304 at once, those still held
    under `lease` (one UPDATE by primary key, executed for all); the ids of those that were
    paused and resume now (flipped by a conditional UPDATE: one process sees each)."""
    if not unchanged:
        return set()
    statement = (
        select(Source.id)
        .where(Source.id.in_([feed.source_id for feed in unchanged]), Source.lease_until == lease)
        .order_by(Source.id)  # rows locked in one order by everyone: no deadlock between them
    )
    if is_postgresql(session):
        statement = statement.with_for_update(key_share=True)
    held = set(await session.scalars(statement))
    if not held:
        return set()
    resumed = await _resume(session, held)
    await session.execute(
        update(Source),
        [
            {
                "id": feed.source_id,
                **_answered(feed.etag, feed.last_modified, feed.ttl, feed.next_poll_at, now),
            }
            for feed in unchanged
            if feed.source_id in held
        ],
    )
    return resumed


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
    for `pause_after` seconds and is paused (its followers are to be told: one process sees it,
    the flag is flipped by a conditional UPDATE). After a few failures in a row its validators
    are dropped, in case they are what the server chokes on."""
    await session.execute(
        update(Source)
        .where(Source.id == source_id)
        .values(
            error_count=Source.error_count + 1,
            last_error=error[:500],
            next_poll_at=next_poll_at,
            lease_until=None,
            failing_since=func.coalesce(Source.failing_since, now),
            etag=case((Source.error_count + 1 >= DROP_VALIDATORS_AFTER, None), else_=Source.etag),
            last_modified=case(
                (Source.error_count + 1 >= DROP_VALIDATORS_AFTER, None),
                else_=Source.last_modified,
            ),
        )
    )
    paused = await session.execute(
        update(Source)
        .where(
            Source.id == source_id,
            Source.paused.is_(False),
            Source.failing_since <= now - timedelta(seconds=pause_after),
        )
        .values(paused=True)
        .returning(Source.id)
    )
    return paused.first() is not None
