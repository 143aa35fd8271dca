"""Job clubs: groups, supergroups and channels the bot serves, and their forum topics.

The service behind membership changes (`my_chat_member`), group upgrades and the topic names
/list shows; whether a person may change a club's watch is asked of Telegram by the handlers
(`handlers.access`), never remembered.
"""

from __future__ import annotations

import logging

from bot.clock import Clock
from storage import chats
from storage.db import Sessions

log = logging.getLogger(__name__)


class Clubs:
    """Shared chats: joining, leaving, upgrading, topics. Takes plain values, owns its
    transactions."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        clock: Clock,
        default_timezone: str,
        group_digest: bool,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._default_timezone = default_timezone
        self.group_digest = group_digest

    async def joined(
        self, *, chat_id: int, chat_type: str, title: str | None, language: str | None
    ) -> None:
        """The bot was added to (or given back its rights in) a chat: its watch resumes, and a
        new club starts in the operator's DEFAULT_GROUP_MODE."""
        await self._upsert(
            chat_id=chat_id,
            chat_type=chat_type,
            title=title,
            language=language,
            keep_language=True,
            digest_only=self.group_digest and chat_type != "private",
        )
        log.info("added to %s %s; its watch is active", chat_type, chat_id)

    async def heard_from(
        self,
        *,
        chat_id: int,
        chat_type: str,
        title: str | None,
        language: str | None,
        keep_language: bool = False,
        digest_only: bool = False,
    ) -> bool:
        """A chat wrote to the bot: record it (created, reactivated, its title and, unless
        `keep_language`, its language noted; a new one digest-only when `digest_only`) only
        when something changed, so a busy group's conversation costs reads, not writes (on
        SQLite every write waits for the one writer). True when it wrote."""
        noted = None if keep_language else language
        async with self._sessions() as session:
            if await chats.chat_is_current(
                session, chat_id=chat_id, chat_type=chat_type, title=title, language=noted
            ):
                return False
        await self._upsert(
            chat_id=chat_id,
            chat_type=chat_type,
            title=title,
            language=language,
            keep_language=keep_language,
            digest_only=digest_only,
        )
        return True

    async def _upsert(
        self,
        *,
        chat_id: int,
        chat_type: str,
        title: str | None,
        language: str | None,
        keep_language: bool,
        digest_only: bool,
    ) -> None:
        """Write a chat's row (created or reactivated; a new one in DEFAULT_TIMEZONE)."""
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

    async def left(self, chat_id: int) -> bool:
        """The bot was removed from a chat: nothing more is sent there (its watch is kept for
        when it comes back). False when the chat was unknown or already inactive."""
        async with self._sessions.begin() as session:
            gone = await chats.deactivate_chat(session, chat_id, self._clock.now())
        if gone:
            log.info("removed from chat %s; it is now inactive", chat_id)
        return gone

    async def migrated(self, old_id: int, new_id: int) -> None:
        """A group became a supergroup: everything moves to its new id."""
        async with self._sessions.begin() as session:
            await chats.migrate_chat(session, old_id, new_id, self._clock.now())
        log.info("group %s is now supergroup %s; its watch moved", old_id, new_id)

    async def remember_topic(self, chat_id: int, thread_id: int, name: str) -> None:
        """Note a forum topic's name, for /list."""
        async with self._sessions.begin() as session:
            await chats.remember_topic(session, chat_id=chat_id, thread_id=thread_id, name=name)

    async def topics(self, chat_id: int) -> dict[int, str]:
        """The names of a forum's topics, by thread id."""
        async with self._sessions() as session:
            return await chats.topic_names(session, chat_id)
