"""Operator services: only for the Telegram users listed in ADMIN_USER_IDS."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.stats import RelayStatus, relay_status


class Admin:
    """What operators may ask of the relay."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        admin_user_ids: frozenset[int],
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._admins = admin_user_ids

    def is_admin(self, user_id: int | None) -> bool:
        """Whether this Telegram user is an operator."""
        return user_id is not None and user_id in self._admins

    async def status(self) -> RelayStatus:
        """Chats, sources and outbox counts."""
        async with self._sessions() as session:
            return await relay_status(session, now=self._clock.now())
