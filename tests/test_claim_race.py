"""Issue #6: two senders on one PostgreSQL database never claim the same outbox row."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage import outbox
from storage.db import create_engine, create_session_factory
from storage.models import Chat, Delivery, DeliveryKind, DeliveryStatus
from tests.test_storage import NOW, _source_with_offers

CHATS = 2_000
OFFERS = 5  # pending rows per chat: a backlog of 10,000, as after a burst of posts


class DoubleClaimed(Exception):
    """Both senders hold the same rows."""


async def test_a_row_claimed_and_committed_during_another_claim_is_not_claimed_twice(
    database_url: str,
) -> None:
    """Sender A claims 100 rows and commits while sender B's claim statement is running
    (its snapshot taken before A's commit). B must skip A's rows: they are no longer
    pending. The backlog makes B's statement long enough to commit A inside it, which is
    what happens between two `python -m bot run` processes after a burst of posts."""
    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL runs several senders on one database (SKIP LOCKED)")
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    try:
        async with sessions.begin() as session:
            _, offer_ids = await _source_with_offers(session, OFFERS)
            chat_ids = [10_000 + i for i in range(CHATS)]
            await session.execute(
                insert(Chat),
                [
                    {"id": c, "timezone": "Europe/Paris", "created_at": NOW, "updated_at": NOW}
                    for c in chat_ids
                ],
            )
            await session.execute(
                insert(Delivery),
                [
                    {
                        "chat_id": c,
                        "offer_id": o,
                        "kind": DeliveryKind.OFFER.value,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "next_attempt_at": NOW,
                        "created_at": NOW,
                    }
                    for c in chat_ids
                    for o in offer_ids
                ],
            )
        lease = NOW + timedelta(minutes=1)
        async with engine.connect() as connection_b, engine.connect() as watcher:
            b = AsyncSession(bind=connection_b, expire_on_commit=False)
            # A first claim, rolled back, prepares B's statements on its connection and
            # tells how long a claim of this backlog takes.
            await b.begin()
            started = time.monotonic()
            await outbox.claim(b, now=NOW, lease_until=lease, limit=100)
            dry_run = time.monotonic() - started
            await b.rollback()
            async with sessions() as a:
                await a.begin()
                claimed = await outbox.claim(a, now=NOW, lease_until=lease, limit=100)
                mine = {row.delivery_id for row in claimed}
                await b.begin()
                pid = await b.scalar(text("SELECT pg_backend_pid()"))
                started = time.monotonic()
                claiming = asyncio.create_task(
                    outbox.claim(b, now=NOW, lease_until=lease, limit=100)
                )
                # B's claim statement is running (holding its snapshot): A commits at once,
                # long before B reaches the rows to lock them (a pause here, a third of a
                # claim, let a loaded machine finish B first).
                while not await watcher.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = :pid "
                        "AND state = 'active' AND backend_xmin IS NOT NULL"
                    ),
                    {"pid": pid},
                ):
                    assert not claiming.done() and time.monotonic() - started < 10
                    await asyncio.sleep(0.002)
                assert not claiming.done(), "B's claim ended before A could commit"
                await a.commit()
                committed_after = time.monotonic() - started
                theirs = {row.delivery_id for row in await claiming}
                took = time.monotonic() - started
                await b.commit()
    finally:
        await engine.dispose()
    both = mine & theirs
    print(
        f"A claimed {len(mine)} rows and committed {committed_after:.3f} s into B's claim "
        f"({took:.3f} s long; {dry_run:.3f} s alone): B claimed {len(theirs)}, {len(both)} of "
        "them A's"
    )
    assert len(mine) == 100
    if both:
        raise DoubleClaimed(f"{len(both)} rows claimed by both senders")
