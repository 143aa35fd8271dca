"""Following and unfollowing accounts: the service behind /follow, /unfollow and /list."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.budget import month_key
from bot.clock import Clock
from bot.sources.base import (
    Account,
    AccountNotFound,
    AccountSuspended,
    NotConfigured,
    RateLimited,
    SourceError,
)
from bot.sources.x import XSource
from storage import chats, sources, usage

log = logging.getLogger(__name__)

X_KIND = "x"
RESOLVE_CONCURRENCY = 5
LOOKUP_TTL_SECONDS = 600.0
MISS_TTL_SECONDS = 60.0
LOOKUP_CACHE_SIZE = 10_000


@dataclass(slots=True)
class FollowReport:
    """What happened to each handle of one /follow."""

    followed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)


@dataclass(slots=True)
class UnfollowReport:
    """What happened to each handle of one /unfollow."""

    removed: list[str] = field(default_factory=list)
    not_followed: list[str] = field(default_factory=list)


class Follows:
    """Chats and their subscriptions; takes plain values, owns its transactions."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        x: XSource | None,
        default_timezone: str,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._x = x
        self._default_timezone = default_timezone
        # X bills every user it returns: concurrent /follow of one new handle share a lookup,
        # and a lookup's answer is reused for a while.
        self._lookups: dict[str, asyncio.Future[Account | SourceError]] = {}
        self._recent: dict[str, tuple[float, Account | SourceError]] = {}

    @property
    def x_configured(self) -> bool:
        """Whether X credentials are set."""
        return self._x is not None

    async def touch_chat(
        self,
        *,
        chat_id: int,
        chat_type: str,
        title: str | None,
        language: str | None,
        keep_language: bool = False,
        digest_only: bool = False,
    ) -> None:
        """Record that a chat spoke to the bot (creates it, reactivates it, notes its language
        unless `keep_language`; a new chat is digest-only when `digest_only`)."""
        async with self._sessions.begin() as session:
            await chats.upsert_chat(
                session,
                chat_id=chat_id,
                chat_type=chat_type,
                title=title,
                language=language,
                timezone=self._default_timezone,
                now=self._clock.now(),
                keep_language=keep_language,
                digest_only=digest_only,
            )

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
        ttl = LOOKUP_TTL_SECONDS if isinstance(outcome, Account) else MISS_TTL_SECONDS
        if time.monotonic() - at > ttl:
            del self._recent[key]
            return None
        return outcome

    async def _resolve(self, handle: str) -> Account | SourceError:
        key = handle.lower()
        remembered = self._recall(key)
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

    async def follow(self, chat_id: int, handles: list[str], thread_id: int = 0) -> FollowReport:
        """Subscribe a chat (a forum topic of it) to X accounts, resolving each unknown handle
        once."""
        if self._x is None:
            raise NotConfigured("X_BEARER_TOKEN is not set")
        report = FollowReport()
        async with self._sessions() as session:
            found = await sources.find_sources(session, X_KIND, [h.lower() for h in handles])
        # An account flagged as gone is looked up again: it may be back.
        known = {key: info for key, info in found.items() if not info.gone}
        to_resolve = [h for h in handles if h.lower() not in known]
        semaphore = asyncio.Semaphore(RESOLVE_CONCURRENCY)

        async def bounded(handle: str) -> Account | SourceError:
            async with semaphore:
                return await self._resolve(handle)

        resolved = dict(
            zip(to_resolve, await asyncio.gather(*(bounded(h) for h in to_resolve)), strict=True)
        )
        accounts: list[Account] = []
        for handle in handles:
            info = known.get(handle.lower())
            if info is not None:
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
                await sources.restart_if_unwatched(session, source_id=source_id, now=now)
                added = await sources.subscribe(
                    session, chat_id=chat_id, source_id=source_id, now=now, thread_id=thread_id
                )
                (report.followed if added else report.already).append(account.handle)
        return report

    async def sync_boards(self, handles: list[str]) -> bool:
        """Make these accounts the job boards; False when X could not answer for some of them
        (call again later). Accounts X does not know are logged and left out."""
        if self._x is None:
            return True
        outcomes = [await self._resolve(handle) for handle in handles]
        if any(not isinstance(o, Account | AccountNotFound | AccountSuspended) for o in outcomes):
            return False
        accounts: list[tuple[str, str, str]] = []
        for handle, outcome in zip(handles, outcomes, strict=True):
            if isinstance(outcome, Account):
                accounts.append((outcome.handle.lower(), outcome.external_id, outcome.handle))
            else:
                log.warning("job board @%s is left out: %s", handle, outcome)
        async with self._sessions.begin() as session:
            await sources.set_boards(session, kind=X_KIND, accounts=accounts, now=self._clock.now())
        log.info("job boards: %d account(s) polled for category followers", len(accounts))
        return True

    async def unfollow(
        self, chat_id: int, handles: list[str], thread_id: int = 0
    ) -> UnfollowReport:
        """Remove some of a chat's subscriptions (those of one forum topic)."""
        report = UnfollowReport()
        async with self._sessions.begin() as session:
            followed = {
                s.key: s for s in await sources.followed_sources(session, chat_id, thread_id)
            }
            ids: list[int] = []
            for handle in handles:
                info = followed.get(handle.lower())
                if info is None:
                    report.not_followed.append(handle)
                else:
                    ids.append(info.source_id)
                    report.removed.append(info.display_name)
            await sources.unsubscribe(session, chat_id=chat_id, source_ids=ids, thread_id=thread_id)
        return report

    async def unfollow_all(self, chat_id: int, thread_id: int | None = None) -> int:
        """Remove every subscription of a chat (of one forum topic); how many there were."""
        async with self._sessions.begin() as session:
            return await sources.unsubscribe_all(session, chat_id=chat_id, thread_id=thread_id)

    async def following_by_topic(self, chat_id: int) -> list[tuple[int, str]]:
        """(thread id, handle) of every account a chat follows, topic by topic."""
        async with self._sessions() as session:
            return await sources.followed_by_topic(session, chat_id)

    async def following(self, chat_id: int) -> list[tuple[str, bool]]:
        """The accounts a chat follows, as (handle, still available) pairs."""
        async with self._sessions() as session:
            return [
                (s.display_name, not s.gone)
                for s in await sources.followed_sources(session, chat_id)
            ]
