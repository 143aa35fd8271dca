"""Polling cost: X requests per poll cycle with 1,000 followed accounts, as the X stand-in sees
them; requests for accounts nobody follows any more; posts read twice across a restart.

    python -m bench.poll_cost --backend sqlite
    python -m bench.poll_cost --backend postgresql

Written against the poller's public behaviour only: the real app (`bot.app.serve()`) runs in
this process with POLL_INTERVAL_SECONDS=2 and a clock that moves only when the benchmark moves
it (bot.clock.FrozenClock), so one cycle -- every followed account read once -- ends before the
next is due. The benchmark counts what reaches the X stand-in: requests by endpoint, the
accounts they cover (`/2/users/:id/tweets` covers one; a `tweets/search/recent` query covers
each `from:` in it), the posts returned, and which post ids were served more than once.

1. 1,000 accounts, each followed by one chat; 300 of them posted since they were followed.
2. 100 more posts; the clock moves one interval.
3. The chats of 100 accounts unfollow them (their subscriptions deleted); 100 posts, half by
   those accounts; the clock moves one interval.
4. The bot stops; 100 posts; it starts again on the same database, one interval later.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete

from bench.support import (
    CHAT_BASE,
    Database,
    backend_arguments,
    open_database,
    run,
    run_backends,
    seed_chats,
    seed_sources,
    seed_subscriptions,
    serving,
)
from bot.clock import FrozenClock
from bot.sandbox.telegram_api import TelegramStandIn
from bot.sandbox.x_api import XStandIn
from storage.models import Subscription

ACCOUNTS = 1_000
INTERVAL = 2.0
UNFOLLOWED = range(900, 1_000)
_TIMELINE_RE = re.compile(r"^/2/users/(\d+)/tweets$")
_FROM_RE = re.compile(r"(?<![\w-])from:@?(\w+)", re.IGNORECASE)


class CountingX(XStandIn):
    """The X stand-in, also counting how often each post id is served."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.served: Counter[str] = Counter()

    def _post_json(self, post: Any, fields: Any) -> Any:
        self.served[str(post.sid)] += 1
        return super()._post_json(post, fields)


@dataclass
class Cycle:
    """What the X stand-in saw during one poll cycle."""

    name: str
    requests: Counter[str] = field(default_factory=Counter)
    covered: set[str] = field(default_factory=set)
    posts: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)


def _endpoint(path: str) -> str:
    if _TIMELINE_RE.match(path):
        return "users/:id/tweets"
    if path.startswith("/2/users/by/username/"):
        return "users/by/username"
    return path.removeprefix("/2/")


async def cycle(
    x: CountingX, name: str, handles: dict[str, str], wanted: set[str], limit: float = 90
) -> Cycle:
    """Requests from now until every account in `wanted` was read and X heard nothing for
    1.5 s (or `limit` seconds)."""
    seen = Cycle(name)
    start = len(x.requests)
    posts = x.posts_returned
    began = time.monotonic()
    quiet_since = time.monotonic()
    count = start
    while time.monotonic() - began < limit:
        await asyncio.sleep(0.1)
        if len(x.requests) != count:
            count = len(x.requests)
            quiet_since = time.monotonic()
        for request in x.requests[start:count]:
            match = _TIMELINE_RE.match(request.path)
            if match and match.group(1) in handles:
                seen.covered.add(handles[match.group(1)])
            for handle in _FROM_RE.findall(request.params.get("query", "")):
                seen.covered.add(handle.lower())
        if wanted <= seen.covered and time.monotonic() - quiet_since > 1.5:
            break
    for request in x.requests[start:count]:
        seen.requests[_endpoint(request.path)] += 1
        seen.statuses[request.status] += 1
    seen.posts = x.posts_returned - posts
    seen.seconds = time.monotonic() - began
    return seen


def post_all(x: XStandIn, accounts: range | list[int], tag: str) -> None:
    """One offer by each of these accounts."""
    for n in accounts:
        x.add_post(
            f"poll{n:04d}",
            f"We're hiring a QA engineer ({tag}-{n}), CDI in Nantes. Apply: https://p{n}.example/j",
        )


async def poll_cost(backend: str) -> list[str]:
    """The four cycles on one backend."""
    async with (
        open_database(backend) as db,
        TelegramStandIn(flood_limits=False) as tg,
        CountingX(rate_limits=False) as x,
    ):
        handles = {x.add_user(f"poll{n:04d}"): f"poll{n:04d}" for n in range(ACCOUNTS)}
        now = datetime.now(UTC)
        await seed(db, handles, now)
        for n in range(ACCOUNTS):
            tg.add_chat(CHAT_BASE + n, "private")
        post_all(x, range(300), "a")
        everyone = set(handles.values())
        followed = everyone - {f"poll{n:04d}" for n in UNFOLLOWED}
        clock = FrozenClock(now)
        cycles: list[Cycle] = []
        async with serving(tg, x, db.url, clock=clock, poll_interval_seconds=INTERVAL):
            cycles.append(await cycle(x, "1: first poll (300 new posts)", handles, everyone))
            post_all(x, range(300, 400), "b")
            clock.advance(timedelta(seconds=INTERVAL))
            cycles.append(await cycle(x, "2: next interval (100 new posts)", handles, everyone))
            async with db.sessions.begin() as session:
                await session.execute(
                    delete(Subscription).where(
                        Subscription.chat_id.in_([CHAT_BASE + n for n in UNFOLLOWED])
                    )
                )
            post_all(x, [*range(50), *range(900, 950)], "c")
            clock.advance(timedelta(seconds=INTERVAL))
            third = await cycle(
                x, "3: 100 accounts unfollowed (50 new posts followed)", handles, followed
            )
            cycles.append(third)
        post_all(x, range(400, 500), "d")
        restarted = FrozenClock(clock.now() + timedelta(seconds=INTERVAL))
        async with serving(tg, x, db.url, clock=restarted, poll_interval_seconds=INTERVAL):
            fourth = await cycle(x, "4: after a restart (100 new posts)", handles, followed)
            cycles.append(fourth)
            # Every post read reaches its chat (the sender meters 29.5 messages/s); the
            # count below says so, or tells how many did not within a minute.
            with contextlib.suppress(TimeoutError):
                await tg.wait_until(lambda: tg.stats["sendMessage"] >= len(x.served), 60)
        unfollowed = {f"poll{n:04d}" for n in UNFOLLOWED}
        stale = len(third.covered & unfollowed) + len(fourth.covered & unfollowed)
        twice = sum(1 for count in x.served.values() if count > 1)
        delivered = tg.stats["sendMessage"]
    lines = [f"**{backend}** — {ACCOUNTS:,} accounts, one chat following each"]
    lines.append("")
    lines.append("| cycle | X requests | by endpoint | accounts read | posts returned | time |")
    lines.append("|---|---:|---|---:|---:|---:|")
    for seen in cycles:
        endpoints = ", ".join(f"{name} {n}" for name, n in sorted(seen.requests.items()))
        bad = {status: n for status, n in seen.statuses.items() if status != 200}
        lines.append(
            f"| {seen.name} | {sum(seen.requests.values()):,} | {endpoints}"
            f"{' (non-200: ' + str(bad) + ')' if bad else ''} | {len(seen.covered):,} | "
            f"{seen.posts:,} | {seen.seconds:.1f} s |"
        )
    worst = max(sum(seen.requests.values()) for seen in cycles)
    target = math.ceil(ACCOUNTS / 20)
    lines += [
        "",
        f"- X requests per cycle: at most **{worst}** for {ACCOUNTS:,} accounts (target "
        f"≤ ceil(N/20) = {target}: {'PASS' if worst <= target else 'BELOW'})",
        f"- requests covering accounts nobody follows any more (cycles 3 and 4): **{stale}** "
        f"(target 0: {'PASS' if stale == 0 else 'BELOW'})",
        f"- posts served more than once over the whole run, restart included: **{twice}** "
        f"(target 0: {'PASS' if twice == 0 else 'BELOW'}); {len(x.served):,} distinct posts "
        f"served, {delivered:,} messages sent to the chats",
    ]
    return lines


async def seed(db: Database, handles: dict[str, str], now: datetime) -> None:
    """One chat per account, following it; followed an hour ago."""
    ids = sorted(handles, key=lambda external_id: handles[external_id])
    async with db.sessions.begin() as session:
        await seed_chats(session, ACCOUNTS, now)
        await seed_sources(
            session,
            [handles[i] for i in ids],
            ids,
            now,
            created_at=now - timedelta(hours=1),
        )
        await seed_subscriptions(
            session, chats=ACCOUNTS, per_chat=1, sources=ACCOUNTS, now=now, stride=1
        )
    await db.analyze()


async def main() -> int:
    """Run and print the figures."""
    args = backend_arguments(__doc__).parse_args()
    for backend in run_backends(args):
        print("\n".join(await poll_cost(backend)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(run(main()))
