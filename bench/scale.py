"""The 100,000-chat run: fan-out of one offer to 100,000 subscribers, then `/follow` and `/list`
answered by the real bot with 100,000 chats and 10,000 sources in the database, and the peak
memory of this process meanwhile.

    python -m bench.scale --backend sqlite
    python -m bench.scale --backend postgresql
    python -m bench.scale --explain     # PostgreSQL: where the fan-out statement's time goes

The database is seeded with set-based statements (INSERT ... SELECT over generate_series on
PostgreSQL, over a recursive CTE on SQLite): 100,000 private chats, 10,000 X sources, 3
subscriptions per chat spread over the sources, and one account (@bigboard) followed by every
chat: 400,000 subscriptions.

Fan-out (issue #6, benchmark 3): one new post of @bigboard stored with outbox.store_offers,
linked to stories with outbox.link_stories, and written to the outbox with outbox.fan_out, in
one transaction as the poller does; each step timed, then the commit. The 100,000 rows are
then deleted (not timed), so the sender stays idle while commands are measured.

Commands (benchmark 5): `bot.app.serve()` runs in this process against the Telegram and X
stand-ins; chats among the 100,000 send `/follow @acctNNNNN` (a source already in the
database, so no X lookup), `/follow @freshNNNN` (a new account: one X lookup), and `/list`
(which then shows 4 or 5 accounts), one command at a time, 30 ms apart (so the bot's own
30 messages/s limiter never holds a reply). Latency: from the update being queued at the
stand-in to the stand-in receiving the reply. Handler time: the command's callback, from its
call to its return (which includes sending the reply), measured by wrapping the registered
callbacks (bot.app.register is wrapped for this run).

Memory (benchmark 6): VmHWM, the peak resident set, of this one process -- which holds the
bot, both stand-ins and the benchmark itself -- at the end of the run.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

from sqlalchemy import delete, event, func, select
from telegram import Update
from telegram.ext import Application, CommandHandler

import bot.app
import handlers
from bench.support import (
    CHAT_BASE,
    Database,
    backend_arguments,
    follow_all,
    open_database,
    peak_rss_mb,
    percentile,
    run,
    run_backends,
    seed_chats,
    seed_sources,
    seed_subscriptions,
    serving,
    verdict,
)
from bot.classify import catalogue
from bot.polling import read
from bot.sandbox.telegram_api import TelegramStandIn
from bot.sandbox.x_api import XStandIn
from bot.sources.base import Post
from bot.sources.x import query_fits
from storage import outbox, sources
from storage.models import Delivery, Subscription
from storage.outbox import IncomingOffer

CHATS = 100_000
SOURCES = 10_000
PER_CHAT = 3
FANOUT_TARGET = 2.0  # seconds
COMMAND_TARGET = 0.050  # seconds, p95
MEMORY_TARGET = 200.0  # MB
TEXT = (
    "Nous recrutons un(e) Développeur Python H/F en CDI à Lyon, télétravail partiel. "
    "Django, PostgreSQL, 45-55 k€. Postulez : https://bigboard.example/jobs/1"
)

handler_times: dict[str, list[float]] = defaultdict(list)


def _timed(name: str, callback: Callable[[Update, Any], Awaitable[Any]]) -> Any:
    async def timed(update: Update, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return await callback(update, context)
        finally:
            handler_times[name].append(time.perf_counter() - start)

    return timed


def _register_timed(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    handlers.register(application)
    for group in application.handlers.values():
        for handler in group:
            if isinstance(handler, CommandHandler) and handler.commands & {"follow", "list"}:
                name = min(handler.commands)
                handler.callback = _timed(name, handler.callback)


async def seed(db: Database) -> tuple[int, float]:
    """The 100,000-chat database; the id of @bigboard and the seconds it took."""
    start = time.perf_counter()
    now = datetime.now(UTC)
    later = now + timedelta(days=1)  # nothing is due for polling during the run
    async with db.sessions.begin() as session:
        await seed_chats(session, CHATS, now)
        handles = [f"acct{n:05d}" for n in range(SOURCES)]
        await seed_sources(
            session, handles, [str(3_000_000_000 + n) for n in range(SOURCES)], later
        )
        await seed_subscriptions(session, chats=CHATS, per_chat=PER_CHAT, sources=SOURCES, now=now)
        (big,) = await seed_sources(session, ["bigboard"], ["2999999999"], later)
        await follow_all(session, source_id=big, chats=CHATS, now=now)
        # Their poll groups too, first due tomorrow, as the sources are.
        await sources.place_in_groups(session, kind="x", now=later, fits=query_fits)
    await db.analyze()
    return big, time.perf_counter() - start


async def fan_out(db: Database, big: int, rounds: int = 3) -> list[str]:
    """Benchmark 3: one offer to 100,000 subscribers, `rounds` times (a new post each time, the
    rows deleted in between); the median round is judged."""
    runs: list[tuple[float, float, float, float, float, int]] = []
    for round_ in range(rounds):
        now = datetime.now(UTC)
        external_id = str(1_999_999_999_999_999_000 + round_)
        text = f"{TEXT} #{round_}"
        post = Post(
            external_id, "bigboard", text, f"https://x.com/bigboard/status/{external_id}", now
        )
        incoming = [IncomingOffer(big, post, read(text))]
        async with db.sessions() as session:
            begin = time.perf_counter()
            async with session.begin():
                ids = await outbox.store_offers(session, offers=incoming, now=now)
                stored = time.perf_counter()
                await outbox.link_stories(
                    session,
                    offer_ids=ids,
                    since=now - timedelta(days=7),
                    near_identical=catalogue().near_identical,
                )
                linked = time.perf_counter()
                written = await outbox.fan_out(session, offer_ids=ids, now=now)
                fanned = time.perf_counter()
            committed = time.perf_counter()
        async with db.sessions.begin() as session:
            await session.execute(delete(Delivery))
        runs.append(
            (
                stored - begin,
                linked - stored,
                fanned - linked,
                committed - fanned,
                committed - begin,
                written,
            )
        )
    ordered = sorted(runs, key=lambda r: r[2] + r[3])
    store, link, fan, commit, total, written = ordered[len(ordered) // 2]
    each = ", ".join(f"{r[2] + r[3]:.2f} s" for r in runs)
    return [
        f"- outbox.fan_out of one offer to {written:,} chats, with its commit: "
        f"**{fan + commit:.2f} s** (median of {rounds}: {each}) (target ≤ {FANOUT_TARGET:.0f} s: "
        f"{verdict(fan + commit <= FANOUT_TARGET)})",
        f"- store + stories + fan-out + commit, one transaction as the poller writes a cycle "
        f"(median round): {total:.2f} s (store_offers {store:.3f} s, link_stories {link:.3f} s, "
        f"fan_out {fan:.2f} s, commit {commit:.2f} s)",
    ]


async def commands(db: Database, follows: int, lists: int, fresh: int) -> list[str]:
    """Benchmark 5: /follow and /list latency with the real bot serving."""
    rng = random.Random(6)
    async with TelegramStandIn() as tg, XStandIn(rate_limits=False) as x:
        for n in range(fresh):
            x.add_user(f"fresh{n:04d}")
        with patch.object(bot.app, "register", _register_timed):
            async with serving(tg, x, db.url):
                chats = rng.sample(range(CHATS), follows + lists + fresh + 10)
                plan: list[tuple[str, int, str]] = []
                for index, n in enumerate(chats[:follows]):
                    plan.append(
                        ("follow (known)", n, f"/follow @acct{(n * 7 + 5_000) % SOURCES:05d}")
                    )
                    if index < lists:
                        plan.append(("list", chats[follows + index], "/list"))
                for index, n in enumerate(chats[follows + lists : follows + lists + fresh]):
                    plan.insert(
                        index * 7, ("follow (new account)", n, f"/follow @fresh{index:04d}")
                    )
                warmup = [("warm-up", n, "/list") for n in chats[-10:]]
                latencies: dict[str, list[float]] = defaultdict(list)
                for what, n, text in warmup + plan:
                    chat_id = CHAT_BASE + n
                    before = len(tg.messages_for(chat_id))
                    queued = time.time()
                    tg.send_message(chat_id, text, user_id=chat_id)
                    replies = await tg.wait_for_messages(chat_id, before + 1, timeout=30)
                    latencies[what].append(replies[before].date - queued)
                    await asyncio.sleep(0.03)
                for name in list(handler_times):
                    handler_times[name] = handler_times[name][(10 if name == "list" else 0) :]
        followed = await _count(db, Subscription)
    lines: list[str] = []
    for what in ("follow (known)", "follow (new account)", "list"):
        sample = latencies[what]
        p95 = percentile(sample, 0.95)
        lines.append(
            f"- `/{what.split()[0]}`{' ' + what.split(' ', 1)[1] if ' ' in what else ''}: "
            f"p50 {percentile(sample, 0.5) * 1000:.1f} ms, **p95 {p95 * 1000:.1f} ms**, "
            f"max {max(sample) * 1000:.1f} ms over {len(sample)} commands (target p95 ≤ "
            f"{COMMAND_TARGET * 1000:.0f} ms: {verdict(p95 <= COMMAND_TARGET)})"
        )
    for name in ("follow", "list"):
        sample = handler_times[name]
        lines.append(
            f"- handler only, `/{name}` callback: p50 {percentile(sample, 0.5) * 1000:.1f} ms, "
            f"p95 {percentile(sample, 0.95) * 1000:.1f} ms ({len(sample)} calls)"
        )
    lines.append(f"- subscriptions afterwards: {followed:,}")
    return lines


async def _count(db: Database, model: Any) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def explain(db: Database, big: int) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement outbox.fan_out sends for one offer to every
    chat, on PostgreSQL, rolled back: where its time goes."""
    now = datetime.now(UTC)
    post = Post("1999999999999999990", "bigboard", TEXT, "https://x.com/bigboard/status/2", now)
    async with db.sessions.begin() as session:
        ids = await outbox.store_offers(session, offers=[IncomingOffer(big, post)], now=now)
    captured: list[tuple[str, Any]] = []

    def grab(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if statement.startswith("INSERT INTO deliveries"):
            captured.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", grab)
    async with db.sessions() as session:
        await session.begin()
        await outbox.fan_out(session, offer_ids=ids, now=now)
        await session.rollback()
    event.remove(db.engine.sync_engine, "before_cursor_execute", grab)
    statement, parameters = captured[0]
    async with db.engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        transaction = raw.transaction()
        await transaction.start()
        plan = [
            row[0]
            for row in await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
        ]
        await transaction.rollback()
    keep = ("Insert on", "Subquery Scan", "Sort Method", "Trigger for", "Execution Time")
    return [line for line in plan if any(word in line for word in keep)]


async def scale(backend: str, follows: int, lists: int, fresh: int) -> list[str]:
    """The whole 100,000-chat run on one backend."""
    baseline = peak_rss_mb()
    async with open_database(backend) as db:
        big, seeding = await seed(db)
        subscriptions = await _count(db, Subscription)
        lines = [
            f"**{backend}** — seeded {CHATS:,} chats, {SOURCES + 1:,} sources and "
            f"{subscriptions:,} subscriptions in {seeding:.1f} s",
            *await fan_out(db, big),
            *await commands(db, follows, lists, fresh),
        ]
    peak = peak_rss_mb()
    lines.append(
        f"- peak memory: **{peak:.0f} MB** (target ≤ {MEMORY_TARGET:.0f} MB: "
        f"{verdict(peak <= MEMORY_TARGET)}) — VmHWM of this one process (bot, stand-ins, "
        f"seeding and benchmark); {baseline:.0f} MB after imports, before seeding"
    )
    return lines


async def main() -> int:
    """Run and print the figures."""
    parser = backend_arguments(__doc__)
    parser.add_argument("--follows", type=int, default=100)
    parser.add_argument("--lists", type=int, default=100)
    parser.add_argument("--fresh", type=int, default=30)
    parser.add_argument(
        "--explain", action="store_true", help="PostgreSQL: the fan-out statement's plan only"
    )
    args = parser.parse_args()
    if args.explain:
        async with open_database("postgresql") as db:
            big, _ = await seed(db)
            print("\n".join(await explain(db, big)))
        return 0
    for backend in run_backends(args):
        print("\n".join(await scale(backend, args.follows, args.lists, args.fresh)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(run(main()))
