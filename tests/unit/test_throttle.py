"""COMMANDS_PER_MINUTE and the per-chat queue: what one stranger may make the bot do."""

from __future__ import annotations

import asyncio

from telegram import Chat, Message, Update

from bot.ordering import MAX_WAITING_PER_CHAT, PerChatUpdateProcessor
from bot.throttle import Throttle, Verdict


def test_past_the_limit_one_warning_a_minute_then_silence() -> None:
    now = [1000.0]
    throttle = Throttle(3, exempt=frozenset({7}), now=lambda: now[0])
    assert [throttle.check(1) for _ in range(3)] == [Verdict.SERVE] * 3
    assert throttle.check(1) is Verdict.WARN
    assert [throttle.check(1) for _ in range(50)] == [Verdict.IGNORE] * 50
    assert throttle.check(2) is Verdict.SERVE  # another person is not held back
    assert all(throttle.check(7) is Verdict.SERVE for _ in range(100))  # an operator
    now[0] += 60
    assert throttle.check(1) is Verdict.SERVE  # a minute later: served again


async def test_one_chat_s_flood_is_cut_to_a_short_queue_and_others_go_on() -> None:
    processor = PerChatUpdateProcessor()
    release = asyncio.Event()
    handled: list[int] = []

    def update(chat_id: int, n: int) -> Update:
        chat = Chat(chat_id, "private")
        message = Message(n, date=None, chat=chat, text="/help")  # type: ignore[arg-type]
        return Update(n, message=message)

    async def handle(n: int, wait: bool) -> None:
        if wait:
            await release.wait()
        handled.append(n)

    flood = [
        asyncio.create_task(processor.do_process_update(update(1, n), handle(n, True)))
        for n in range(200)
    ]
    await asyncio.sleep(0)
    other = asyncio.create_task(processor.do_process_update(update(2, 999), handle(999, False)))
    await asyncio.wait_for(other, 5)  # another chat is served while the flood waits
    assert handled == [999]
    release.set()
    await asyncio.gather(*flood)
    assert len(handled) - 1 == MAX_WAITING_PER_CHAT  # the rest of the flood was dropped
