"""The sandbox's terminal: what the "phone" shows and what the user can do from it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.sandbox.telegram_api import SentMessage, TelegramStandIn
from bot.sandbox.terminal import Terminal
from bot.sandbox.x_api import XStandIn

USER = 1001


@pytest.fixture
async def tg() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn() as standin:
        yield standin


def terminal_for(tg: TelegramStandIn, zone: str = "Europe/Paris") -> Terminal:
    return Terminal(
        tg,
        user_id=USER,
        language="en",
        stop=asyncio.Event(),
        x=XStandIn(),
        zone=ZoneInfo(zone),
    )


def bot_message(text: str, *, date: datetime, method: str = "sendMessage") -> SentMessage:
    return SentMessage(
        chat_id=USER,
        message_id=7,
        text=text,
        parse_mode=None,
        reply_markup=None,
        message_thread_id=None,
        method=method,
        date=date.timestamp(),
        disable_web_page_preview=False,
    )


# ------------------------------------------------------------------ one clock


async def test_message_times_are_shown_on_the_bots_clock_with_its_zone(
    tg: TelegramStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = terminal_for(tg, "Europe/Paris")
    at = datetime(2026, 12, 3, 6, 56, 12, tzinfo=UTC)
    tg.sent.append(bot_message("Paused until Thu 3 Dec 08:56", date=at))
    terminal.show_new()
    out = capsys.readouterr().out
    assert "07:56:12 CET jobrelay:" in out
    assert "06:56:12" not in out  # not the machine's (UTC) clock


async def test_the_banner_names_the_zone_times_are_shown_in(
    tg: TelegramStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal_for(tg, "America/Montreal").banner(
        accounts=["acme_jobs"], database="sqlite:///sandbox.db", poll_seconds=10, post_every=30
    )
    out = capsys.readouterr().out
    assert "Times are shown in America/Montreal, the bot's time zone (DEFAULT_TIMEZONE)" in out
