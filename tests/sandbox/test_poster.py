"""The sandbox's poster: what it publishes on the stand-ins, and how it says so."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.sandbox.feeds_api import FeedStandIn
from bot.sandbox.run import keep_posting, poster_line
from bot.sandbox.seed import NEWS, OFFERS, seed, seed_feeds
from bot.sandbox.telegram_api import TelegramStandIn
from bot.sandbox.terminal import Terminal
from bot.sandbox.x_api import XStandIn


class CountingTerminal(Terminal):
    """Keeps the lines it is given and stops the sandbox after `limit` of them."""

    def __init__(self, stop: asyncio.Event, limit: int) -> None:
        super().__init__(
            TelegramStandIn(),
            user_id=1001,
            language="en",
            stop=stop,
            x=XStandIn(),
            zone=ZoneInfo("UTC"),
            files_dir=Path("unused"),
        )
        self.lines: list[str] = []
        self._limit = limit

    def note(self, text: str) -> None:
        self.lines.append(text)
        if len(self.lines) >= self._limit:
            self._stop.set()


def test_news_is_announced_as_posted_not_as_an_offer() -> None:
    news = NEWS["acme_jobs"][1]  # a webinar
    line = poster_line("acme_jobs", f"{news} (ref. 123)")
    assert line.startswith("(X) @acme_jobs just posted: “Join us at our webinar on Thursday")
    assert "offer" not in line
    assert line.endswith("…”") and len(line) < 100  # a preview, not the whole post


def test_a_feed_entry_is_announced_as_published() -> None:
    line = poster_line("jobs.bsky.social", "Hiring: Data engineer, apply now (ref. 5)", feed=True)
    assert (
        line
        == "(feed) jobs.bsky.social just published: “Hiring: Data engineer, apply now (ref. 5)”"
    )


async def test_the_poster_never_calls_what_it_posts_an_offer() -> None:
    stop = asyncio.Event()
    terminal = CountingTerminal(stop, limit=60)
    x, feeds = XStandIn(), FeedStandIn()
    seed(x)
    seed_feeds(feeds)
    await asyncio.wait_for(
        keep_posting(x, 0.001, terminal, stop, feeds, rng=random.Random(18)), timeout=30
    )
    lines = terminal.lines
    assert len(lines) == 60
    assert not [line for line in lines if "new offer" in line]
    x_lines = [line for line in lines if line.startswith("(X) @")]
    feed_lines = [line for line in lines if line.startswith("(feed) ")]
    assert len(x_lines) + len(feed_lines) == 60 and feed_lines
    assert all(" just posted: “" in line for line in x_lines)
    assert all(" just published: “" in line for line in feed_lines)
    news_starts = [text[:30] for texts in NEWS.values() for text in texts]
    offer_starts = [text[:30] for texts in OFFERS.values() for text in texts]
    assert any(start in line for line in x_lines for start in news_starts)  # news was posted
    assert any(start in line for line in x_lines for start in offer_starts)
