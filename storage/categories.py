"""Category subscriptions and /filter words of a chat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CategorySubscription, Chat, ChatFilter
from storage.sql import affected, insert_ignoring_conflicts


async def subscribe(session: AsyncSession, *, chat_id: int, category: str, now: datetime) -> bool:
    """Follow a category; False if the chat already did."""
    result = await session.execute(
        insert_ignoring_conflicts(session, CategorySubscription)
        .values(chat_id=chat_id, category=category, created_at=now)
        .on_conflict_do_nothing(index_elements=["chat_id", "category"])
    )
    return bool(affected(result))


async def unsubscribe(session: AsyncSession, *, chat_id: int, categories: Sequence[str]) -> int:
    """Stop following categories; how many subscriptions were removed."""
    if not categories:
        return 0
    result = await session.execute(
        delete(CategorySubscription).where(
            CategorySubscription.chat_id == chat_id,
            CategorySubscription.category.in_(list(categories)),
        )
    )
    return affected(result)


async def followed(session: AsyncSession, chat_id: int) -> list[str]:
    """The slugs of the categories a chat follows."""
    rows = await session.scalars(
        select(CategorySubscription.category)
        .where(CategorySubscription.chat_id == chat_id)
        .order_by(CategorySubscription.id)
    )
    return list(rows)


def any_active_follower() -> object:
    """SQL: some active chat follows some category (job boards are polled only then)."""
    return exists().where(
        CategorySubscription.chat_id == Chat.id,
        Chat.active.is_(True),
    )


@dataclass(frozen=True, slots=True)
class FilterWord:
    """A /filter word: as typed, as matched, and whether offers must or must not contain it."""

    word: str
    phrase: str
    include: bool


async def get_filter(session: AsyncSession, chat_id: int) -> list[FilterWord]:
    """A chat's filter words, in the order given."""
    rows = await session.scalars(
        select(ChatFilter).where(ChatFilter.chat_id == chat_id).order_by(ChatFilter.position)
    )
    return [FilterWord(row.word, row.phrase, row.include) for row in rows]


async def set_filter(session: AsyncSession, *, chat_id: int, words: Sequence[FilterWord]) -> None:
    """Replace a chat's filter (an empty list removes it)."""
    await session.execute(delete(ChatFilter).where(ChatFilter.chat_id == chat_id))
    if words:
        await session.execute(
            insert_ignoring_conflicts(session, ChatFilter)
            .values(
                [
                    {
                        "chat_id": chat_id,
                        "phrase": w.phrase,
                        "word": w.word,
                        "include": w.include,
                        "position": i,
                    }
                    for i, w in enumerate(words)
                ]
            )
            .on_conflict_do_nothing(index_elements=["chat_id", "phrase"])
        )
