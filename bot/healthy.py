"""Healthy use: the service behind /limit, /digest, /quiet, /pause, /resume, /timezone,
/settings, /forget and the feedback buttons. Takes plain values, owns its transactions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import select

from bot.arguments import format_hhmm
from bot.clock import Clock
from bot.digests import DigestWorker
from bot.policy import day_start
from bot.weekly import WeekStats, week_stats, window_start
from storage import digests
from storage.applications import funnel_since
from storage.db import Sessions
from storage.models import Chat
from storage.retention import forget_chat
from storage.settings import (
    ChatSettings,
    load_settings,
    pushed_since,
    set_digest_mode,
    update_chat_settings,
    zone_to_show,
)
from storage.stats import chat_deliveries_since, digests_sent_since


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """A chat's daily limit and how much of it today used."""

    limit: int
    pushed_today: int
    held: int


class HealthyUse:
    """Per-chat limits, digests, quiet hours and pauses."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        clock: Clock,
        digests: DigestWorker,
        default_daily_limit: int,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._digests = digests
        self._default_limit = default_daily_limit
        self._on_change = on_change

    async def settings(self, chat_id: int) -> ChatSettings | None:
        """A chat's current settings."""
        async with self._sessions() as session:
            return (await load_settings(session, [chat_id], default_limit=self._default_limit)).get(
                chat_id
            )

    async def limit_status(self, chat_id: int) -> LimitStatus | None:
        """The limit, today's pushes (since local midnight) and the offers held."""
        chat = await self.settings(chat_id)
        if chat is None:
            return None
        async with self._sessions() as session:
            # A club's limit counts messages (its offers are merged), a person's counts offers.
            pushed = await pushed_since(
                session, chat_id, day_start(chat.policy, self._clock.now()), messages=chat_id < 0
            )
            held = await digests.held_count(session, chat_id)
        return LimitStatus(limit=chat.policy.daily_limit, pushed_today=pushed, held=held)

    async def _update(self, chat_id: int, **values: object) -> None:
        async with self._sessions.begin() as session:
            await update_chat_settings(session, chat_id, **values)
        # Settings change what is due: let the workers look again now.
        self._on_change()

    async def set_limit(self, chat_id: int, limit: int) -> None:
        """Instant pushes per local day."""
        await self._update(chat_id, daily_limit=limit)

    async def set_digest_only(
        self, chat_id: int, at: time | None, *, weekday: int | None = None
    ) -> None:
        """Digest-only mode at `at` local time, every day or on one `weekday` (0 = Monday);
        or back to instant pushes (None), with the daily time chosen before a weekly digest."""
        async with self._sessions.begin() as session:
            await set_digest_mode(
                session, chat_id, format_hhmm(at) if at is not None else None, weekday
            )
        self._on_change()

    async def zone_to_show(self, chat_id: int) -> str | None:
        """The chat's time zone if it was never shown to it (then it counts as shown)."""
        async with self._sessions.begin() as session:
            return await zone_to_show(session, chat_id)

    async def set_quiet(self, chat_id: int, window: tuple[time, time] | None) -> None:
        """Quiet hours, or none."""
        start, end = window if window else (None, None)
        await self._update(
            chat_id,
            quiet_start=format_hhmm(start) if start else None,
            quiet_end=format_hhmm(end) if end else None,
        )

    async def pause(self, chat_id: int, until: datetime | None) -> None:
        """Hold everything until `until` (or until /resume)."""
        await self._update(chat_id, paused=True, paused_until=until)

    async def resume(self, chat_id: int) -> bool:
        """End a pause; False if the chat was not paused."""
        chat = await self.settings(chat_id)
        if chat is None:
            return False
        was_paused = chat.policy.paused and (
            chat.policy.paused_until is None or chat.policy.paused_until > self._clock.now()
        )
        await self._update(chat_id, paused=False, paused_until=None)
        return was_paused

    async def set_ranking(self, chat_id: int, on: bool) -> None:
        """Whether the day's pushes go to the offers the chat's own marks rank first."""
        await self._update(chat_id, ranking=on)

    async def set_timezone(self, chat_id: int, zone: str) -> None:
        """The IANA zone local times follow."""
        await self._update(chat_id, timezone=zone, timezone_shown=True)

    async def digest_now(self, chat_id: int) -> bool:
        """/digest: every held offer, once; False when nothing is held."""
        requested = await self._digests.request(chat_id)
        if requested:
            self._on_change()
        return requested

    async def forget(self, chat_id: int) -> None:
        """Delete everything stored about a chat (its rows cascade from the chat), and the
        sources only it followed (a feed's address may carry a private token)."""
        async with self._sessions.begin() as session:
            await forget_chat(session, chat_id=chat_id, now=self._clock.now())

    async def week(self, chat_id: int) -> tuple[WeekStats, ChatSettings] | None:
        """The last 7 local days of a chat."""
        chat = await self.settings(chat_id)
        if chat is None:
            return None
        now = self._clock.now()
        start = window_start(chat.policy, now)
        async with self._sessions() as session:
            facts = await chat_deliveries_since(session, chat_id, start - timedelta(days=1))
            funnel = await funnel_since(session, chat_id=chat_id, since=start)
            sent = await digests_sent_since(session, chat_id, start)
        return week_stats(chat.policy, now, facts, funnel, sent), chat

    async def exists(self, chat_id: int) -> bool:
        """Whether the bot stores anything about this chat."""
        async with self._sessions() as session:
            return (await session.scalar(select(Chat.id).where(Chat.id == chat_id))) is not None
