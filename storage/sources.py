"""Sources and subscriptions: which accounts exist, who follows them, when to poll them next."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, not_, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.categories import any_active_follower
from storage.models import Chat, Offer, PollGroup, Source, Subscription
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
    last_post_at: datetime | None = None
    checked_at: datetime | None = None
    url: str | None = None  # a feed's
    paused: bool = False  # a feed failing for too long


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A poll group claimed for one poll: its watched members and its error streak."""

    group_id: int
    error_count: int
    members: list[SourceInfo]


X_KIND = "x"

# Placing sources in groups is one process at a time (PostgreSQL advisory lock key).
GROUPING_LOCK = 0x6A6F6272  # "jobr"


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
        last_post_at=source.last_post_at,
        checked_at=source.checked_at,
        url=source.url,
        paused=source.paused,
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
    """The id of the source with this key, created if needed (idempotent under races). An X
    account is one source per account id, whatever handle it went by: see `_ensure_account`."""
    if kind == X_KIND:
        return await _ensure_account(session, external_id=external_id, handle=display_name, now=now)
    await session.execute(
        _new_source(session, kind, key, external_id, display_name, now).on_conflict_do_nothing(
            index_elements=["kind", "key"]
        )
    )
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


def _new_source(
    session: AsyncSession, kind: str, key: str, external_id: str, display_name: str, now: datetime
) -> Any:
    """The INSERT of a new source, never polled yet (its conflict clause to be added)."""
    return insert_ignoring_conflicts(session, Source).values(
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


async def _ensure_account(
    session: AsyncSession, *, external_id: str, handle: str, now: datetime
) -> int:
    """The source of the X account with this id, created if needed, its key and name now
    `handle` (a rename keeps every follower: they follow the account, not the name). A source
    of another account still holding the handle (that account renamed itself, or is gone)
    gives it up (`_vacate`)."""
    source = await _account(session, external_id)
    if source is None:
        await _vacate(session, handle.lower(), keep=None)
        await session.execute(
            _new_source(
                session, X_KIND, handle.lower(), external_id, handle, now
            ).on_conflict_do_nothing()
        )
        source = await _account(session, external_id)
        assert source is not None
    if source.gone:
        # The account came back: start it afresh.
        source.gone = False
        source.cursor = None
        source.created_at = now
        source.next_poll_at = now
        source.error_count = 0
    await _rename(session, source, handle)
    return source.id


async def account_key(session: AsyncSession, external_id: str) -> str | None:
    """The key (handle) of the live source of an X account, None when there is none."""
    return await session.scalar(
        select(Source.key).where(
            Source.kind == X_KIND, Source.external_id == external_id, not_(Source.gone)
        )
    )


async def _account(session: AsyncSession, external_id: str) -> Source | None:
    """The source of an X account by id (its live one, else the one it had before it was
    gone; a unique index allows one live source per account)."""
    return await session.scalar(
        select(Source)
        .where(Source.kind == X_KIND, Source.external_id == external_id)
        .order_by(Source.gone, Source.id)
        .limit(1)
    )


async def _rename(session: AsyncSession, source: Source, handle: str) -> None:
    """An X source now goes by `handle`: its key and name follow (the key first taken from
    any other source holding it); a longer handle may no longer fit its poll group."""
    if source.key != handle.lower():
        await _vacate(session, handle.lower(), keep=source.id)
        source.key = handle.lower()
        source.poll_group_id = None
    if source.display_name != handle:
        if len(handle) != len(source.display_name):
            source.poll_group_id = None
        source.display_name = handle


# The key of an X source whose handle another account took, until a lookup by id tells its
# new one: a `#` and its id, which no handle can be, so nobody follows it by mistake.
VACATED = "#"


async def _vacate(session: AsyncSession, key: str, *, keep: int | None) -> None:
    """Another X source holds `key` but its account no longer goes by it: it gives the key up
    (and is looked up by id at the next poll, which tells its new handle)."""
    holder = await session.scalar(
        select(Source).where(Source.kind == X_KIND, Source.key == key, Source.id != keep)
    )
    if holder is not None:
        holder.key = f"{VACATED}{holder.id}"
        await session.flush()


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
    # Followed again: the count towards deleting an unfollowed source starts over.
    await session.execute(
        update(Source)
        .where(Source.id == source_id, Source.unfollowed_since.is_not(None))
        .values(unfollowed_since=None)
    )
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
    """(thread id, source key) of every source a chat follows, topic by topic (0 first)."""
    rows = await session.execute(
        select(Subscription.thread_id, Source.key)
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


def watched() -> Any:
    """SQL: at least one active chat follows this source (by name, or for a job board by
    category)."""
    return or_(
        _has_active_subscriber(),  # type: ignore[arg-type]
        and_(Source.board.is_(True), any_active_follower()),  # type: ignore[arg-type]
    )


async def place_in_groups(
    session: AsyncSession, *, kind: str, now: datetime, fits: Callable[[list[str]], bool]
) -> int:
    """Keep every watched source of `kind` in exactly one poll group, and only those.

    Sources nobody follows any more (and gone ones) leave their group; then a group whose
    members all fit in another group's query joins it. A watched source in no group (new,
    back, or renamed) joins the first group its handle fits in (`fits(handles)`), or a new
    one polled at once. Returns how many sources were placed. One process at a time (an
    advisory lock on PostgreSQL); a cheap no-op when nothing changed.
    """
    if is_postgresql(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": GROUPING_LOCK})
    released = affected(
        await session.execute(
            update(Source)
            .where(
                Source.kind == kind,
                Source.poll_group_id.is_not(None),
                or_(Source.gone.is_(True), not_(watched())),
            )
            .values(poll_group_id=None)
        )
    )
    unplaced = (
        await session.execute(
            select(Source.id, Source.display_name)
            .where(
                Source.kind == kind,
                Source.gone.is_(False),
                Source.poll_group_id.is_(None),
                watched(),
            )
            .order_by(Source.id)
        )
    ).all()
    if not released and not unplaced:
        return 0
    names: dict[int, list[str]] = defaultdict(list)
    rows = await session.execute(
        select(Source.poll_group_id, Source.display_name)
        .where(Source.kind == kind, Source.poll_group_id.is_not(None))
        .order_by(Source.poll_group_id, Source.id)
    )
    for group_id, name in rows:
        if group_id is not None:
            names[group_id].append(str(name))
    if released:
        await _merge_small_groups(session, kind=kind, now=now, names=names, fits=fits)
    placed: dict[int, list[int]] = defaultdict(list)
    for source_id, name in unplaced:
        target = next((g for g, members in names.items() if fits([*members, name])), None)
        if target is None:
            group = PollGroup(kind=kind, next_poll_at=now, error_count=0, created_at=now)
            session.add(group)
            await session.flush()
            target = group.id
        names[target].append(str(name))
        placed[target].append(int(source_id))
    for target, source_ids in placed.items():
        await session.execute(
            update(Source).where(Source.id.in_(source_ids)).values(poll_group_id=target)
        )
    await session.execute(
        delete(PollGroup).where(
            PollGroup.kind == kind, ~exists().where(Source.poll_group_id == PollGroup.id)
        )
    )
    return len(unplaced)


async def _merge_small_groups(
    session: AsyncSession,
    *,
    kind: str,
    now: datetime,
    names: dict[int, list[str]],
    fits: Callable[[list[str]], bool],
) -> None:
    """Move the members of a group into another whose query they fit in (followers leave,
    groups thin out: fewer queries read the same accounts). Groups being polled stay."""
    busy = set(
        await session.scalars(
            select(PollGroup.id).where(PollGroup.kind == kind, PollGroup.lease_until >= now)
        )
    )
    for small in sorted(names, key=lambda g: len(names[g])):
        if small in busy or not names[small]:
            continue
        target = next(
            (
                g
                for g in names
                if g != small and g not in busy and names[g] and fits(names[g] + names[small])
            ),
            None,
        )
        if target is None:
            continue
        await session.execute(
            update(Source).where(Source.poll_group_id == small).values(poll_group_id=target)
        )
        names[target] += names[small]
        names[small] = []
    for group_id in [g for g, members in names.items() if not members]:
        del names[group_id]


async def claim_due_groups(
    session: AsyncSession,
    *,
    kind: str,
    now: datetime,
    limit: int,
    lease_until: datetime,
    owner: int | None = None,
) -> list[GroupInfo]:
    """Poll groups whose time has come, each leased to this process (worker `owner`) until
    `lease_until`: another process (one database, several workers) skips it meanwhile, and
    takes it again if this one dies. Each comes with its watched members."""
    wanted = (
        select(PollGroup.id)
        .where(
            PollGroup.kind == kind,
            PollGroup.next_poll_at <= now,
            or_(PollGroup.lease_until.is_(None), PollGroup.lease_until < now),
            exists().where(Source.poll_group_id == PollGroup.id),
        )
        .order_by(PollGroup.next_poll_at)
        .limit(limit)
    )
    if is_postgresql(session):
        wanted = wanted.with_for_update(skip_locked=True, of=PollGroup, key_share=True)
    ids = list(await session.scalars(wanted))
    if not ids:
        return []
    await session.execute(
        update(PollGroup)
        .where(PollGroup.id.in_(ids))
        .values(lease_until=lease_until, lease_owner=owner)
    )
    groups = {
        group.id: group
        for group in await session.scalars(select(PollGroup).where(PollGroup.id.in_(ids)))
    }
    members: dict[int, list[SourceInfo]] = defaultdict(list)
    for source in await session.scalars(
        select(Source)
        .where(Source.poll_group_id.in_(ids), Source.gone.is_(False), watched())
        .order_by(Source.id)
    ):
        assert source.poll_group_id is not None
        members[source.poll_group_id].append(_info(source))
    return [
        GroupInfo(group_id=i, error_count=groups[i].error_count, members=members[i])
        for i in ids
        if members[i]
    ]


async def record_group_poll(
    session: AsyncSession,
    *,
    group_id: int,
    cursors: dict[int, str],
    posted: dict[int, datetime],
    next_poll_at: datetime,
) -> None:
    """A successful poll of a group: each member's cursor (source id -> newest post id read
    for it), when each member that posted did, the next poll (never earlier than a hold set
    meanwhile, e.g. by a rate limit hit by another poll), and the error streak cleared."""
    later = case(
        (PollGroup.next_poll_at > next_poll_at, PollGroup.next_poll_at), else_=next_poll_at
    )
    await session.execute(
        update(PollGroup)
        .where(PollGroup.id == group_id)
        .values(next_poll_at=later, error_count=0, last_error=None, lease_until=None)
    )
    by_cursor: dict[str, list[int]] = defaultdict(list)
    for source_id, cursor in cursors.items():
        by_cursor[cursor].append(source_id)
    for cursor, source_ids in by_cursor.items():
        await session.execute(
            update(Source)
            .where(Source.id.in_(source_ids))
            .values(cursor=cursor, next_poll_at=next_poll_at, error_count=0, last_error=None)
        )
    for source_id, moment in posted.items():
        await session.execute(
            update(Source).where(Source.id == source_id).values(last_post_at=moment)
        )


async def record_group_failure(
    session: AsyncSession, *, group_id: int, error: str, next_poll_at: datetime
) -> None:
    """A failed poll of a group: remember the error (on its members too) and when to retry."""
    await session.execute(
        update(PollGroup)
        .where(PollGroup.id == group_id)
        .values(
            next_poll_at=next_poll_at,
            error_count=PollGroup.error_count + 1,
            last_error=error[:500],
            lease_until=None,
        )
    )
    await session.execute(
        update(Source)
        .where(Source.poll_group_id == group_id)
        .values(
            next_poll_at=next_poll_at, error_count=Source.error_count + 1, last_error=error[:500]
        )
    )


async def record_check(
    session: AsyncSession, *, source_ids: list[int], now: datetime, renamed: dict[int, str]
) -> None:
    """Accounts looked up and found: when, and their handle when it changed (key and name;
    a source of another account holding the new handle gives it up, and a renamed source is
    placed in a group again)."""
    if source_ids:
        await session.execute(
            update(Source).where(Source.id.in_(source_ids)).values(checked_at=now)
        )
    for source_id, handle in renamed.items():
        source = await session.get(Source, source_id)
        if source is not None:
            await _rename(session, source, handle)


async def postpone_all(session: AsyncSession, *, kind: str, until: datetime) -> None:
    """Hold every source and poll group of a network until `until` (its API asked us to
    wait); their leases go too (what a cycle claimed but could not poll is due again then,
    not later)."""
    await session.execute(
        update(Source)
        .where(Source.kind == kind, Source.next_poll_at < until)
        .values(next_poll_at=until, lease_until=None)
    )
    await session.execute(
        update(PollGroup)
        .where(PollGroup.kind == kind, PollGroup.next_poll_at < until)
        .values(next_poll_at=until, lease_until=None)
    )


async def mark_gone(session: AsyncSession, *, source_id: int, reason: str) -> bool:
    """Flag a source whose account disappeared; False if it was already flagged."""
    result = await session.execute(
        update(Source)
        .where(Source.id == source_id, Source.gone.is_(False))
        .values(gone=True, last_error=reason[:500], poll_group_id=None)
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
) -> list[int]:
    """Make exactly these (key, external_id, display_name) accounts of `kind` the job boards
    BOARDS_FILE lists (those an operator added stay); their source ids."""
    ids = [
        await ensure_source(
            session,
            kind=kind,
            key=key,
            external_id=external_id,
            display_name=display_name,
            now=now,
        )
        for key, external_id, display_name in accounts
    ]
    await set_file_boards(session, kinds=[kind], source_ids=ids)
    return ids


async def set_file_boards(
    session: AsyncSession, *, kinds: list[str], source_ids: list[int]
) -> None:
    """The sources of these kinds that BOARDS_FILE lists are boards from the file; boards the
    file listed before and no longer does are boards no more (an operator's stay)."""
    await session.execute(
        update(Source)
        .where(Source.id.in_(source_ids), Source.board_origin.is_distinct_from("admin"))
        .values(board=True, board_origin="file")
    )
    await session.execute(
        update(Source)
        .where(Source.kind.in_(kinds), Source.board_origin == "file", Source.id.not_in(source_ids))
        .values(board=False, board_origin=None)
    )


async def set_board(session: AsyncSession, *, source_id: int, on: bool) -> bool:
    """An operator makes a source a board (curated) or not; False if it already was/wasn't."""
    result = await session.execute(
        update(Source)
        .where(Source.id == source_id, Source.board.is_(not on))
        .values(board=on, board_origin="admin" if on else None)
    )
    return bool(affected(result))


@dataclass(frozen=True, slots=True)
class BoardRow:
    """A curated source, or a candidate for it, as /admin board shows it."""

    source_id: int
    kind: str
    key: str
    name: str
    origin: str | None = None
    followers: int = 0
    posts: int = 0
    offers: int = 0


async def board_list(session: AsyncSession) -> list[BoardRow]:
    """Every curated source, X accounts first."""
    rows = await session.execute(
        select(Source.id, Source.kind, Source.key, Source.display_name, Source.board_origin)
        .where(Source.board.is_(True))
        .order_by(Source.kind.desc(), Source.key)
    )
    return [BoardRow(*row) for row in rows]


async def board_candidates(
    session: AsyncSession, *, since: datetime, limit: int = 15
) -> list[BoardRow]:
    """The most-followed sources that are not curated, with what they posted since `since`
    and how much of it read as offers."""
    followers = (
        select(func.count(func.distinct(Subscription.chat_id)))
        .join(Chat, Chat.id == Subscription.chat_id)
        .where(Subscription.source_id == Source.id, Chat.active.is_(True))
        .scalar_subquery()
    )
    posts = (
        select(func.count())
        .select_from(Offer)
        .where(Offer.source_id == Source.id, Offer.created_at >= since)
        .scalar_subquery()
    )
    offers = (
        select(func.count())
        .select_from(Offer)
        .where(Offer.source_id == Source.id, Offer.created_at >= since, Offer.is_offer.is_(True))
        .scalar_subquery()
    )
    counted = (
        select(
            Source.id,
            Source.kind,
            Source.key,
            Source.display_name,
            followers.label("followers"),
            posts.label("posts"),
            offers.label("offers"),
        )
        .where(Source.board.is_(False), Source.gone.is_(False))
        .subquery()
    )
    rows = await session.execute(
        select(counted)
        .where(counted.c.followers > 0)
        .order_by(counted.c.followers.desc(), counted.c.offers.desc(), counted.c.key)
        .limit(limit)
    )
    return [
        BoardRow(r.id, r.kind, r.key, r.display_name, None, r.followers, r.posts, r.offers)
        for r in rows
    ]


async def boards(session: AsyncSession, kind: str) -> list[str]:
    """The display names of the job boards."""
    rows = await session.scalars(
        select(Source.display_name)
        .where(Source.kind == kind, Source.board.is_(True))
        .order_by(Source.key)
    )
    return list(rows)
