"""Operator services: only for the Telegram users listed in ADMIN_USER_IDS."""

from __future__ import annotations

from bot.budget import Outlook, month_key, outlook
from bot.clock import Clock
from storage import usage
from storage.db import Sessions
from storage.stats import RelayStatus, relay_status
from storage.usage import Usage


class Admin:
    """What operators may ask of the relay."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        clock: Clock,
        admin_user_ids: frozenset[int],
        monthly_budget: int = 10_000,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._admins = admin_user_ids
        self._budget = monthly_budget

    def is_admin(self, user_id: int | None) -> bool:
        """Whether this Telegram user is an operator."""
        return user_id is not None and user_id in self._admins

    async def usage(self) -> tuple[Usage, Outlook]:
        """This UTC month's X reads and where they lead."""
        now = self._clock.now()
        async with self._sessions() as session:
            used = await usage.get(session, month_key(now))
        return used, outlook(used.posts, self._budget, now)

    async def status(self) -> RelayStatus:
        """Chats, sources and outbox counts."""
        async with self._sessions() as session:
            return await relay_status(session, now=self._clock.now())
