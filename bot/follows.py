"""Following and unfollowing accounts: the service behind /follow, /unfollow and /list."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.arguments import parse_handle
from bot.boards import Boards
from bot.budget import month_key, outlook
from bot.clock import Clock
from bot.feed_polling import distinct, feed_label, next_poll, shown
from bot.sources.base import (
    Account,
    AccountNotFound,
    AccountSuspended,
    NotConfigured,
    RateLimited,
    SourceError,
    Unavailable,
)
from bot.sources.feed_errors import FeedNotSaved
from bot.sources.feeds import (
    FEED_KINDS,
    Feed,
    FeedAddress,
    FeedAddressError,
    FeedFetcher,
    NotAFeed,
    feed_address,
)
from bot.sources.x import XSource
from storage import feeds, sources, usage
from storage.db import Sessions
from storage.feeds import FeedSource
from storage.sources import SourceInfo

log = logging.getLogger(__name__)

X_KIND = "x"
RESOLVE_CONCURRENCY = 5
LOOKUP_TTL_SECONDS = 600.0
MISS_TTL_SECONDS = 86_400.0  # a handle X says does not exist costs nothing again for a day
SUSPENDED_TTL_SECONDS = 600.0
LOOKUP_CACHE_SIZE = 10_000
# How long a known source's handle is trusted without being seen on its account (a post read
# under it, or a lookup by id): after that a /follow of the handle looks it up again.
KEY_TRUST = timedelta(days=1)


@dataclass(slots=True)
class FollowReport:
    """What happened to each handle of one /follow."""

    followed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    over_quota: list[str] = field(default_factory=list)  # this person's lookups for today
    over_budget: list[str] = field(default_factory=list)  # the month's X budget is spent


@dataclass(slots=True)
class FeedReport:
    """What happened to each feed address of one /follow: the feeds' names, or why not."""

    followed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: list[tuple[str, SourceError]] = field(default_factory=list)  # address, why
    paused: list[str] = field(default_factory=list)  # followed, but not answering for now


@dataclass(slots=True)
class UnfollowReport:
    """What happened to each handle (or feed address) of one /unfollow."""

    removed: list[str] = field(default_factory=list)
    not_followed: list[str] = field(default_factory=list)
    removed_feeds: list[str] = field(default_factory=list)  # the feeds' names
    not_followed_feeds: list[str] = field(default_factory=list)  # addresses as typed


@dataclass(frozen=True, slots=True)
class Followed:
    """One source a chat follows, as /list shows it."""

    kind: str
    name: str  # an X handle, or a feed's name (icon and title)
    address: str  # the handle, or what identifies a feed (its URL, @user@instance, handle)
    available: bool  # not gone from X, not paused for failing
    url: str = ""  # a feed's URL


class Follows:
    """Chats and their subscriptions; takes plain values, owns its transactions."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        clock: Clock,
        x: XSource | None,
        default_timezone: str,
        fetcher: FeedFetcher | None = None,
        feed_interval_seconds: float = 300.0,
        lookups_per_user_per_day: int = 50,
        monthly_budget: int = 10_000,
    ) -> None:
        self._lookups_per_day = lookups_per_user_per_day
        self._budget = monthly_budget
        self._looked_up: dict[int, tuple[date, int]] = {}  # person -> (UTC day, lookups)
        self._sessions = sessions
        self._clock = clock
        self._x = x
        self._fetcher = fetcher
        self._feed_interval = timedelta(seconds=feed_interval_seconds)
        self._default_timezone = default_timezone
        # X bills every user it returns: concurrent /follow of one new handle share a lookup,
        # and a lookup's answer is reused for a while.
        self._lookups: dict[str, asyncio.Future[Account | SourceError]] = {}
        self._recent: dict[str, tuple[float, Account | SourceError]] = {}

    @property
    def x_configured(self) -> bool:
        """Whether X credentials are set."""
        return self._x is not None

    def _remember(self, key: str, outcome: Account | SourceError) -> None:
        if isinstance(outcome, Account | AccountNotFound | AccountSuspended):
            if len(self._recent) >= LOOKUP_CACHE_SIZE:
                self._recent.clear()
            self._recent[key] = (time.monotonic(), outcome)

    def _recall(self, key: str) -> Account | SourceError | None:
        entry = self._recent.get(key)
        if entry is None:
            return None
        at, outcome = entry
        ttl = (
            LOOKUP_TTL_SECONDS
            if isinstance(outcome, Account)
            else MISS_TTL_SECONDS
            if isinstance(outcome, AccountNotFound)
            else SUSPENDED_TTL_SECONDS
        )
        if time.monotonic() - at > ttl:
            del self._recent[key]
            return None
        return outcome

    async def _resolve(self, handle: str, *, fresh: bool = False) -> Account | SourceError:
        """The account a handle names now (`fresh`: asking X, not what was remembered)."""
        key = handle.lower()
        remembered = None if fresh else self._recall(key)
        if isinstance(remembered, Account):
            # A handle can change hands: once the database knows the account under another
            # handle (a lookup by id told it so since), what was remembered is stale.
            async with self._sessions() as session:
                now_known_as = await sources.account_key(session, remembered.external_id)
            if now_known_as not in (None, key):
                del self._recent[key]
                remembered = None
        if remembered is not None:
            return remembered
        pending = self._lookups.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Account | SourceError] = asyncio.get_running_loop().create_future()
        self._lookups[key] = future
        try:
            assert self._x is not None
            try:
                outcome: Account | SourceError = await self._x.resolve(handle)
            except SourceError as exc:
                outcome = exc
            if isinstance(outcome, Account | AccountNotFound | AccountSuspended):
                # X answered (and bills an account it returns): counted in the month's usage.
                async with self._sessions.begin() as session:
                    await usage.record(
                        session,
                        month=month_key(self._clock.now()),
                        requests=1,
                        users=int(isinstance(outcome, Account)),
                    )
            future.set_result(outcome)
            self._remember(key, outcome)
            return outcome
        finally:
            if not future.done():
                future.cancel()
            del self._lookups[key]

    async def follow(
        self, chat_id: int, handles: list[str], thread_id: int = 0, user_id: int | None = None
    ) -> FollowReport:
        """Subscribe a chat (a forum topic of it) to X accounts, resolving each unknown handle
        once. `user_id`: whose X_LOOKUPS_PER_USER_PER_DAY the new lookups count against (None:
        an operator, or the bot itself); no lookup once the month's X budget is spent."""
        if self._x is None:
            raise NotConfigured("X_BEARER_TOKEN is not set")
        report = FollowReport()
        now = self._clock.now()
        async with self._sessions() as session:
            found = await sources.find_sources(session, X_KIND, [h.lower() for h in handles])
            used = await usage.get(session, month_key(now))
        # An account flagged as gone is looked up again: it may be back.
        known = {key: info for key, info in found.items() if not info.gone}
        to_resolve = [h for h in handles if h.lower() not in known]
        billed = [h for h in to_resolve if self._recall(h.lower()) is None]
        # A handle not seen on its account lately may have changed hands (the account renamed
        # itself and another took the name): looked up again, at the bot's cost, unless the
        # month's budget is spent (then the source stands, as it did when last seen).
        # Such a lookup counts against the sender's daily lookups like a new handle's (a
        # stranger's /follow of quiet handles, again and again, was the bot's budget to
        # spend); past them, or when X said lately that the handle is nobody's, the source
        # stands as stored. One that finds the account confirms the handle for a day.
        doubtful = [
            h
            for h in handles
            if h.lower() in known
            and _confirmed(known[h.lower()]) < now - KEY_TRUST
            and not (used.capped or outlook(used.posts, self._budget, now).exhausted)
        ]
        missed = [
            h
            for h in doubtful
            if isinstance(self._recall(h.lower()), AccountNotFound | AccountSuspended)
        ]
        doubtful = [h for h in doubtful if h not in missed]
        if billed and (used.capped or outlook(used.posts, self._budget, now).exhausted):
            report.over_budget = billed
        elif (billed or doubtful) and user_id is not None:
            day, count = self._looked_up.get(user_id, (now.date(), 0))
            count = count if day == now.date() else 0
            allowed = max(0, self._lookups_per_day - count)
            report.over_quota = billed[allowed:]
            doubtful = doubtful[: max(0, allowed - len(billed))]
            spent = min(allowed, len(billed) + len(doubtful))
            self._looked_up[user_id] = (now.date(), count + spent)
        refused = {h.lower() for h in report.over_quota + report.over_budget}
        to_resolve = [h for h in to_resolve if h.lower() not in refused]
        handles = [h for h in handles if h.lower() not in refused]
        semaphore = asyncio.Semaphore(RESOLVE_CONCURRENCY)

        async def bounded(handle: str) -> Account | SourceError:
            async with semaphore:
                return await self._resolve(handle, fresh=handle in doubtful)

        to_resolve += doubtful + missed
        resolved = dict(
            zip(to_resolve, await asyncio.gather(*(bounded(h) for h in to_resolve)), strict=True)
        )
        accounts: list[Account] = []
        confirmed = {
            outcome.handle
            for h, outcome in resolved.items()
            if h in doubtful and isinstance(outcome, Account)
        }
        for handle in handles:
            info = known.get(handle.lower())
            if info is not None and not isinstance(resolved.get(handle), Account | AccountNotFound):
                accounts.append(Account(info.external_id, info.display_name, info.display_name))
                continue
            outcome = resolved[handle]
            if isinstance(outcome, Account):
                accounts.append(outcome)
            elif isinstance(outcome, AccountNotFound):
                report.not_found.append(handle)
            elif isinstance(outcome, AccountSuspended):
                report.suspended.append(handle)
            elif isinstance(outcome, RateLimited | SourceError):
                report.unavailable.append(handle)
        now = self._clock.now()
        async with self._sessions.begin() as session:
            for account in accounts:
                source_id = await sources.ensure_source(
                    session,
                    kind=X_KIND,
                    key=account.handle.lower(),
                    external_id=account.external_id,
                    display_name=account.handle,
                    now=now,
                )
                if account.handle in confirmed:
                    await sources.record_check(session, source_ids=[source_id], now=now, renamed={})
                await sources.restart_if_unwatched(session, source_id=source_id, now=now)
                added = await sources.subscribe(
                    session, chat_id=chat_id, source_id=source_id, now=now, thread_id=thread_id
                )
                (report.followed if added else report.already).append(account.handle)
        return report

    async def follow_feeds(
        self, chat_id: int, addresses: list[FeedAddress], thread_id: int = 0
    ) -> FeedReport:
        """Subscribe a chat (a forum topic of it) to feeds. A feed nobody followed yet is
        fetched first (a web page is searched for the feed it announces): one that cannot be
        read is reported with why, and nothing of it is saved; what it shows now is remembered
        as seen, so only later entries are relayed. Each feed is saved on its own (a savepoint):
        one that fails is reported, the others are followed."""
        report = FeedReport()
        async with self._sessions() as session:
            known = await feeds.find_feeds(session, FEED_KINDS, [a.key for a in addresses])
        unknown = [a for a in addresses if a.key not in known]
        semaphore = asyncio.Semaphore(RESOLVE_CONCURRENCY)

        async def first_fetch(address: FeedAddress) -> tuple[FeedAddress, Feed] | SourceError:
            async with semaphore:
                return await self._first_fetch(address)

        fetched = dict(
            zip(
                [a.key for a in unknown],
                await asyncio.gather(*(first_fetch(a) for a in unknown)),
                strict=True,
            )
        )
        now = self._clock.now()
        async with self._sessions.begin() as session:
            for address in addresses:
                try:
                    async with session.begin_nested():
                        name = await self._follow_feed(
                            session, chat_id, thread_id, address, known, fetched, report, now
                        )
                except Exception:
                    log.exception("saving a followed feed failed")
                    report.failed.append((address.key, FeedNotSaved("not saved")))
                    continue
                if name is not None:
                    (report.followed if name[1] else report.already).append(name[0])
        return report

    async def _follow_feed(
        self,
        session: AsyncSession,
        chat_id: int,
        thread_id: int,
        address: FeedAddress,
        known: dict[str, FeedSource],
        fetched: dict[str, tuple[FeedAddress, Feed] | SourceError],
        report: FeedReport,
        now: datetime,
    ) -> tuple[str, bool] | None:
        """Subscribe to one feed: (its name, whether newly followed), or None if it failed."""
        feed = known.get(address.key)
        if feed is None:
            outcome = fetched[address.key]
            if isinstance(outcome, SourceError):
                report.failed.append((address.key, outcome))
                return None
            stored, content = outcome
            # Known under the address the page announced (or created meanwhile by another).
            feed = (await feeds.find_feeds(session, FEED_KINDS, [stored.key])).get(stored.key)
            if feed is None:  # nobody followed it yet
                label = feed_label(stored.kind, content.title, stored.key)
                source_id = await self._create_feed(session, stored, content, now)
        if feed is not None:
            source_id, label = feed.source_id, feed.label
            await feeds.restart_if_unwatched(session, source_id=source_id, now=now)
            if feed.paused:
                report.paused.append(label)
        added = await sources.subscribe(
            session, chat_id=chat_id, source_id=source_id, now=now, thread_id=thread_id
        )
        return label, added

    async def _first_fetch(self, address: FeedAddress) -> tuple[FeedAddress, Feed] | SourceError:
        """A feed nobody follows yet, read once: the address it is stored under (a web page's
        announced feed) and what it shows now; or why it cannot be followed."""
        try:
            result = await self.fetcher.fetch(address.url, discover=True)
        except SourceError as exc:
            return exc
        except Exception:
            log.exception("reading a feed to follow failed unexpectedly")
            return FeedNotSaved("unexpected error")
        if not isinstance(result, Feed):  # no validators were sent: cannot happen
            return FeedNotSaved("unexpected answer")
        if result.url == address.url:
            return address, result
        # A web page was given: the feed it announces is what is stored (and listed).
        try:
            announced = feed_address(result.url)
        except FeedAddressError:
            announced = None
        if announced is None or announced.kind not in FEED_KINDS:
            return NotAFeed("the page announces no usable feed")
        return announced, result

    async def feed_source(self, address: FeedAddress) -> int | SourceError:
        """The source id of a feed, read and created first if nobody followed it yet (a job
        board an operator names need not be followed by anyone)."""
        async with self._sessions() as session:
            known = await feeds.find_feeds(session, FEED_KINDS, [address.key])
        if address.key in known:
            return known[address.key].source_id
        outcome = await self._first_fetch(address)
        if isinstance(outcome, SourceError):
            return outcome
        stored, content = outcome
        async with self._sessions.begin() as session:
            return await self._create_feed(session, stored, content, self._clock.now())

    async def _create_feed(
        self, session: AsyncSession, stored: FeedAddress, content: Feed, now: datetime
    ) -> int:
        """A feed's source from its first fetch: what it shows now is remembered as seen."""
        return await feeds.create_feed(
            session,
            kind=stored.kind,
            key=stored.key,
            url=stored.url,
            label=feed_label(stored.kind, content.title, stored.key),
            etag=content.etag,
            last_modified=content.last_modified,
            ttl=content.ttl,
            entry_keys=[entry.key for entry in distinct(content.entries)],
            now=now,
            next_poll_at=next_poll(now, self._feed_interval, content.ttl),
        )

    @property
    def fetcher(self) -> FeedFetcher:
        """The feed fetcher (made on first use when none was given)."""
        if self._fetcher is None:
            self._fetcher = FeedFetcher()
        return self._fetcher

    async def board_source(self, word: str, *, create: bool) -> tuple[int, str] | SourceError:
        """The source an operator names in /admin board (`@handle`, an x.com link or a feed
        address): its id and name, created first (an X lookup, a first fetch) with `create`.
        AccountNotFound when nothing is known by that name."""
        handle = parse_handle(word) if word.startswith("@") or "x.com/" in word else None
        if handle is not None and "@" not in word[1:]:
            async with self._sessions() as session:
                known = await sources.find_sources(session, X_KIND, [handle.lower()])
            if handle.lower() in known:
                return known[handle.lower()].source_id, f"@{known[handle.lower()].display_name}"
            if not create:
                return AccountNotFound(handle)
            if self._x is None:
                return NotConfigured("X is not configured")
            outcome = await self._resolve(handle)
            if not isinstance(outcome, Account):
                return outcome
            async with self._sessions.begin() as session:
                source_id = await sources.ensure_source(
                    session,
                    kind=X_KIND,
                    key=outcome.handle.lower(),
                    external_id=outcome.external_id,
                    display_name=outcome.handle,
                    now=self._clock.now(),
                )
            return source_id, f"@{outcome.handle}"
        try:
            address = feed_address(
                word if "://" in word or word.startswith("@") else f"https://{word}"
            )
        except FeedAddressError as exc:
            return NotAFeed(exc.code)
        if address is None or address.kind not in FEED_KINDS:
            return NotAFeed("not a feed address")
        async with self._sessions() as session:
            known_feeds = await feeds.find_feeds(session, FEED_KINDS, [address.key])
        if address.key in known_feeds:
            feed = known_feeds[address.key]
            return feed.source_id, feed.label
        if not create:
            return AccountNotFound(address.key)
        found = await self.feed_source(address)
        if isinstance(found, SourceError):
            return found
        return found, address.key

    async def sync_boards(self, boards: Boards) -> bool:
        """Make what BOARDS_FILE lists the job boards from the file (an operator's stay);
        False when X or a feed could not answer for some of them (call again later).
        Accounts X does not know and feeds that are not feeds are logged and left out."""
        feed_ids: list[int] = []
        for address in boards.feeds:
            found = await self.feed_source(address)
            if isinstance(found, SourceError):
                if getattr(found, "transient", False) or isinstance(found, Unavailable):
                    return False
                log.warning("job board %s is left out: %s", shown(address.url), found)
                continue
            feed_ids.append(found)
        accounts: list[tuple[str, str, str]] = []
        if self._x is not None:
            # What the database knows is not looked up again (each lookup is billed): only
            # boards new to it, or gone, are.
            async with self._sessions() as session:
                listed = await sources.find_sources(
                    session, X_KIND, [h.lower() for h in boards.accounts]
                )
            known = {
                k: Account(i.external_id, i.display_name, i.display_name)
                for k, i in listed.items()
                if not i.gone
            }
            outcomes = [
                known.get(handle.lower()) or await self._resolve(handle)
                for handle in boards.accounts
            ]
            if any(
                not isinstance(o, Account | AccountNotFound | AccountSuspended) for o in outcomes
            ):
                return False
            for handle, outcome in zip(boards.accounts, outcomes, strict=True):
                if isinstance(outcome, Account):
                    accounts.append((outcome.handle.lower(), outcome.external_id, outcome.handle))
                else:
                    log.warning("job board @%s is left out: %s", handle, outcome)
        async with self._sessions.begin() as session:
            if self._x is not None:
                await sources.set_boards(
                    session, kind=X_KIND, accounts=accounts, now=self._clock.now()
                )
            await sources.set_file_boards(session, kinds=list(FEED_KINDS), source_ids=feed_ids)
        log.info(
            "job boards: %d account(s) and %d feed(s) read for category followers",
            len(accounts),
            len(feed_ids),
        )
        return True

    async def unfollow(
        self,
        chat_id: int,
        handles: list[str],
        thread_id: int = 0,
        addresses: list[FeedAddress] | None = None,
    ) -> UnfollowReport:
        """Remove some of a chat's subscriptions (those of one forum topic): X accounts by
        handle, feeds by address (their URL, `@user@instance` or Bluesky handle)."""
        report = UnfollowReport()
        async with self._sessions.begin() as session:
            followed = await sources.followed_sources(session, chat_id, thread_id)
            accounts = {s.key: s for s in followed if s.kind == X_KIND}
            ids: list[int] = []
            for handle in handles:
                info = accounts.get(handle.lower())
                if info is None:
                    report.not_followed.append(handle)
                else:
                    ids.append(info.source_id)
                    report.removed.append(info.display_name)
            for address in addresses or []:
                match = next(
                    (s for s in followed if s.kind in FEED_KINDS and address.key in (s.key, s.url)),
                    None,
                )
                if match is None:
                    report.not_followed_feeds.append(address.key)
                else:
                    ids.append(match.source_id)
                    report.removed_feeds.append(match.display_name)
            await sources.unsubscribe(session, chat_id=chat_id, source_ids=ids, thread_id=thread_id)
        return report

    async def unfollow_all(self, chat_id: int, thread_id: int | None = None) -> int:
        """Remove every subscription of a chat (of one forum topic); how many there were."""
        async with self._sessions.begin() as session:
            return await sources.unsubscribe_all(session, chat_id=chat_id, thread_id=thread_id)

    async def following_by_topic(self, chat_id: int) -> list[tuple[int, str]]:
        """(thread id, source key) of every source a chat follows, topic by topic."""
        async with self._sessions() as session:
            return await sources.followed_by_topic(session, chat_id)

    async def following(self, chat_id: int) -> list[Followed]:
        """The X accounts and feeds a chat follows."""
        async with self._sessions() as session:
            return [
                Followed(
                    kind=s.kind,
                    name=s.display_name,
                    address=s.key,
                    available=not (s.gone or s.paused),
                    url=s.url or "",
                )
                for s in await sources.followed_sources(session, chat_id)
            ]


def _confirmed(info: SourceInfo) -> datetime:
    """When a source's handle was last known to be its account's: a post read under it, a
    lookup by id, or the follow that created it."""
    return max(t for t in (info.last_post_at, info.checked_at, info.created_at) if t is not None)
