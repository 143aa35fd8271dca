"""Following job categories and filtering offers: the service behind /categories and /filter."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.arguments import FilterTerm
from bot.classify import Catalogue
from bot.clock import Clock
from storage import categories
from storage.categories import FilterWord
from storage.db import Sessions


@dataclass(slots=True)
class CategoryReport:
    """What happened to each category of one /follow or /unfollow."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # already followed / was not followed


class Categories:
    """A chat's categories and filter; takes plain values, owns its transactions."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        clock: Clock,
        catalogue: Catalogue,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.catalogue = catalogue

    async def follow(self, chat_id: int, slugs: list[str], thread_id: int = 0) -> CategoryReport:
        """Follow categories (slugs of the catalogue), in a forum in one topic."""
        report = CategoryReport()
        now = self._clock.now()
        async with self._sessions.begin() as session:
            for slug in slugs:
                added = await categories.subscribe(
                    session, chat_id=chat_id, category=slug, now=now, thread_id=thread_id
                )
                (report.changed if added else report.unchanged).append(slug)
        return report

    async def unfollow(self, chat_id: int, slugs: list[str], thread_id: int = 0) -> CategoryReport:
        """Stop following categories (in one forum topic)."""
        report = CategoryReport()
        async with self._sessions.begin() as session:
            followed = set(await categories.followed(session, chat_id, thread_id))
            await categories.unsubscribe(
                session, chat_id=chat_id, categories=slugs, thread_id=thread_id
            )
        for slug in slugs:
            (report.changed if slug in followed else report.unchanged).append(slug)
        return report

    async def toggle(self, chat_id: int, slug: str, thread_id: int = 0) -> bool:
        """Follow a category if the chat (topic) did not, else stop; True when now followed."""
        async with self._sessions.begin() as session:
            if await categories.unsubscribe(
                session, chat_id=chat_id, categories=[slug], thread_id=thread_id
            ):
                return False
            await categories.subscribe(
                session, chat_id=chat_id, category=slug, now=self._clock.now(), thread_id=thread_id
            )
            return True

    async def unfollow_all(self, chat_id: int, thread_id: int | None = None) -> int:
        """Stop following every category (in one forum topic); how many there were."""
        async with self._sessions.begin() as session:
            followed = await categories.followed(session, chat_id, thread_id)
            await categories.unsubscribe(
                session, chat_id=chat_id, categories=followed, thread_id=thread_id
            )
            return len(followed)

    async def followed_by_topic(self, chat_id: int) -> list[tuple[int, str]]:
        """(thread id, slug) of every category a chat follows, topic by topic."""
        async with self._sessions() as session:
            return await categories.followed_by_topic(session, chat_id)

    async def followed(self, chat_id: int, thread_id: int | None = None) -> list[str]:
        """The slugs a chat (topic) follows, in catalogue order (unknown old slugs last)."""
        async with self._sessions() as session:
            slugs = set(await categories.followed(session, chat_id, thread_id))
        order = list(self.catalogue.categories)
        return sorted(slugs, key=lambda s: order.index(s) if s in order else len(order))

    async def get_filter(self, chat_id: int) -> list[FilterTerm]:
        """A chat's /filter words."""
        async with self._sessions() as session:
            words = await categories.get_filter(session, chat_id)
        return [FilterTerm(w.word, w.phrase, w.include) for w in words]

    async def set_filter(self, chat_id: int, terms: list[FilterTerm]) -> None:
        """Replace a chat's filter; an empty list turns it off."""
        async with self._sessions.begin() as session:
            await categories.set_filter(
                session,
                chat_id=chat_id,
                words=[FilterWord(t.word, t.phrase, t.include) for t in terms],
            )
