"""Issue #16: how long a kill -9 stops delivery, and how fast three processes send as one bot.
Real `python -m bot run` processes (tests/e2e/harness.BotProcess) against the stand-ins.

    python -m bench.takeover --backend sqlite       # recovery after kill -9 and a restart
    python -m bench.takeover --backend postgresql   # recovery by the other worker; 3 workers

Recovery: 10 private chats follow one X account (seeded in the database), which posts 30
offers (300 messages, Telegram's limits on at the stand-in); kill -9 once 60 have arrived,
with the production leases (DELIVERY_LEASE_SECONDS=60, a poll's five minutes). SQLite: the
bot is restarted at once; the figure is the time from the restart to the first and to the
last pending message. PostgreSQL: two processes send, the one holding the X poll is killed
and not restarted; the figure is the time from the kill to the other's take-over and to the
last message. Three workers (PostgreSQL): 1,000 chats x 3 offers (3,000 messages) sent by
three processes, SEND_RATE_PER_SECOND=29.5 for the whole bot; the stand-in's record gives the
most sends in any one-second window and its 429 answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bench.support import (
    CHAT_BASE,
    backend_arguments,
    follow_all,
    fresh_database,
    run,
    run_backends,
    seed_chats,
    seed_sources,
    verdict,
)
from bot.sandbox.telegram_api import TelegramStandIn
from bot.sandbox.x_api import XStandIn
from storage.db import create_engine, create_session_factory
from storage.models import PollGroup, Worker
from tests.e2e.harness import BotProcess, MutedUpdates, bot_environment

RECOVERY_TARGET = {"sqlite": 20.0, "postgresql": 15.0}  # s to the first resumed message
RATE_LIMIT = 30  # Telegram's sends in any second


def busiest_second(dates: list[float]) -> int:
    """The most dates in any half-open one-second window."""
    dates = sorted(dates)
    best = start = 0
    for end, date in enumerate(dates):
        while date - dates[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def seed(url: str, tg: TelegramStandIn, x: XStandIn, chats: int) -> None:
    """`chats` private chats following @acme_jobs, known to the Telegram stand-in."""
    external = x.add_user("acme_jobs")
    now = datetime.now(UTC)
    engine = create_engine(url)
    try:
        async with create_session_factory(engine).begin() as session:
            await seed_chats(session, chats, now)
            (source_id,) = await seed_sources(session, ["acme_jobs"], [external], now)
            await follow_all(session, source_id=source_id, chats=chats, now=now)
    finally:
        await engine.dispose()
    for n in range(chats):
        tg.add_chat(CHAT_BASE + n)


def offers_sent(tg: TelegramStandIn, marker: str) -> list[float]:
    """The stand-in's time (time.time()) of every accepted message carrying `marker`."""
    return [m.date for m in tg.sent if marker in m.text]


async def until(predicate: object, timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:g} s")
        await asyncio.sleep(0.02)


async def poll_owner(url: str) -> int | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.scalar(
                select(Worker.pid)
                .join(PollGroup, PollGroup.lease_owner == Worker.id)
                .where(PollGroup.lease_until.is_not(None))
            )
    finally:
        await engine.dispose()


async def recovery(backend: str, workdir: Path) -> list[str]:
    """Kill -9 during a 300-message burst: the time to the first and last pending message."""
    chats, offers, marker = 10, 30, "Offer of the recovery run"
    async with (
        fresh_database(backend) as url,
        TelegramStandIn(token="7654321:AAH-bench-token") as tg,
        XStandIn(bearer_token="bench-bearer") as x,
    ):
        await seed(url, tg, x, chats)
        env = bot_environment(tg, x, url) | {
            "DELIVERY_LEASE_SECONDS": "60",
            "DEFAULT_DAILY_LIMIT": "50",
        }
        first = BotProcess(env=dict(env), workdir=workdir / "first", tg=tg)
        (workdir / "first").mkdir()
        await first.start()
        await until(lambda: x.requests, 30, "first poll")
        total = chats * offers
        for n in range(offers):
            x.add_post("acme_jobs", f"{marker} {n}")
        await until(lambda: len(offers_sent(tg, marker)) >= 60, 60, "60 messages")
        async with contextlib.AsyncExitStack() as stack:
            if backend == "sqlite":
                await first.kill()
                at_kill = len(offers_sent(tg, marker))
                started = time.time()
                await first.start()
                survivor = first
            else:
                relay = await stack.enter_async_context(MutedUpdates(tg))
                (workdir / "second").mkdir()
                second = BotProcess(
                    env=env | {"TELEGRAM_API_URL": relay.base_url},
                    workdir=workdir / "second",
                    tg=tg,
                )
                await second.start()
                x.set_delay(60)  # the next poll hangs: its group stays leased
                await until(lambda: x.in_flight > 0, 15, "a poll waiting for X")
                pid = None
                while pid is None:
                    pid = await poll_owner(url)
                    await asyncio.sleep(0.02)
                victim, survivor = (
                    (first, second)
                    if first.process and first.process.pid == pid
                    else (second, first)
                )
                await victim.kill()
                at_kill = len(offers_sent(tg, marker))
                started = time.time()
                x.set_delay(0)
            if backend == "postgresql":
                # The other worker's own rows go on meanwhile: the figure is its take-over.
                await until(lambda: "took over" in survivor.log, 60, "the take-over")
                resumed = time.time() - started
            await until(lambda: len(set(offers_sent(tg, marker))) >= total, 180, "every message")
            if backend == "sqlite":
                resumed = min(d for d in offers_sent(tg, marker) if d > started) - started
            last = max(offers_sent(tg, marker)) - started
            await survivor.stop()
            if survivor is not first:
                await first.stop()
        flood = tg.stats["sendMessage:429"]
        copies = len(offers_sent(tg, marker)) - total
    target = RECOVERY_TARGET[backend]
    what = "restart" if backend == "sqlite" else "kill"
    label = (
        "first message after it" if backend == "sqlite" else "the dead worker's leases taken over"
    )
    return [
        f"kill -9 after {at_kill} of {total} messages (10 chats, leases of 60 s and 5 min), "
        + ("then a restart:" if backend == "sqlite" else "the other worker carries on:"),
        f"- {label}: **{resumed:.1f} s** after the {what} "
        f"(target {target:g} s: {verdict(resumed <= target)})",
        f"- last pending message delivered: {last:.1f} s after the {what}",
        f"- extra copies: {copies} (at most one per kill allowed); 429 answers: {flood}",
    ]


async def three_workers(workdir: Path) -> list[str]:
    """3,000 messages sent by three processes sharing the bot's rate."""
    chats, offers, marker = 1_000, 3, "Offer sent by three workers"
    async with (
        fresh_database("postgresql") as url,
        TelegramStandIn(token="7654321:AAH-bench-token") as tg,
        XStandIn(bearer_token="bench-bearer") as x,
    ):
        await seed(url, tg, x, chats)
        env = bot_environment(tg, x, url) | {"SEND_RATE_PER_SECOND": "29.5"}
        bots = []
        async with MutedUpdates(tg) as relay:
            for n in range(3):
                (workdir / f"w{n}").mkdir()
                extra = {} if n == 0 else {"TELEGRAM_API_URL": relay.base_url}
                bots.append(BotProcess(env=env | extra, workdir=workdir / f"w{n}", tg=tg))
                await bots[-1].start()
            await until(lambda: x.requests, 30, "first poll")
            started = time.time()
            for n in range(offers):
                x.add_post("acme_jobs", f"{marker} {n}")
            await until(lambda: len(offers_sent(tg, marker)) >= chats * offers, 600, "3,000")
            dates = offers_sent(tg, marker)
            for bot in bots:
                await bot.stop()
        flood = tg.stats["sendMessage:429"]
    busiest = busiest_second(dates)
    seconds = max(dates) - started
    return [
        "Three workers (one receiving updates), 1,000 chats x 3 offers = 3,000 messages, "
        "SEND_RATE_PER_SECOND=29.5 for the whole bot, the stand-in's limits on:",
        f"- most sends in any 1 s window: **{busiest}** "
        f"(target {RATE_LIMIT}: {verdict(busiest <= RATE_LIMIT)})",
        f"- answered 429: **{flood}** (target 0: {verdict(flood == 0)})",
        f"- 3,000 messages in {seconds:.1f} s ({len(dates) / seconds:.1f}/s)",
    ]


async def main() -> int:
    args = backend_arguments(__doc__).parse_args()
    for backend in run_backends(args):
        with tempfile.TemporaryDirectory(prefix="jobrelay-takeover-") as directory:
            lines = [f"**{backend}**", ""]
            lines += await recovery(backend, Path(directory))
            if backend == "postgresql":
                lines += ["", *await three_workers(Path(directory))]
            print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(main()))
