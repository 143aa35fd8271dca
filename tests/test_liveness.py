"""Issue #16: on PostgreSQL, the leases of a worker that stopped beating are released by the
living, and only those."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select, text, update

from storage import leases, outbox
from storage.db import create_engine, create_session_factory
from storage.models import Delivery, DeliveryStatus, PollGroup, Source, Worker
from tests.test_storage import NOW, _chat, _source_with_offers

DEAD_AFTER = timedelta(seconds=10)


async def test_a_silent_worker_s_leases_are_released_and_a_live_one_s_are_kept(
    database_url: str,
) -> None:
    """Workers A and B each hold outbox rows, a poll group and a feed. A stops beating: its
    rows become due again at once (not when their hour-long lease runs out), its poll group
    and feed are free, its record is gone (it must register again); B keeps everything."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serves one process: it releases every lease at start instead")
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    try:
        async with sessions.begin() as session:
            a = await leases.register(session, host="host-a", pid=1)
            b = await leases.register(session, host="host-b", pid=2)
            for chat_id in (1, 2):
                await _chat(session, chat_id)
            _, offer_ids = await _source_with_offers(session, 1)
            await session.execute(
                insert(Delivery),
                [
                    {
                        "chat_id": chat_id,
                        "offer_id": offer_ids[0],
                        "kind": "offer",
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "next_attempt_at": NOW,
                        "created_at": NOW,
                    }
                    for chat_id in (1, 2)
                ],
            )
            lease = NOW + timedelta(hours=1)
            mine = await outbox.claim(session, now=NOW, lease_until=lease, limit=1, owner=a)
            theirs = await outbox.claim(session, now=NOW, lease_until=lease, limit=1, owner=b)
            for owner in (a, b):
                await session.execute(
                    insert(PollGroup).values(
                        kind="x",
                        next_poll_at=NOW,
                        lease_until=lease,
                        lease_owner=owner,
                        error_count=0,
                        created_at=NOW,
                    )
                )
            await session.execute(
                update(Source).values(lease_until=lease, lease_owner=a)  # the one source
            )
        assert len(mine) == len(theirs) == 1
        async with sessions.begin() as session:
            assert await leases.release_dead(session, dead_after=DEAD_AFTER, now=NOW) == 0
            await session.execute(
                update(Worker)
                .where(Worker.id == a)
                .values(beat_at=text("now() - interval '11 seconds'"))
            )
        async with sessions.begin() as session:
            assert await leases.release_dead(session, dead_after=DEAD_AFTER, now=NOW) == 3
        async with sessions() as session:
            owners = dict(
                (await session.execute(select(PollGroup.lease_owner, PollGroup.lease_until))).all()
            )
            assert owners == {None: None, b: lease}
            assert (
                await session.execute(select(Source.lease_owner, Source.lease_until))
            ).all() == [(None, None)]
            assert list(await session.scalars(select(Worker.id))) == [b]
        async with sessions.begin() as session:
            again = await outbox.claim(session, now=NOW, lease_until=lease, limit=10, owner=b)
            assert not await leases.beat(session, worker_id=a)
            assert await leases.beat(session, worker_id=b)
        assert [r.delivery_id for r in again] == [mine[0].delivery_id]
    finally:
        await engine.dispose()
