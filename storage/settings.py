"""A chat's healthy-use settings and today's push counter."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.policy import ChatPolicy
from storage.models import Chat, Delivery, DeliveryKind, DeliveryStatus
from storage.sql import affected


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """A chat's language and healthy-use policy."""

    chat_id: int
    language: str
    policy: ChatPolicy
    last_weekly_at: datetime | None
    created_at: datetime


def _time(value: str | None) -> time | None:
    if not value:
        return None
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes))


def _settings(chat: Chat, default_limit: int) -> ChatSettings:
    return ChatSettings(
        chat_id=chat.id,
        language=chat.language,
        policy=ChatPolicy(
            timezone=chat.timezone,
            daily_limit=default_limit if chat.daily_limit is None else chat.daily_limit,
            digest_only=chat.digest_only,
            digest_time=_time(chat.digest_time) or time(19, 0),
            quiet_start=_time(chat.quiet_start),
            quiet_end=_time(chat.quiet_end),
            paused=chat.paused,
            paused_until=chat.paused_until,
            digest_weekday=chat.digest_weekday,
            ranking=chat.ranking,
        ),
        last_weekly_at=chat.last_weekly_at,
        created_at=chat.created_at,
    )


ID_CHUNK = 5_000  # chat ids per statement (PostgreSQL takes at most 32,767 parameters)


async def load_settings(
    session: AsyncSession, chat_ids: list[int], *, default_limit: int, chunk: int = ID_CHUNK
) -> dict[int, ChatSettings]:
    """Settings of the given chats (those that exist), read `chunk` chats at a time: the digest
    worker asks for every chat that got an offer this week, which may be 100,000."""
    found: dict[int, ChatSettings] = {}
    for start in range(0, len(chat_ids), chunk):
        rows = await session.scalars(
            select(Chat).where(Chat.id.in_(chat_ids[start : start + chunk]))
        )
        found.update((chat.id, _settings(chat, default_limit)) for chat in rows)
    return found


async def update_chat_settings(session: AsyncSession, chat_id: int, **values: object) -> bool:
    """Change some settings columns of a chat; False if the chat is unknown."""
    result = await session.execute(update(Chat).where(Chat.id == chat_id).values(**values))
    return bool(affected(result))


async def set_digest_mode(
    session: AsyncSession, chat_id: int, at: str | None, weekday: int | None
) -> bool:
    """Instant offers (`at` None), one digest a day at `at`, or one a week on `weekday` at `at`;
    a weekly digest keeps the daily time it replaces, and ending it brings that time back.
    False if the chat is unknown."""
    row = (
        await session.execute(
            select(Chat.digest_time, Chat.digest_weekday, Chat.daily_digest_time).where(
                Chat.id == chat_id
            )
        )
    ).one_or_none()
    if row is None:
        return False
    digest_time, current_weekday, saved = row
    values: dict[str, object]
    if at is not None and weekday is not None:  # weekly
        daily = saved if current_weekday is not None else digest_time
        values = {"digest_only": True, "digest_time": at, "digest_weekday": weekday}
        values["daily_digest_time"] = daily
    else:  # daily, or instant offers with a digest of the overflow at the daily time
        values = {"digest_only": at is not None, "digest_weekday": None, "daily_digest_time": None}
        if at is not None:
            values["digest_time"] = at
        elif current_weekday is not None and saved:
            values["digest_time"] = saved
    return await update_chat_settings(session, chat_id, **values)


async def zone_to_show(session: AsyncSession, chat_id: int) -> str | None:
    """The chat's time zone the first time it is asked for (then never again); None after."""
    result = await session.execute(
        update(Chat)
        .where(Chat.id == chat_id, Chat.timezone_shown.is_(False))
        .values(timezone_shown=True)
        .returning(Chat.timezone)
    )
    return result.scalar_one_or_none()


async def pushed_since(
    session: AsyncSession, chat_id: int, since: datetime, *, messages: bool = False
) -> int:
    """Offers pushed on their own (not in a digest) to a chat since `since`; with `messages`,
    the Telegram messages that carried them (a club's offers are merged)."""
    counted = func.count(func.distinct(Delivery.message_id)) if messages else func.count()
    count = await session.scalar(
        select(counted)
        .select_from(Delivery)
        .where(
            and_(
                Delivery.chat_id == chat_id,
                Delivery.kind == DeliveryKind.OFFER,
                Delivery.status == DeliveryStatus.SENT,
                Delivery.sent_at >= since,
            )
        )
    )
    return int(count or 0)


async def pushed_since_many(
    session: AsyncSession, since: dict[int, datetime], *, chunk: int = ID_CHUNK
) -> dict[int, int]:
    """`pushed_since` of several chats, each from its own instant (`since[chat_id]`): one
    grouped query per distinct instant (chats in one time zone share their midnight)."""
    chats_by_since: dict[datetime, list[int]] = defaultdict(list)
    for chat_id, start in since.items():
        chats_by_since[start].append(chat_id)
    counts = dict.fromkeys(since, 0)
    for start, chat_ids in chats_by_since.items():
        for first in range(0, len(chat_ids), chunk):
            rows = await session.execute(
                select(Delivery.chat_id, func.count())
                .where(
                    Delivery.chat_id.in_(chat_ids[first : first + chunk]),
                    Delivery.kind == DeliveryKind.OFFER,
                    Delivery.status == DeliveryStatus.SENT,
                    Delivery.sent_at >= start,
                )
                .group_by(Delivery.chat_id)
            )
            counts.update((int(chat_id), int(count)) for chat_id, count in rows)
    return counts
