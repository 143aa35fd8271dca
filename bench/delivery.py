"""Delivery rate: 2,000 private chats x 3 offers (6,000 messages) from the outbox to the Telegram
stand-in, through the real Sender and the real python-telegram-bot Bot.

    python -m bench.delivery --limits on    # Telegram's limits (issue #6, benchmark 1)
    python -m bench.delivery --limits off   # the engine's ceiling (benchmark 2)

`--limits on`: the stand-in answers 429 beyond 30 sends in any sliding second
(TelegramStandIn(flood_limits=True)); the Bot is the one `bot.app.build_application` builds, with
the application's rate limiter. `--limits off`: the stand-in never answers 429, and the Bot
gets the application's GatedRateLimiter(overall_max_rate=0, group_max_rate=0) -- the same code
path (send gate included), throttling nothing (PTB: "When set to 0, no rate limiting will be
applied").

The outbox is written the way the poller writes it (outbox.store_offers + outbox.fan_out), then
drained like `serve()` drains it: `Sender.drain()` runs, and when rows wait for a retry, runs
again after DELIVERY_INTERVAL_SECONDS (its default, 1 s).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from telegram.ext import Application, ApplicationBuilder, ContextTypes

from bench.support import (
    CHAT_BASE,
    Database,
    backend_arguments,
    follow_all,
    open_database,
    run,
    run_backends,
    seed_chats,
    seed_sources,
    verdict,
)
from bot.app import build_application, file_url_for
from bot.clock import SystemClock
from bot.config import Settings, load_settings
from bot.context import AppState
from bot.delivery import Sender
from bot.polling import read
from bot.sandbox.telegram_api import TelegramStandIn
from bot.send_gate import GatedRateLimiter, SendGate
from bot.sources.base import Post
from storage import outbox
from storage.models import Delivery, DeliveryStatus
from storage.outbox import IncomingOffer

CHATS = 2_000
OFFERS = 3
RATE_TARGET = 28.0  # messages/s with Telegram's limits on
FLOOD_TARGET = 0.01  # share of sends answered 429
CEILING_TARGET = 1_000.0  # messages/s with the limits off
TEXT = (
    "We're hiring a Data Analyst <SQL & dashboards> (CDI), hybrid in Paris, offer {n}. "
    "Python, dbt and a taste for clear charts. Apply: https://acme.example/jobs/{n}"
)


async def seed_outbox(db: Database, chats: int, offers: int) -> int:
    """`chats` chats following one account, `offers` posts of it fanned out; rows written."""
    now = datetime.now(UTC)
    async with db.sessions.begin() as session:
        await seed_chats(session, chats, now)
        (source_id,) = await seed_sources(session, ["acme_jobs"], ["2000000001"], now)
    async with db.sessions.begin() as session:
        await follow_all(session, source_id=source_id, chats=chats, now=now)
    incoming = [
        IncomingOffer(
            source_id,
            Post(
                str(10**18 + n),
                "acme_jobs",
                TEXT.format(n=n),
                f"https://x.com/acme_jobs/status/{10**18 + n}",
                now - timedelta(minutes=offers - n),
            ),
            read(TEXT.format(n=n)),
        )
        for n in range(offers)
    ]
    async with db.sessions.begin() as session:
        ids = await outbox.store_offers(session, offers=incoming, now=now)
        written = await outbox.fan_out(session, offer_ids=ids, now=now)
    await db.analyze()
    return written


def unthrottled_application(
    settings: Settings, token: str
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The application's Bot with a rate limiter that throttles nothing."""
    return (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.telegram_api_url)
        .base_file_url(file_url_for(settings.telegram_api_url))
        .context_types(ContextTypes(bot_data=AppState))
        .rate_limiter(
            GatedRateLimiter(SendGate(), overall_max_rate=0, group_max_rate=0, max_retries=2)
        )
        .build()
    )


async def unsettled(db: Database) -> int:
    """Rows not yet sent (pending, or leased by the sender)."""
    async with db.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]))
        )
    return int(count or 0)


@dataclass
class Outcome:
    """What one run measured."""

    messages: int
    wall: float  # first claim to the last row settled
    dates: list[float]  # stand-in acceptance times, sorted
    sends: int  # sendMessage calls, 429s included
    floods: int  # sendMessage calls answered 429
    other_errors: dict[str, int]


def max_in_window(dates: list[float], seconds: float = 1.0) -> int:
    """The most accepted sends in any half-open sliding window of `seconds`."""
    best = start = 0
    for end, date in enumerate(dates):
        while date - dates[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


async def deliver(backend: str, limits: bool, chats: int, offers: int) -> Outcome:
    """Seed, then drain the outbox the way serve() does; what the stand-in saw."""
    async with open_database(backend) as db, TelegramStandIn(flood_limits=limits) as tg:
        written = await seed_outbox(db, chats, offers)
        assert written == chats * offers, written
        for chat_id in range(CHAT_BASE, CHAT_BASE + chats):
            tg.add_chat(chat_id, "private")
        settings = load_settings(telegram_api_url=tg.base_url, database_url=db.url)
        application = (
            build_application(settings, tg.token)
            if limits
            else unthrottled_application(settings, tg.token)
        )
        await application.initialize()
        try:
            sender = Sender(
                sessions=db.sessions,
                clock=SystemClock(),
                bot=application.bot,
                lease_seconds=settings.delivery_lease_seconds,
                default_daily_limit=settings.default_daily_limit,
                concurrency=settings.send_concurrency,
                group_pace=timedelta(seconds=settings.group_pace_seconds),
            )
            start = time.perf_counter()
            while True:
                await sender.drain()
                if not await unsettled(db):
                    break
                await asyncio.sleep(settings.delivery_interval_seconds)
            wall = time.perf_counter() - start
        finally:
            await application.shutdown()
        dates = sorted(m.date for m in tg.sent if m.method == "sendMessage")
        floods = tg.stats["sendMessage:429"]
        others = {
            key: value
            for key, value in tg.stats.items()
            if key.startswith("sendMessage:") and key != "sendMessage:429"
        }
        return Outcome(len(dates), wall, dates, tg.stats["sendMessage"] + floods, floods, others)


def sustained(dates: list[float]) -> tuple[float, int, int]:
    """Messages/s between the 10% and the 90% accepted message (warm-up and tail left out)."""
    first, last = len(dates) // 10, len(dates) * 9 // 10
    return (last - first) / (dates[last - 1] - dates[first - 1]), first, last


def report(backend: str, limits: bool, outcome: Outcome, expected: int) -> list[str]:
    """Markdown lines for one backend."""
    rate, first, last = sustained(outcome.dates)
    overall = outcome.messages / outcome.wall
    share = outcome.floods / outcome.sends if outcome.sends else 0.0
    lines = [f"**{backend}** — {outcome.messages:,} of {expected:,} messages delivered"]
    if limits:
        lines += [
            f"- sustained rate: **{rate:.1f} messages/s** (target ≥ {RATE_TARGET:.0f}: "
            f"{verdict(rate >= RATE_TARGET)}) — accepted messages {first:,} to {last:,} "
            "over the time between them, by the stand-in's clock",
            f"- whole run: {overall:.1f} messages/s ({outcome.wall:.1f} s from the first claim "
            "to the last row settled)",
            f"- answered 429: **{outcome.floods} of {outcome.sends:,} sendMessage calls "
            f"({share:.2%})** (target < {FLOOD_TARGET:.0%}: {verdict(share < FLOOD_TARGET)})",
            f"- most messages accepted in any sliding second: {max_in_window(outcome.dates)}",
        ]
    else:
        ok = overall >= CEILING_TARGET
        lines += [
            f"- outbox to sent: **{overall:.0f} messages/s** (target ≥ {CEILING_TARGET:,.0f}: "
            f"{verdict(ok)}) — {outcome.messages:,} rows in {outcome.wall:.2f} s, from the "
            "first claim to the last row marked sent",
            f"- steady rate: {rate:.0f} messages/s (accepted messages {first:,} to {last:,})",
        ]
    if outcome.other_errors:
        lines.append(f"- other answers: {outcome.other_errors}")
    return lines


async def main() -> int:
    """Run and print the figures."""
    parser = backend_arguments(__doc__)
    parser.add_argument("--limits", choices=("on", "off"), default="on")
    parser.add_argument("--chats", type=int, default=CHATS)
    parser.add_argument("--offers", type=int, default=OFFERS)
    args = parser.parse_args()
    limits = args.limits == "on"
    for backend in run_backends(args):
        outcome = await deliver(backend, limits, args.chats, args.offers)
        print("\n".join(report(backend, limits, outcome, args.chats * args.offers)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(run(main()))
