"""Latency: a post created at the X stand-in until the Telegram stand-in receives its
sendMessage, for each of 10,000 subscribers of one account.

    python -m bench.latency --backend sqlite
    python -m bench.latency --backend postgresql

The real app (`bot.app.serve()`) runs in this process with POLL_INTERVAL_SECONDS=2 and the other
settings at their defaults. 10,000 private chats follow @acme_jobs (seeded with INSERT ...
SELECT); once the bot has polled the account once, one post is published at the X stand-in and
the time of each of the 10,000 sendMessage calls that carry it is taken by the Telegram
stand-in's clock.

Telegram's limits are off for this run (the stand-in never answers 429, and `bot.app`'s
rate limiter is replaced for this run by one with overall_max_rate=0, which throttles
nothing, send gate included): with them on, the 10,000th message could not leave before
10,000 / 30 = 333 s whatever the engine does, so the run would measure Telegram's limit, not
the bot.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import bot.app
from bench.support import (
    CHAT_BASE,
    backend_arguments,
    follow_all,
    open_database,
    percentile,
    run,
    run_backends,
    seed_chats,
    seed_sources,
    serving,
    until,
    verdict,
)
from bot.sandbox.telegram_api import TelegramStandIn
from bot.sandbox.x_api import XStandIn
from bot.send_gate import GatedRateLimiter, SendGate

SUBSCRIBERS = 10_000
POLL_INTERVAL = 2.0
TARGET = POLL_INTERVAL + 2.0
TELEGRAM_RATE = 30  # messages/s, Telegram's overall limit for a bot
MARKER = "offer-L1"
TEXT = (
    "We're hiring a Backend Engineer (Go, Kafka), full-time, remote in Europe, " + MARKER + ". "
    "Apply: https://acme.example/jobs/42"
)


def _unthrottled(gate: SendGate, **kwargs: Any) -> GatedRateLimiter:
    return GatedRateLimiter(
        gate, overall_max_rate=0, group_max_rate=0, max_retries=kwargs["max_retries"]
    )


async def latency(backend: str, subscribers: int) -> list[str]:
    """One post to `subscribers` chats, timed at both stand-ins."""
    async with (
        open_database(backend) as db,
        TelegramStandIn(flood_limits=False) as tg,
        XStandIn(rate_limits=False) as x,
    ):
        user_id = x.add_user("acme_jobs")
        now = datetime.now(UTC)
        async with db.sessions.begin() as session:
            await seed_chats(session, subscribers, now)
            (source_id,) = await seed_sources(
                session, ["acme_jobs"], [user_id], now, created_at=now - timedelta(minutes=5)
            )
            await follow_all(session, source_id=source_id, chats=subscribers, now=now)
        await db.analyze()
        for n in range(subscribers):
            tg.add_chat(CHAT_BASE + n, "private")
        with patch.object(bot.app, "GatedRateLimiter", _unthrottled):
            async with serving(tg, x, db.url, poll_interval_seconds=POLL_INTERVAL):
                # The account has been polled once (its cursor is set): the next post is new.
                await until(lambda: x.request_count() >= 1, 30, "first poll")
                await asyncio.sleep(0.5)
                posted = time.time()
                x.add_post("acme_jobs", TEXT)
                deadline = 60 + subscribers / 50
                await until(
                    lambda: tg.stats["sendMessage"] >= subscribers, deadline, "all deliveries"
                )
        dates = sorted(m.date for m in tg.sent if MARKER in m.text)
    waits = [date - posted for date in dates]
    p50, p95 = percentile(waits, 0.5), percentile(waits, 0.95)
    span = dates[-1] - dates[0]
    rate = (len(dates) - 1) / span if span > 0 else float("inf")
    floor = 0.95 * subscribers / TELEGRAM_RATE
    return [
        f"**{backend}** — {len(dates):,} of {subscribers:,} subscribers reached",
        f"- post created → sendMessage received: p50 {p50:.1f} s, **p95 {p95:.1f} s**, max "
        f"{waits[-1]:.1f} s (target p95 ≤ {TARGET:.0f} s: {verdict(p95 <= TARGET)})",
        f"- first subscriber reached {waits[0]:.2f} s after the post (poll wait, store, "
        f"fan-out of {subscribers:,} rows, first claim); then {rate:.0f} messages/s until the "
        "last",
        f"- with Telegram's 30 messages/s, the 95th percentile could not be under "
        f"{floor:.0f} s at {subscribers:,} subscribers, whatever the engine",
    ]


async def main() -> int:
    """Run and print the figures."""
    parser = backend_arguments(__doc__)
    parser.add_argument("--subscribers", type=int, default=SUBSCRIBERS)
    args = parser.parse_args()
    for backend in run_backends(args):
        print("\n".join(await latency(backend, args.subscribers)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(run(main()))
