"""A group at Telegram's 20 messages a minute must not hold back anybody else's offers.

The group's minute can be used up by replies to its members' commands (anyone in a public
group can send them). Its next outbox message then waits for a slot; the private chats'
offers must go meanwhile, the ones claimed with it and the ones after it. The real sender
(bot.delivery) drives a real python-telegram-bot ExtBot, with the bot's rate limiter, against
the Telegram stand-in, on a real database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import insert, select
from telegram.ext import ExtBot

from bot.clock import SystemClock
from bot.delivery import Sender
from bot.sandbox.telegram_api import TelegramStandIn
from bot.send_gate import GatedRateLimiter, SendGate
from storage.db import Sessions
from storage.models import Delivery, DeliveryStatus
from tests.test_storage import NOW, _chat, _source_with_offers, sessions  # noqa: F401

TOKEN = "123456:TEST-group-limit-token"
GROUP = -1001234567890
PRIVATE = (101, 102, 103)


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def standin() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn(TOKEN) as server:
        server.add_chat(GROUP, "supergroup", title="Club")
        for chat_id in PRIVATE:
            server.add_chat(chat_id)
        yield server


@pytest.fixture
async def bot(standin: TelegramStandIn) -> AsyncIterator[ExtBot[Any]]:
    # A group's minute: one message an hour here, so that "used up" lasts the whole test.
    limiter = GatedRateLimiter(SendGate(), group_max_rate=1, group_time_period=3600)
    async with ExtBot(
        TOKEN,
        base_url=standin.base_url,
        base_file_url=standin.base_file_url,
        rate_limiter=limiter,
    ) as ext_bot:
        yield ext_bot


async def test_a_group_at_its_limit_does_not_hold_back_the_private_chats(
    sessions: Sessions,  # noqa: F811
    standin: TelegramStandIn,
    bot: ExtBot[Any],
) -> None:
    async with sessions.begin() as session:
        await _chat(session, GROUP, chat_type="supergroup")
        for chat_id in PRIVATE:
            await _chat(session, chat_id)
        _, offer_ids = await _source_with_offers(session, 1)
        # The group's offer is the oldest row: it is claimed first, alone (batches of one).
        for chat_id in (GROUP, *PRIVATE):
            await session.execute(
                insert(Delivery).values(
                    chat_id=chat_id,
                    offer_id=offer_ids[0],
                    kind="offer",
                    status=DeliveryStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=NOW,
                    created_at=NOW,
                )
            )
    # The group's members used its minute up (a reply to a command).
    await bot.send_message(GROUP, "a reply to a member's /help")
    deliverer = Sender(
        sessions=sessions, clock=SystemClock(), bot=bot, lease_seconds=60, batch_size=1
    )
    # The sender gets through the outbox: the group's offer waits for its slot in the
    # outbox, not in the sender. (60 s only tells a stall from a drain; a drain takes
    # well under a second.)
    sent = await asyncio.wait_for(deliverer.drain(), timeout=60)
    assert sent == len(PRIVATE)
    for chat_id in PRIVATE:
        assert len(standin.messages_for(chat_id)) == 1
    assert [m.text for m in standin.messages_for(GROUP)] == ["a reply to a member's /help"]
    async with sessions() as session:
        status = await session.scalar(select(Delivery.status).where(Delivery.chat_id == GROUP))
    assert status is DeliveryStatus.PENDING  # its turn comes when the group has room again
