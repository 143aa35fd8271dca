"""The send gate between python-telegram-bot's rate limiter and an outbox send's request,
driven through the limiter's public `process_request` with a request of our own."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from bot.send_gate import GatedRateLimiter, SendGate, SendHeld

PERIOD = 0.05  # one request every 50 ms


def _limiter() -> GatedRateLimiter:
    return GatedRateLimiter(
        SendGate(), overall_max_rate=1, overall_time_period=PERIOD, group_max_rate=0
    )


async def _send(
    limiter: GatedRateLimiter,
    left: list[float],
    *,
    answer_after: float = 0.0,
    record_after: float = 0.0,
) -> None:
    """One outbox send to chat 1, answered after `answer_after` s, whose outcome then takes
    `record_after` s to record."""

    async def request() -> bool:
        left.append(time.monotonic())
        await asyncio.sleep(answer_after)
        return True

    with limiter.gate.tracking():
        await limiter.process_request(request, (), {}, "sendMessage", {"chat_id": 1}, None)
        await asyncio.sleep(record_after)


async def test_no_send_leaves_while_an_answered_one_is_unrecorded() -> None:
    limiter = _limiter()
    left: list[float] = []
    first = asyncio.create_task(_send(limiter, left, record_after=0.4))
    await asyncio.sleep(0.01)
    others = [asyncio.create_task(_send(limiter, left)) for _ in range(3)]
    await asyncio.gather(first, *others)
    assert left[1] - left[0] >= 0.4


async def test_no_send_leaves_while_an_earlier_one_is_still_out() -> None:
    """A request Telegram is slow to answer (longer than the limiter's interval) holds the
    next send until it is answered and recorded: two requests out at once could both be
    carried out and both be sent again after a crash."""
    limiter = _limiter()
    left: list[float] = []
    first = asyncio.create_task(_send(limiter, left, answer_after=0.3, record_after=0.1))
    await asyncio.sleep(0.01)
    others = [asyncio.create_task(_send(limiter, left)) for _ in range(2)]
    await asyncio.gather(first, *others)
    assert left[1] - left[0] >= 0.4


async def test_sends_held_at_the_gate_do_not_leave_together() -> None:
    """Released after a slow record, the waiting sends are metered again, not a burst."""
    limiter = _limiter()
    left: list[float] = []
    first = asyncio.create_task(_send(limiter, left, record_after=0.4))
    await asyncio.sleep(0.01)
    others = [asyncio.create_task(_send(limiter, left)) for _ in range(4)]
    await asyncio.gather(first, *others)
    gaps = [b - a for a, b in itertools.pairwise(left[1:])]
    assert min(gaps) >= PERIOD * 0.8, gaps


async def test_a_request_outside_an_outbox_send_is_only_metered() -> None:
    limiter = _limiter()
    left: list[float] = []
    held = asyncio.create_task(_send(limiter, left, record_after=0.4))
    await asyncio.sleep(0.01)

    async def reply() -> bool:
        left.append(time.monotonic())
        return True

    started = time.monotonic()
    await limiter.process_request(reply, (), {}, "sendMessage", {"chat_id": 2}, None)
    assert time.monotonic() - started < 0.2
    await held


async def test_outbox_sends_are_held_while_telegram_does_not_answer() -> None:
    limiter = _limiter()
    limiter.gate.suspend()
    with pytest.raises(SendHeld):
        await _send(limiter, [])
    limiter.gate.resume()
    left: list[float] = []
    await _send(limiter, left)
    assert len(left) == 1


async def test_a_group_at_its_20_a_minute_does_not_hold_the_private_chats_outbox_sends() -> None:
    """The group's 21st message of the minute waits for its slot without holding the send
    turn: the private chats' outbox sends queued after it leave first."""
    group = -100123
    limiter = GatedRateLimiter(
        SendGate(), overall_max_rate=1000, overall_time_period=1, group_max_rate=20
    )
    left: list[int] = []

    def request(chat_id: int) -> Callable[[], Coroutine[Any, Any, bool]]:
        async def go() -> bool:
            left.append(chat_id)
            return True

        return go

    async def outbox_send(chat_id: int) -> None:
        with limiter.gate.tracking():
            await limiter.process_request(
                request(chat_id), (), {}, "sendMessage", {"chat_id": chat_id}, None
            )

    for _ in range(20):  # replies to the members' commands use the group's minute up
        await limiter.process_request(
            request(group), (), {}, "sendMessage", {"chat_id": group}, None
        )
    waiting = asyncio.create_task(outbox_send(group))
    await asyncio.sleep(0)  # the group's send is queued first
    await asyncio.gather(*(outbox_send(chat_id) for chat_id in (1, 2, 3)))
    assert left[20:] == [1, 2, 3]
    assert not waiting.done()  # still waiting for the group's slot, holding nobody
    waiting.cancel()


async def test_outbox_sends_are_held_while_the_fence_is_closed_and_replies_are_not() -> None:
    """On PostgreSQL the fence is this process's liveness (bot.liveness): while the others may
    find it dead and send its rows, it sends none of them itself."""
    limiter = _limiter()
    fresh = False
    limiter.gate.fence = lambda: fresh
    left: list[float] = []
    with pytest.raises(SendHeld):
        await _send(limiter, left)
    assert left == []  # the request never left

    async def reply() -> bool:
        left.append(time.monotonic())
        return True

    await limiter.process_request(reply, (), {}, "sendMessage", {"chat_id": 2}, None)
    assert len(left) == 1  # a reply to a command is no outbox row: nobody else sends it
    fresh = True
    await _send(limiter, left)
    assert len(left) == 2
