"""Category subscriptions and /filter words of a chat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CategorySubscription, Chat, ChatFilter
from storage.sql import affected, insert_ignoring_conflicts


async def subscribe(
    session: AsyncSession, *, chat_id: int, category: str, now: datetime, thread_id: int = 0
) -> bool:
    """Follow a category (in a forum, in one topic); False if the chat already did."""
    result = await session.execute(
        insert_ignoring_conflicts(session, CategorySubscription)
        .values(chat_id=chat_id, category=category, thread_id=thread_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["chat_id", "category", "thread_id"])
    )
    return bool(affected(result))


async def unsubscribe(
    session: AsyncSession,
    *,
    chat_id: int,
    categories: Sequence[str],
    thread_id: int | None = None,
) -> int:
    """Stop following categories (in one forum topic when `thread_id` is given); how many
    subscriptions were removed."""
    if not categories:
        return 0
    statement = delete(CategorySubscription).where(
        CategorySubscription.chat_id == chat_id,
        CategorySubscription.category.in_(list(categories)),
    )
    if thread_id is not None:
        statement = statement.where(CategorySubscription.thread_id == thread_id)
    result = await session.execute(statement)
    return affected(result)


async def followed(session: AsyncSession, chat_id: int, thread_id: int | None = None) -> list[str]:
    """The slugs of the categories a chat follows (in one forum topic when given)."""
    statement = select(CategorySubscription.category).where(CategorySubscription.chat_id == chat_id)
    if thread_id is not None:
        statement = statement.where(CategorySubscription.thread_id == thread_id)
    rows = await session.scalars(statement.order_by(CategorySubscription.id))
    return list(dict.fromkeys(rows))


async def followed_by_topic(session: AsyncSession, chat_id: int) -> list[tuple[int, str]]:
    """(thread id, slug) of every category a chat follows, topic by topic (0 first)."""
    rows = await session.execute(
        select(CategorySubscription.thread_id, CategorySubscription.category)
        .where(CategorySubscription.chat_id == chat_id)
        .order_by(CategorySubscription.thread_id, CategorySubscription.id)
    )
    return [(int(thread), str(slug)) for thread, slug in rows]


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
