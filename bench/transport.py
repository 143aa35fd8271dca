"""Where a delivered message's time goes, piece by piece: what bounds the engine's ceiling.

    python -m bench.transport

1. Sending alone: `bot.send_message` with an offer's HTML, through python-telegram-bot's own
   HTTP transport (httpx) and an AIORateLimiter that throttles nothing, against the Telegram
   stand-in in this process (limits off), 2,000 messages at 1, 8 and 32 at a time (the sender
   runs SEND_CONCURRENCY=32 by default). No database.
2. Settling alone: `outbox.mark_sent` in its own committed transaction, as the sender settles
   each message, 32 at a time, on SQLite and on PostgreSQL. No HTTP.
3. Rendering alone: `bot.delivery.render` of one outbox row.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import select

from bench.delivery import seed_outbox, unthrottled_application
from bench.support import BACKENDS, CHAT_BASE, open_database, run
from bot.config import load_settings
from bot.delivery import render
from bot.polling import read
from bot.sandbox.telegram_api import TelegramStandIn
from storage import outbox
from storage.models import Delivery, DeliveryKind
from storage.outbox import ClaimedDelivery

MESSAGES = 2_000
TEXT = (
    "We're hiring a Data Analyst <SQL & dashboards> (CDI), hybrid in Paris. "
    "Python, dbt and a taste for clear charts. Apply: https://acme.example/jobs/7"
)


def sample_row() -> ClaimedDelivery:
    """An outbox row as the sender holds it."""
    reading = read(TEXT)
    return ClaimedDelivery(
        delivery_id=1,
        chat_id=CHAT_BASE,
        language="en",
        kind=DeliveryKind.OFFER,
        attempts=1,
        offer_author="acme_jobs",
        offer_text=TEXT,
        offer_url="https://x.com/acme_jobs/status/1",
        payload=None,
        offer_tags={**reading.tags, "categories": list(reading.categories)},
    )


async def sending(html: str) -> list[str]:
    """Bare sends per second at several concurrencies."""
    lines = []
    async with TelegramStandIn(flood_limits=False) as tg:
        for n in range(1_000):
            tg.add_chat(CHAT_BASE + n, "private")
        settings = load_settings(telegram_api_url=tg.base_url)
        application = unthrottled_application(settings, tg.token)
        await application.initialize()
        try:
            for concurrency in (1, 8, 32):
                gate = asyncio.Semaphore(concurrency)

                async def one(n: int, gate: asyncio.Semaphore = gate) -> None:
                    async with gate:
                        await application.bot.send_message(
                            CHAT_BASE + n % 1_000, html, parse_mode="HTML"
                        )

                start = time.perf_counter()
                await asyncio.gather(*(one(n) for n in range(MESSAGES)))
                rate = MESSAGES / (time.perf_counter() - start)
                lines.append(
                    f"- sending alone, {concurrency} at a time: {rate:.0f} messages/s "
                    f"({1000 / rate:.2f} ms each)"
                )
        finally:
            await application.shutdown()
    return lines


async def settling(backend: str) -> str:
    """mark_sent transactions per second, 32 at a time."""
    async with open_database(backend) as db:
        await seed_outbox(db, MESSAGES // 2, 2)
        async with db.sessions() as session:
            ids = list(await session.scalars(select(Delivery.id)))
        gate = asyncio.Semaphore(32)

        async def one(delivery_id: int) -> None:
            async with gate, db.sessions.begin() as session:
                await outbox.mark_sent(
                    session, delivery_id=delivery_id, message_id=1, now=datetime.now(UTC)
                )

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in ids))
        rate = len(ids) / (time.perf_counter() - start)
    return (
        f"- settling alone on {backend} (one committed transaction per message, 32 at a "
        f"time): {rate:.0f} messages/s ({1000 / rate:.2f} ms each)"
    )


async def main() -> int:
    """Run and print the figures."""
    row = sample_row()
    html = render(row)
    start = time.perf_counter()
    for _ in range(MESSAGES):
        render(row)
    each = (time.perf_counter() - start) / MESSAGES
    lines = await sending(html)
    for backend in BACKENDS:
        lines.append(await settling(backend))
    lines.append(f"- rendering one offer: {each * 1e6:.0f} µs")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(run(main()))
