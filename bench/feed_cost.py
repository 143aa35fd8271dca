"""Feed polling cost: what one poll cycle over 1,000 RSS/Atom feeds costs when nothing changed
(every feed answers 304) and when 100 of them got an entry; that edits are not relayed again.

    python -m bench.feed_cost --backend sqlite
    python -m bench.feed_cost --backend postgresql

The feed poller (`bot.feed_polling.FeedPoller`) runs in this process, driven by hand as in
tests/test_feed_polling.py: a clock that moves only when the benchmark moves it
(bot.clock.FrozenClock), and `tick()` called until nothing is due. One tick takes batches of
DUE_BATCH feeds while they come full (for up to TICK_BUDGET seconds), so a cycle over 1,000
due feeds is usually one tick that fetches, then one that finds nothing due: a cycle's time is
all of them. The feeds are served over loopback HTTP by
the feed stand-in (bot.sandbox.feeds_api.FeedStandIn, 50 virtual hosts reached through the
fetcher's host map), in this process too: its time and memory are counted with the bot's.

Seeding (not timed): 1,000 feeds (rss2 and atom alternately) of 20 entries each on 50 hosts;
2,000 chats. Chats 0-19 each follow 50 feeds through `Follows.follow_feeds` (an OPML
/import), which fetches each feed once and remembers its entries as seen, as a first follow
does; then 1-4 more chats are subscribed to most feeds (1-5 followers each, 3,000
subscriptions; every chat follows at least one feed). The clock then moves one poll interval
(300 s) before each cycle, so every feed is due.

A. Nothing changed: every feed answers 304; nothing is parsed or written.
B. 100 feeds got one new entry each: those are parsed and relayed, one outbox row per follower.
C. 50 entries edited (25 of them entries relayed in B): their feeds answer 200 and are parsed;
   nothing is relayed again.

Requests and parses are the fetcher's own counters (FeedFetcher.requests, .parsed); outbox rows
are what `tick()` returned (checked against the deliveries table); SQL statements and commits
are counted on the engine (time inside statements: from before to after cursor execute; an
executemany is one statement; PostgreSQL's pool pre-ping is not counted).
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, insert, select

from bench.support import (
    CHAT_BASE,
    Database,
    backend_arguments,
    open_database,
    peak_rss_mb,
    run,
    run_backends,
    seed_chats,
    verdict,
)
from bot.clock import FrozenClock
from bot.feed_polling import DUE_BATCH, FeedPoller
from bot.follows import Follows
from bot.sandbox.feeds_api import FeedStandIn
from bot.sources.feeds import FeedFetcher, feed_address
from storage.models import Delivery, FeedEntry, Offer, Source, Subscription

FEEDS = 1_000
HOSTS = 50
ENTRIES = 20
CHATS = 2_000
IMPORTERS = 20  # chats that each follow FEEDS / IMPORTERS feeds through Follows
CHANGED = 100
EDITED = 50
INTERVAL = 300.0
ROLES = (
    "Python developer",
    "Data engineer",
    "QA engineer",
    "DevOps engineer",
    "Frontend developer",
    "Product designer",
    "Java developer",
    "Site reliability engineer",
    "Data analyst",
    "Mobile developer",
)
CITIES = ("Lyon", "Nantes", "Lille", "Bordeaux", "Toulouse", "Rennes", "Paris", "Grenoble")
CONTRACTS = ("CDI", "CDD 12 mois", "freelance", "alternance")


def host(feed: int) -> str:
    return f"careers{feed % HOSTS:02d}.example"


def path(feed: int) -> str:
    return f"/jobs/{feed:04d}.xml"


def offer_html(feed: int, n: int, tag: str) -> str:
    """A job offer, distinct per feed and entry (its reference number differs)."""
    role = ROLES[(feed + n) % len(ROLES)]
    city = CITIES[(feed * 3 + n) % len(CITIES)]
    contract = CONTRACTS[(feed + 2 * n) % len(CONTRACTS)]
    return (
        f"<p>Board {feed} is hiring a <b>{role}</b> ({contract}) in {city}, "
        f"ref {tag}{feed:04d}{n:02d}.</p><p>Apply: https://{host(feed)}/offers/{feed}-{n}</p>"
    )


def add_offer(server: FeedStandIn, feed: int, n: int, published: datetime, tag: str) -> str:
    link = f"https://{host(feed)}/offers/{feed}-{n}"
    role = ROLES[(feed + n) % len(ROLES)]
    return server.add_entry(
        host(feed),
        path(feed),
        title=f"{role} — board {feed}",
        html=offer_html(feed, n, tag),
        link=link,
        guid=link,
        published=published,
    )


@dataclass
class Queries:
    """SQL statements and commits on one engine, and the time spent inside statements."""

    statements: int = 0
    commits: int = 0
    seconds: float = 0.0
    _started: list[float] = field(default_factory=list)

    def attach(self, db: Database) -> None:
        engine = db.engine.sync_engine

        @event.listens_for(engine, "before_cursor_execute")
        def before(*_: Any) -> None:
            self._started.append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def after(*_: Any) -> None:
            self.statements += 1
            if self._started:
                self.seconds += time.perf_counter() - self._started.pop()

        @event.listens_for(engine, "commit")
        def commit(*_: Any) -> None:
            self.commits += 1

    def snapshot(self) -> tuple[int, int, float]:
        return self.statements, self.commits, self.seconds


@dataclass
class Cycle:
    """One poll cycle: ticks until nothing is due."""

    name: str
    ticks: int = 0  # ticks that fetched something
    seconds: float = 0.0
    tick_seconds: list[float] = field(default_factory=list)
    requests: int = 0
    parsed: int = 0
    rows: int = 0
    deliveries: int = 0  # deliveries table, after minus before
    offers: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    statements: int = 0
    commits: int = 0
    sql_seconds: float = 0.0


async def count(db: Database, model: Any) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def cycle(
    name: str,
    poller: FeedPoller,
    fetcher: FeedFetcher,
    server: FeedStandIn,
    db: Database,
    queries: Queries,
) -> Cycle:
    """`tick()` until a tick sends no request (nothing was due), timed as a whole."""
    seen = Cycle(name)
    requests, parsed, served = fetcher.requests, fetcher.parsed, len(server.requests)
    deliveries, offers = await count(db, Delivery), await count(db, Offer)
    statements, commits, sql = queries.snapshot()
    began = time.perf_counter()
    while True:
        before = fetcher.requests
        tick_began = time.perf_counter()
        seen.rows += await poller.tick()
        seen.tick_seconds.append(time.perf_counter() - tick_began)
        if fetcher.requests == before:
            break
        seen.ticks += 1
    seen.seconds = time.perf_counter() - began
    after_statements, after_commits, after_sql = queries.snapshot()
    seen.statements = after_statements - statements
    seen.commits = after_commits - commits
    seen.sql_seconds = after_sql - sql
    seen.requests = fetcher.requests - requests
    seen.parsed = fetcher.parsed - parsed
    seen.statuses = Counter(request.status for request in server.requests[served:])
    seen.deliveries = await count(db, Delivery) - deliveries
    seen.offers = await count(db, Offer) - offers
    return seen


def followers() -> list[int]:
    """How many chats follow each feed (1-5, fixed by a seed)."""
    rng = random.Random(6)
    return [rng.randint(1, 5) for _ in range(FEEDS)]


async def seed(
    db: Database, server: FeedStandIn, fetcher: FeedFetcher, clock: FrozenClock
) -> list[int]:
    """The feeds, chats and subscriptions (see the module's docstring); each feed's follower
    count."""
    now = clock.now()
    for feed in range(FEEDS):
        server.add_feed(
            host(feed),
            path(feed),
            fmt="rss2" if feed % 2 == 0 else "atom",
            title=f"Board {feed} careers",
        )
        for n in range(ENTRIES):
            add_offer(server, feed, n, now - timedelta(hours=2 * (ENTRIES - n)), "s")
    async with db.sessions.begin() as session:
        await seed_chats(session, CHATS, now)
    follows = Follows(
        sessions=db.sessions,
        clock=clock,
        x=None,
        default_timezone="Europe/Paris",
        fetcher=fetcher,
        feed_interval_seconds=INTERVAL,
    )
    per_importer = FEEDS // IMPORTERS
    for importer in range(IMPORTERS):
        addresses = []
        for feed in range(importer * per_importer, (importer + 1) * per_importer):
            address = feed_address(f"https://{host(feed)}{path(feed)}")
            assert address is not None
            addresses.append(address)
        report = await follows.follow_feeds(CHAT_BASE + importer, addresses)
        if len(report.followed) != len(addresses):
            raise RuntimeError(f"follows failed: {report.failed[:3]}")
    counts = followers()
    async with db.sessions() as session:
        ids = {
            str(key): int(source_id)
            for key, source_id in await session.execute(
                select(Source.key, Source.id).where(Source.kind == "feed")
            )
        }
    rows = []
    chat = IMPORTERS
    for feed in range(FEEDS):
        source_id = ids[f"https://{host(feed)}{path(feed)}"]
        for _ in range(counts[feed] - 1):
            rows.append(
                {
                    "chat_id": CHAT_BASE + chat,
                    "source_id": source_id,
                    "thread_id": 0,
                    "created_at": now,
                }
            )
            chat = chat + 1 if chat + 1 < CHATS else IMPORTERS
    async with db.sessions.begin() as session:
        await session.execute(insert(Subscription), rows)
    await db.analyze()
    return counts


async def feed_cost(backend: str) -> list[str]:
    """The three cycles on one backend."""
    start = datetime.now(UTC).replace(microsecond=0)
    clock = FrozenClock(start)
    async with open_database(backend) as db, FeedStandIn() as server:
        fetcher = FeedFetcher(
            allow_private=True,
            host_map={host(h): server.local_url("") for h in range(HOSTS)},
        )
        try:
            seeding = time.perf_counter()
            counts = await seed(db, server, fetcher, clock)
            seeding = time.perf_counter() - seeding
            seeded_requests, seeded_parsed = fetcher.requests, fetcher.parsed
            remembered = await count(db, FeedEntry)
            subscriptions = await count(db, Subscription)
            following = await _following(db)
            queries = Queries()
            queries.attach(db)
            poller = FeedPoller(
                sessions=db.sessions, clock=clock, fetcher=fetcher, interval_seconds=INTERVAL
            )
            rng = random.Random(7)
            cycles: list[Cycle] = []

            clock.advance(timedelta(seconds=INTERVAL + 1))
            cycles.append(await cycle("A: nothing changed", poller, fetcher, server, db, queries))

            changed = sorted(rng.sample(range(FEEDS), CHANGED))
            for feed in changed:
                add_offer(server, feed, ENTRIES, clock.now(), "n")
            clock.advance(timedelta(seconds=INTERVAL + 1))
            cycles.append(
                await cycle(
                    f"B: {CHANGED} feeds with a new entry", poller, fetcher, server, db, queries
                )
            )

            again = rng.sample(changed, EDITED // 2)
            others = rng.sample(sorted(set(range(FEEDS)) - set(again)), EDITED - len(again))
            for feed in again:
                server.edit_entry(
                    host(feed), path(feed), ENTRIES, html=offer_html(feed, ENTRIES, "e")
                )
            for feed in others:
                server.edit_entry(host(feed), path(feed), 0, html=offer_html(feed, 0, "e"))
            clock.advance(timedelta(seconds=INTERVAL + 1))
            cycles.append(
                await cycle(
                    f"C: {EDITED} entries edited, nothing new", poller, fetcher, server, db, queries
                )
            )
        finally:
            await fetcher.aclose()
        peak = peak_rss_mb()
    expected = sum(counts[feed] for feed in changed)
    return report(
        backend,
        cycles,
        expected=expected,
        seeding=seeding,
        seeded=(seeded_requests, seeded_parsed, remembered, subscriptions, following),
        peak=peak,
    )


async def _following(db: Database) -> int:
    async with db.sessions() as session:
        return int(
            await session.scalar(select(func.count(func.distinct(Subscription.chat_id)))) or 0
        )


def report(
    backend: str,
    cycles: list[Cycle],
    *,
    expected: int,
    seeding: float,
    seeded: tuple[int, int, int, int, int],
    peak: float,
) -> list[str]:
    requests, parsed, remembered, subscriptions, following = seeded
    a, b, c = cycles
    lines = [
        f"**{backend}** — {FEEDS:,} feeds (rss2/atom) of {ENTRIES} entries on {HOSTS} hosts, "
        f"{following:,} chats following them ({subscriptions:,} subscriptions, 1–5 per feed)",
        "",
        f"Seeding (not timed in the figures): {seeding:.1f} s — {requests:,} first fetches, "
        f"{parsed:,} parsed, {remembered:,} entries remembered as seen.",
        "",
        "| cycle | ticks | time | per tick | HTTP requests | 304 / 200 | parsed | outbox rows "
        "| SQL statements | commits | time in SQL |",
        "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for seen in cycles:
        ticks = " / ".join(f"{t:.2f}" for t in seen.tick_seconds)
        lines.append(
            f"| {seen.name} | {seen.ticks} + 1 | {seen.seconds:.2f} s | {ticks} s "
            f"| {seen.requests:,} | {seen.statuses[304]:,} / {seen.statuses[200]:,} "
            f"| {seen.parsed:,} | {seen.rows:,} | {seen.statements:,} | {seen.commits:,} "
            f"| {seen.sql_seconds:.2f} s |"
        )
    rows_ok = b.rows == expected and b.deliveries == expected and b.offers == CHANGED
    lines += [
        "",
        f"(ticks: those that fetched, in batches of {DUE_BATCH} feeds, + the one that found "
        "nothing due; a cycle's time is all of them, the stand-in's serving included. SQL "
        "statements: cursor executions, an executemany counted once.)",
        "",
        f"- A, nothing changed: **{a.seconds:.2f} s** for {a.requests:,} conditional "
        f"requests ({a.seconds / max(a.requests, 1) * 1000:.2f} ms per feed)",
        f"- A, bodies parsed: **{a.parsed}** (target 0: {verdict(a.parsed == 0)})",
        f"- A, outbox rows written: **{a.rows}** (target 0: {verdict(a.rows == 0)})",
        f"- B, {CHANGED} new entries: **{b.seconds:.2f} s**; {b.parsed} parsed, {b.offers} "
        f"offers stored, {b.rows:,} outbox rows (one per follower: {expected:,}: "
        f"{'yes' if rows_ok else 'NO'})",
        f"- C, outbox rows after {EDITED} edits: **{c.rows}** (target 0: {verdict(c.rows == 0)}); "
        f"{c.parsed} parsed",
        f"- peak memory of the process (bot and stand-in): **{peak:.0f} MB**",
    ]
    return lines


async def main() -> int:
    """Run and print the figures."""
    args = backend_arguments(__doc__).parse_args()
    for backend in run_backends(args):
        print("\n".join(await feed_cost(backend)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(run(main()))
