"""Operator services: only for the Telegram users listed in ADMIN_USER_IDS."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.budget import Outlook, month_key, outlook
from bot.classify import catalogue
from bot.clock import Clock
from bot.why import export_lines
from storage import outbox, sources, stats, usage
from storage.db import Sessions
from storage.sources import BoardRow
from storage.stats import RelayStatus, relay_status
from storage.usage import Usage

CANDIDATE_WINDOW = timedelta(days=30)  # what candidates posted, for /admin board candidates


# /admin feedback export sends at most this many posts (the most marked first).
FEEDBACK_EXPORT_LIMIT = 5_000


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

    async def boards(self) -> list[BoardRow]:
        """The curated sources (job boards)."""
        async with self._sessions() as session:
            return await sources.board_list(session)

    async def board_candidates(self) -> list[BoardRow]:
        """The most-followed sources that are not curated, with their last 30 days."""
        async with self._sessions() as session:
            return await sources.board_candidates(
                session, since=self._clock.now() - CANDIDATE_WINDOW
            )

    async def set_board(self, source_id: int, on: bool) -> bool:
        """Curate a source (its offers reach category followers) or stop; False if unchanged."""
        async with self._sessions.begin() as session:
            return await sources.set_board(session, source_id=source_id, on=on)

    async def status(self) -> RelayStatus:
        """Chats, sources and outbox counts."""
        async with self._sessions() as session:
            return await relay_status(session, now=self._clock.now())

    async def feedback_export(self) -> list[str]:
        """The posts people marked "not for me", as JSONL lines (training data for the offer
        reader; no chat ids), most marked first, at most FEEDBACK_EXPORT_LIMIT."""
        async with self._sessions() as session:
            marked = await stats.marked_not_for_me(session, limit=FEEDBACK_EXPORT_LIMIT)
        return await asyncio.to_thread(export_lines, catalogue(), marked)

    async def offer_text(self, chat_id: int, message_id: int) -> str | None:
        """The text of the offer a chat's message pushed (for /why)."""
        async with self._sessions() as session:
            return await outbox.offer_of_message(session, chat_id=chat_id, message_id=message_id)
