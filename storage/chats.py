"""Chats: who talks to the bot, in which language, and whether we may still write to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import (
    CategorySubscription,
    Chat,
    ChatFilter,
    ChatTopic,
    Delivery,
    DeliveryStatus,
    Digest,
    Subscription,
)
from storage.sql import affected, insert_ignoring_conflicts


@dataclass(frozen=True, slots=True)
class ChatInfo:
    """What the services need to know about a chat."""

    chat_id: int
    type: str
    language: str
    active: bool


async def upsert_chat(
    session: AsyncSession,
    *,
    chat_id: int,
    chat_type: str,
    title: str | None,
    language: str | None,
    timezone: str,
    now: datetime,
    keep_language: bool = False,
    digest_only: bool = False,
) -> None:
    """Record a chat we heard from, reactivating it; keeps its language unless one is given
    (or `keep_language`: a group keeps the language it was set up in, whoever writes in it).
    A new chat starts in digest-only mode when `digest_only` (the operator's group default).

    One INSERT ... ON CONFLICT DO UPDATE that always writes `active`: a read-then-write could
    miss a deactivation committed in between and leave a returning chat inactive.
    """
    statement = insert_ignoring_conflicts(session, Chat).values(
        id=chat_id,
        type=chat_type,
        title=title,
        language=language or "en",
        timezone=timezone,
        active=True,
        created_at=now,
        updated_at=now,
        digest_only=digest_only,
    )
    changes: dict[str, object] = {
        "type": chat_type,
        "title": title,
        "active": True,
        "updated_at": statement.excluded.updated_at,
    }
    if language and not keep_language:
        changes["language"] = language
    await session.execute(statement.on_conflict_do_update(index_elements=["id"], set_=changes))


async def chat_is_current(
    session: AsyncSession,
    *,
    chat_id: int,
    chat_type: str,
    title: str | None,
    language: str | None,
) -> bool:
    """Whether `upsert_chat` would change nothing worth a write: the chat is stored, active,
    of that type and title (and `language`, unless None), and nothing is being sent to it.

    A send in flight may yet find the chat gone (blocked, removed) and deactivate it unless
    the chat was heard from since (`deactivate_chat`'s `unless_heard_since`): while one is,
    hearing from the chat is written. One statement, so one snapshot on PostgreSQL too.
    """
    in_flight = (
        select(Delivery.id)
        .where(
            Delivery.chat_id == chat_id,
            Delivery.status.in_([DeliveryStatus.SENDING, DeliveryStatus.DIGESTING]),
        )
        .exists()
    )
    row = (
        await session.execute(
            select(Chat.type, Chat.title, Chat.language, Chat.active, in_flight).where(
                Chat.id == chat_id
            )
        )
    ).one_or_none()
    if row is None:
        return False
    stored_type, stored_title, stored_language, active, sending = row
    return (
        bool(active)
        and not sending
        and stored_type == chat_type
        and stored_title == title
        and (language is None or stored_language == language)
    )


async def get_chat(session: AsyncSession, chat_id: int) -> ChatInfo | None:
    """A chat's summary, or None if the bot never heard from it."""
    chat = await session.get(Chat, chat_id)
    if chat is None:
        return None
    return ChatInfo(chat_id=chat.id, type=chat.type, language=chat.language, active=chat.active)


async def deactivate_chat(
    session: AsyncSession,
    chat_id: int,
    now: datetime,
    *,
    unless_heard_since: datetime | None = None,
) -> bool:
    """Stop writing to a chat (it blocked or removed the bot); its data stays until it returns.

    With `unless_heard_since`, a chat that wrote to the bot after that instant stays active: the
    refusal is older than its comeback.
    """
    statement = update(Chat).where(Chat.id == chat_id)
    if unless_heard_since is not None:
        statement = statement.where(Chat.updated_at <= unless_heard_since)
    result = await session.execute(statement.values(active=False, updated_at=now))
    return bool(affected(result))


async def existing_ids(session: AsyncSession, chat_ids: list[int]) -> list[int]:
    """Those of `chat_ids` the bot has a chat with."""
    if not chat_ids:
        return []
    return list(await session.scalars(select(Chat.id).where(Chat.id.in_(chat_ids))))


async def remember_topic(session: AsyncSession, *, chat_id: int, thread_id: int, name: str) -> None:
    """Note a forum topic's name (as last seen)."""
    statement = insert_ignoring_conflicts(session, ChatTopic).values(
        chat_id=chat_id, thread_id=thread_id, name=name[:128]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["chat_id", "thread_id"], set_={"name": statement.excluded.name}
        )
    )


async def topic_names(session: AsyncSession, chat_id: int) -> dict[int, str]:
    """The names of a forum's topics the bot has seen."""
    rows = await session.execute(
        select(ChatTopic.thread_id, ChatTopic.name).where(ChatTopic.chat_id == chat_id)
    )
    return {int(thread): str(name) for thread, name in rows}


async def migrate_chat(session: AsyncSession, old_id: int, new_id: int, now: datetime) -> None:
    """Move a group's subscriptions and pending outbox to its new supergroup id."""
    old = await session.get(Chat, old_id)
    if old is None:
        return
    copied = {
        column: getattr(old, column)
        for column in (
            "title",
            "language",
            "timezone",
            "daily_limit",
            "digest_only",
            "digest_time",
            "quiet_start",
            "quiet_end",
            "paused",
            "paused_until",
            "last_weekly_at",
            "digest_weekday",
        )
    }
    await session.execute(
        insert_ignoring_conflicts(session, Chat)
        .values(
            id=new_id,
            type="supergroup",
            active=True,
            created_at=old.created_at,
            updated_at=now,
            **copied,
        )
        .on_conflict_do_update(index_elements=["id"], set_={**copied, "active": True})
    )
    await session.execute(update(Digest).where(Digest.chat_id == old_id).values(chat_id=new_id))
    # What the new id already has (in the same topic) stays; the rest moves.
    taken = aliased(Subscription)
    await session.execute(
        update(Subscription)
        .where(
            Subscription.chat_id == old_id,
            ~exists().where(
                taken.chat_id == new_id,
                taken.source_id == Subscription.source_id,
                taken.thread_id == Subscription.thread_id,
            ),
        )
        .values(chat_id=new_id)
    )
    taken_category = aliased(CategorySubscription)
    await session.execute(
        update(CategorySubscription)
        .where(
            CategorySubscription.chat_id == old_id,
            ~exists().where(
                taken_category.chat_id == new_id,
                taken_category.category == CategorySubscription.category,
                taken_category.thread_id == CategorySubscription.thread_id,
            ),
        )
        .values(chat_id=new_id)
    )
    if await session.scalar(select(ChatFilter.phrase).where(ChatFilter.chat_id == new_id).limit(1)):
        await session.execute(delete(ChatFilter).where(ChatFilter.chat_id == old_id))
    else:
        await session.execute(
            update(ChatFilter).where(ChatFilter.chat_id == old_id).values(chat_id=new_id)
        )
    taken_delivery = aliased(Delivery)
    await session.execute(
        update(Delivery)
        .where(
            Delivery.chat_id == old_id,
            (Delivery.offer_id.is_(None))
            | ~exists().where(
                taken_delivery.chat_id == new_id,
                taken_delivery.offer_id == Delivery.offer_id,
                taken_delivery.thread_id == Delivery.thread_id,
            ),
        )
        .values(chat_id=new_id)
    )
    await session.execute(delete(Chat).where(Chat.id == old_id))
