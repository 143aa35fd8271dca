"""Chats: who talks to the bot, in which language, and whether we may still write to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Chat, Delivery, Subscription


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
) -> None:
    """Record a chat we heard from, reactivating it; keeps its language unless one is given."""
    chat = await session.get(Chat, chat_id)
    if chat is None:
        session.add(
            Chat(
                id=chat_id,
                type=chat_type,
                title=title,
                language=language or "en",
                timezone=timezone,
                active=True,
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        return
    chat.type = chat_type
    chat.title = title
    if language:
        chat.language = language
    chat.active = True
    chat.updated_at = now


async def get_chat(session: AsyncSession, chat_id: int) -> ChatInfo | None:
    """A chat's summary, or None if the bot never heard from it."""
    chat = await session.get(Chat, chat_id)
    if chat is None:
        return None
    return ChatInfo(chat_id=chat.id, type=chat.type, language=chat.language, active=chat.active)


async def deactivate_chat(session: AsyncSession, chat_id: int, now: datetime) -> None:
    """Stop writing to a chat (it blocked or removed the bot); its data stays until it returns."""
    await session.execute(
        update(Chat).where(Chat.id == chat_id).values(active=False, updated_at=now)
    )


async def migrate_chat(session: AsyncSession, old_id: int, new_id: int, now: datetime) -> None:
    """Move a group's subscriptions and pending outbox to its new supergroup id."""
    old = await session.get(Chat, old_id)
    if old is None:
        return
    if await session.get(Chat, new_id) is None:
        session.add(
            Chat(
                id=new_id,
                type="supergroup",
                title=old.title,
                language=old.language,
                timezone=old.timezone,
                active=True,
                created_at=old.created_at,
                updated_at=now,
            )
        )
        await session.flush()
    taken_sources = select(Subscription.source_id).where(Subscription.chat_id == new_id)
    await session.execute(
        update(Subscription)
        .where(Subscription.chat_id == old_id, Subscription.source_id.not_in(taken_sources))
        .values(chat_id=new_id)
    )
    taken_offers = select(Delivery.offer_id).where(
        Delivery.chat_id == new_id, Delivery.offer_id.is_not(None)
    )
    await session.execute(
        update(Delivery)
        .where(
            Delivery.chat_id == old_id,
            (Delivery.offer_id.is_(None)) | Delivery.offer_id.not_in(taken_offers),
        )
        .values(chat_id=new_id)
    )
    await session.execute(delete(Chat).where(Chat.id == old_id))
