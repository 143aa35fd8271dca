"""A poll: due groups of accounts -> one search each -> new posts -> offers stored once ->
outbox rows, in one transaction."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.budget import month_key, next_month, outlook
from bot.classify import analyse, catalogue
from bot.clock import Clock
from bot.liveness import Owner, no_owner
from bot.sources.base import AuthError, Batch, Post, RateLimited, Unavailable
from bot.sources.x import MAX_LOOKUP, XSource, id_at, query_fits
from storage import chats, outbox, sources, usage
from storage.db import Sessions
from storage.outbox import IncomingOffer, Reading
from storage.sources import VACATED, GroupInfo, SourceInfo

log = logging.getLogger(__name__)

X_KIND = "x"
MAX_BACKOFF = timedelta(hours=1)
STALE_AFTER = timedelta(days=1)
POLL_CONCURRENCY = 4
DUE_BATCH = 200
# A claimed group is this process's to poll until then, or until the others find it dead
# (bot.liveness).
POLL_LEASE = timedelta(minutes=5)
# A search never says an account is gone: one silent this long is looked up (a cheap
# `GET /2/users`, 100 accounts a request), at most once per such period.
SILENT_CHECK = timedelta(days=14)
LOOKUP_RETRY = timedelta(hours=1)
# An offer posted again within this window (by any account) is the same story: sent once.
STORY_WINDOW = timedelta(days=7)
# Posts shorter than this are never merged into a story ("Merci !" is not an offer twice).
STORY_MIN_WORDS = 6


def read(text: str) -> Reading:
    """What the classifier understood of a post, as storage keeps it."""
    analysis = analyse(text)
    long_enough = len(analysis.body) >= STORY_MIN_WORDS
    return Reading(
        is_offer=analysis.is_offer,
        categories=analysis.categories,
        tags=analysis.tags(),
        search_text=analysis.search_text,
        fingerprint=analysis.fingerprint if long_enough else None,
        sketch=catalogue().sketch_words(analysis.body) if long_enough else (),
    )


def read_safely(text: str, url: str) -> Reading | None:
    """`read`, or None (the post still goes to its account's followers, unclassified) if the
    classifier fails on it: one odd post must not hold up every poll."""
    try:
        return read(text)
    except Exception:
        log.exception("could not classify %s; relaying it to its account's followers only", url)
        return None


async def read_all(posts: Sequence[Post]) -> list[Reading | None]:
    """`read_safely` of each post, in a worker thread: a batch of long posts is tens of
    milliseconds each, which the event loop (every chat, every command) must not wait for."""
    if not posts:
        return []
    return await asyncio.to_thread(lambda: [read_safely(post.text, post.url) for post in posts])


async def relay(
    session: AsyncSession, incoming: list[IncomingOffer], now: datetime, *, curated_only: bool
) -> tuple[list[int], int]:
    """Store new posts as offers (once), link the same offer posted again into one story, and
    write the outbox rows of their followers: the offer ids and how many rows were written.
    With `curated_only`, category followers get only the offers of job boards."""
    offer_ids = await outbox.store_offers(session, offers=incoming, now=now)
    await outbox.link_stories(
        session,
        offer_ids=offer_ids,
        since=now - STORY_WINDOW,
        near_identical=catalogue().near_identical,
    )
    written = await outbox.fan_out(session, offer_ids=offer_ids, now=now, curated_only=curated_only)
    return offer_ids, written


def backoff(interval: timedelta, error_count: int) -> timedelta:
    """Delay before retrying a failing source: the interval doubled per consecutive failure."""
    delay: timedelta = interval * (2 ** min(error_count, 16))
    return min(delay, max(MAX_BACKOFF, interval))


class Poller:
    """Polls every due X source once for all its subscribers."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        clock: Clock,
        x: XSource,
        interval_seconds: float,
        on_new_deliveries: Callable[[], None] = lambda: None,
        monthly_budget: int = 10_000,
        operators: frozenset[int] = frozenset(),
        silent_check: timedelta = SILENT_CHECK,
        curated_only: bool = True,
        owner: Owner = no_owner,
    ) -> None:
        self._owner = owner
        self._sessions = sessions
        self._clock = clock
        self._x = x
        self._interval = timedelta(seconds=interval_seconds)
        self._on_new_deliveries = on_new_deliveries
        self._auth_reported = False
        self._budget = monthly_budget
        self._operators = operators
        self._stretch = 1.0
        self._silent_check = silent_check
        self._curated_only = curated_only
        # Sources whose handle a search showed on another account's posts: looked up by id
        # at the end of the cycle, however recently they posted.
        self._suspects: set[int] = set()

    async def tick(self) -> int:
        """Poll the groups that are due; returns how many outbox rows were written.

        Each group of accounts is one search; the searches run concurrently and what they
        bring is stored in one transaction, so the same offer posted by two accounts in one
        cycle is one story before anything is sent.
        """
        now = self._clock.now()
        if not await self._within_budget(now):
            return 0
        async with self._sessions.begin() as session:
            await sources.place_in_groups(session, kind=X_KIND, now=now, fits=query_fits)
            due = await sources.claim_due_groups(
                session,
                kind=X_KIND,
                now=now,
                limit=DUE_BATCH,
                lease_until=now + POLL_LEASE,
                owner=self._owner(),
            )
        semaphore = asyncio.Semaphore(POLL_CONCURRENCY)
        rate_limited = asyncio.Event()

        async def one(group: GroupInfo) -> Read | None:
            async with semaphore:
                if rate_limited.is_set():
                    return None
                try:
                    return await self.fetch(group)
                except RateLimited as exc:
                    rate_limited.set()
                    await self._hold_all(exc)
                    return None
                except Exception:
                    # One group's surprise must not stop the others' polls.
                    log.exception("polling %s failed unexpectedly", _names(group))
                    await self._failed(group, "unexpected error")
                    return None

        reads = [done for done in await asyncio.gather(*(one(g) for g in due)) if done]
        written = await self._store(reads)
        if written:
            self._on_new_deliveries()
        if not rate_limited.is_set():
            posted = {i for done in reads for i, posts in done.posts.items() if posts}
            await self._check_silent(
                [m for g in due for m in g.members if m.source_id not in posted]
            )
        return written

    async def _within_budget(self, now: datetime) -> bool:
        """Whether X may be read now: not at the month's budget (nor capped by X). Sets how
        much to stretch the poll interval, and tells the operators once at 80% and at 100%."""
        month = month_key(now)
        async with self._sessions() as session:
            used = await usage.get(session, month)
        look = outlook(used.posts, self._budget, now)
        if used.capped:
            return False  # X itself capped the app: nothing before the next month
        if look.exhausted:
            # Checked at every tick: a budget raised by the operator resumes polling at once.
            if not used.spent and await self._tell_once(now, "spent", "capped", used.posts):
                log.warning(
                    "X polling stopped until %s: the monthly read budget is spent",
                    next_month(now).isoformat(),
                )
            return False
        if look.near and not used.warned:
            await self._tell_once(now, "warned", "near", used.posts)
        self._stretch = look.stretch
        return True

    async def _tell_once(self, now: datetime, flag: str, state: str, used: int) -> bool:
        """Tell the operators, once per month whichever process gets there first."""
        async with self._sessions.begin() as session:
            if not await usage.flag(session, month=month_key(now), name=flag):
                return False
            await self._tell_operators(
                session,
                {
                    "code": "x_budget",
                    "state": state,
                    "used": used,
                    "until": next_month(now).isoformat(),
                },
                now,
            )
        self._on_new_deliveries()
        return True

    async def _x_capped(self, now: datetime) -> None:
        """X answered `usage-capped`: no X read until the next UTC month, across restarts."""
        async with self._sessions() as session:
            used = await usage.get(session, month_key(now))
        if await self._tell_once(now, "capped", "x_capped", used.posts):
            async with self._sessions.begin() as session:
                await sources.postpone_all(session, kind=X_KIND, until=next_month(now))
            log.warning(
                "X capped this app's usage: X polling stopped until %s",
                next_month(now).isoformat(),
            )

    async def _tell_operators(
        self, session: AsyncSession, payload: dict[str, object], now: datetime
    ) -> None:
        known = await chats.existing_ids(session, sorted(self._operators))
        await outbox.enqueue_notice(
            session, chat_ids=known, payload={**payload, "budget": self._budget}, now=now
        )

    async def _hold_all(self, exc: RateLimited) -> None:
        if exc.usage_capped:  # X's own monthly cap: the budget case, not a rate limit
            await self._x_capped(self._clock.now())
            return
        until = max(exc.reset_at, self._clock.now() + timedelta(seconds=1))
        log.warning("X rate limit reached: no X request before %s", until.isoformat())
        async with self._sessions.begin() as session:
            await sources.postpone_all(session, kind=X_KIND, until=until)

    async def fetch(self, group: GroupInfo) -> Read | None:
        """Read a group's new posts; None when it failed (recorded); raises RateLimited.

        A member's posts are new after its cursor (a member never polled: after its first
        follow; one nobody polled for STALE_AFTER: from then, not the backlog of idle weeks).
        After a poll every member's cursor is the newest post the poll saw, so a group's
        members share one cursor and one search reads them all. A member behind it (it just
        joined, or came back after its followers were away) is read by a second search from
        its own cursor, once: the others' posts are never read, and billed, twice.
        """
        members = _fitting(group.members)
        floor = id_at(self._clock.now() - STALE_AFTER)
        sinces = {m.source_id: max(_since(m), floor) for m in members}
        common = max(Counter(sinces.values()).most_common(), key=lambda pair: (pair[1], pair[0]))[0]
        behind = [m for m in members if sinces[m.source_id] < common]
        searches = [([m for m in members if sinces[m.source_id] >= common], common)]
        if behind:
            searches.append((behind, min(sinces[m.source_id] for m in behind)))
        batches: list[Batch] = []
        try:
            for readers, since in searches:
                handles = [m.display_name for m in readers]
                batches.append(await self._x.search_new(handles, since_id=since))
        except AuthError as exc:
            if not self._auth_reported:
                log.error("X refused jobrelay's credentials (%s): check X_BEARER_TOKEN", exc)
                self._auth_reported = True
            await self._failed(group, str(exc))
            return None
        except Unavailable as exc:
            log.info("polling %s failed: %s", _names(group), exc)
            await self._failed(group, str(exc))
            return None
        self._auth_reported = False
        by_author = {m.external_id: m for m in members}
        by_handle = {m.display_name.lower(): m for m in members}
        posts: dict[int, list[Post]] = {m.source_id: [] for m in members}
        renamed: dict[int, str] = {}
        # Two searches can bring one post (a member under a handle another account took).
        unique = {p.external_id: p for b in batches for p in b.posts}
        for post in sorted(unique.values(), key=lambda p: int(p.external_id)):
            member = by_author.get(post.author_id)
            if member is None:
                # The handle now belongs to another account: not the one followed, which
                # renamed itself (a lookup by id at this cycle's end tells its new handle).
                log.info("skipping a post of @%s (id %s)", post.author, post.author_id)
                stale = by_handle.get(post.author.lower())
                if stale is not None:
                    self._suspects.add(stale.source_id)
                continue
            if post.author != member.display_name and post.author:
                renamed[member.source_id] = post.author  # X spells the handle so now
            if int(post.external_id) > sinces[member.source_id]:
                posts[member.source_id].append(post)
        # Each search returned everything after its start: no member has a post between its
        # own cursor and the newest post seen, which is now every member's cursor.
        newest = max(int(b.cursor or 0) for b in batches)
        cursors = {m.source_id: str(max(newest, sinces[m.source_id])) for m in members}
        # Except a member whose handle another account took: it was not read at all (its
        # posts are under a handle a lookup by id tells), so it keeps its cursor.
        for member in members:
            if member.source_id in self._suspects or member.key.startswith(VACATED):
                cursors[member.source_id] = str(sinces[member.source_id])
        batch = Batch(
            posts=[],
            cursor=str(newest),
            requests=sum(b.requests for b in batches),
            returned=sum(b.billed for b in batches),
        )
        return Read(group, members, posts, cursors, batch, renamed)

    async def _store(self, reads: list[Read]) -> int:
        """Offers, stories, outbox rows and cursors of one cycle, all in one transaction."""
        if not reads:
            return 0
        found = [
            (source_id, post)
            for done in reads
            for source_id, posts in done.posts.items()
            for post in posts
        ]
        readings = await read_all([post for _, post in found])
        incoming = [
            IncomingOffer(source_id, post, reading)
            for (source_id, post), reading in zip(found, readings, strict=True)
        ]
        # Oldest first across accounts (a chat gets a cycle's offers in the order posted).
        incoming.sort(key=lambda o: o.post.posted_at or datetime.min.replace(tzinfo=UTC))
        now = self._clock.now()
        async with self._sessions.begin() as session:
            offer_ids, written = await relay(
                session, incoming, now, curated_only=self._curated_only
            )
            for done in reads:
                await sources.record_group_poll(
                    session,
                    group_id=done.group.group_id,
                    cursors=done.cursors,
                    posted={
                        source_id: posts[-1].posted_at or now
                        for source_id, posts in done.posts.items()
                        if posts
                    },
                    next_poll_at=now + self._interval * self._stretch,
                )
                if done.renamed:
                    await sources.record_check(
                        session, source_ids=[], now=now, renamed=done.renamed
                    )
            # Billed reads, counted with the posts they brought (one transaction).
            await usage.record(
                session,
                month=month_key(now),
                posts=sum(done.batch.billed for done in reads),
                requests=sum(done.batch.requests for done in reads),
            )
        if incoming:
            log.info(
                "%d new post(s) from %d account(s), %d delivery row(s)",
                len(offer_ids),
                len({o.source_id for o in incoming}),
                written,
            )
        return written

    async def _failed(self, group: GroupInfo, error: str) -> None:
        retry_at = self._clock.now() + backoff(self._interval, group.error_count)
        async with self._sessions.begin() as session:
            await sources.record_group_failure(
                session, group_id=group.group_id, error=error, next_poll_at=retry_at
            )

    async def _check_silent(self, members: list[SourceInfo]) -> None:
        """Look up the accounts silent for `silent_check` and not looked up for as long: a
        search only stops finding a deleted, suspended or protected account, and a renamed
        one is no longer found under its old handle. One request (at most MAX_LOOKUP)."""
        now = self._clock.now()
        horizon = now - self._silent_check
        suspect = [m for m in members if m.source_id in self._suspects or m.key.startswith(VACATED)]
        silent = [
            *suspect,
            *(
                m
                for m in members
                if (m.last_post_at or m.created_at) <= horizon
                and (m.checked_at is None or m.checked_at <= horizon)
                and m not in suspect
            ),
        ][:MAX_LOOKUP]
        self._suspects.difference_update(m.source_id for m in silent)
        if not silent:
            return
        try:
            found = await self._x.lookup([m.external_id for m in silent])
        except RateLimited as exc:
            await self._hold_all(exc)
            return
        except (AuthError, Unavailable) as exc:
            log.info("looking up %d silent account(s) failed: %s", len(silent), exc)
            # Tried again in an hour (or one check period if shorter), not at every tick.
            retry = min(self._silent_check, LOOKUP_RETRY)
            async with self._sessions.begin() as session:
                await sources.record_check(
                    session,
                    source_ids=[m.source_id for m in silent],
                    now=now - self._silent_check + retry,
                    renamed={},
                )
            return
        async with self._sessions.begin() as session:
            await sources.record_check(
                session,
                source_ids=[m.source_id for m in silent if m.external_id in found.found],
                now=now,
                renamed={
                    m.source_id: found.found[m.external_id].handle
                    for m in silent
                    if m.external_id in found.found
                    and (
                        found.found[m.external_id].handle != m.display_name
                        or m.key != found.found[m.external_id].handle.lower()
                    )
                },
            )
            await usage.record(session, month=month_key(now), requests=1, users=len(silent))
        for member in silent:
            if member.external_id in found.gone:
                await self._account_gone(member, str(found.gone[member.external_id]))

    async def _account_gone(self, source: SourceInfo, reason: str) -> None:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            if not await sources.mark_gone(session, source_id=source.source_id, reason=reason):
                return
            chat_ids = await outbox.subscriber_ids(session, source.source_id)
            await outbox.enqueue_notice(
                session,
                chat_ids=chat_ids,
                payload={"code": "account_gone", "handle": source.display_name},
                now=now,
            )
        log.info("@%s is gone (%s); told %d chat(s)", source.display_name, reason, len(chat_ids))
        self._on_new_deliveries()


@dataclass(frozen=True, slots=True)
class Read:
    """What one group's search brought: each member's new posts and cursor."""

    group: GroupInfo
    members: list[SourceInfo]
    posts: dict[int, list[Post]]  # source id -> new posts, oldest first
    cursors: dict[int, str]  # source id -> newest post id read for it
    batch: Batch  # the search itself: requests made, posts billed
    renamed: dict[int, str] = field(default_factory=dict)  # source id -> handle its posts show


def _since(member: SourceInfo) -> int:
    """The id after which a member's posts are new: its cursor, or for a member never read,
    the first post id X could give at its first follow (nothing older is sent)."""
    if member.cursor is not None and member.cursor.isdigit():
        return int(member.cursor)
    return id_at(member.created_at) - 1


def _fitting(members: list[SourceInfo]) -> list[SourceInfo]:
    """The members one query can read (all, unless renames made their handles longer; the
    rest are read once regrouped)."""
    handles: list[str] = []
    for member in members:
        if not query_fits([*handles, member.display_name]):
            break
        handles.append(member.display_name)
    return members[: max(len(handles), 1)]


def _names(group: GroupInfo) -> str:
    return ", ".join(f"@{m.display_name}" for m in group.members)
