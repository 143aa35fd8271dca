"""Issue #16: on PostgreSQL, the leases of a worker that stopped beating are released by the
living, and only those."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, text, update

from bot.clock import SystemClock
from bot.liveness import Liveness
from bot.policy import Hold
from storage import digests, leases, outbox
from storage.db import create_engine, create_session_factory
from storage.models import Delivery, DeliveryStatus, PollGroup, Source, Worker
from tests.e2e.harness import eventually
from tests.test_shared_rate import FreezingRelay
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


async def test_a_worker_that_cannot_beat_stops_sending_before_the_others_find_it_dead(
    database_url: str,
) -> None:
    """A live process whose beats do not get through (its database connections hang) looks
    dead to the others after WORKER_DEAD_AFTER_SECONDS, and they send its rows. It must have
    stopped sending them first: `fresh()` (the send gate's fence) turns False while its
    record, on the database's clock, is still a live one's."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serves one process: nobody takes its rows over")
    host_port, database = database_url.rsplit("/", 1)
    relay = FreezingRelay(int(host_port.rsplit(":", 1)[1]))
    port = await relay.start()
    engine = create_engine(f"{host_port.rsplit(':', 1)[0]}:{port}/{database}")
    direct = create_engine(database_url)
    dead_after = 4.0
    liveness = Liveness(
        sessions=create_session_factory(engine), clock=SystemClock(), dead_after_seconds=dead_after
    )
    stop = asyncio.Event()
    try:
        assert not liveness.fresh()  # never beaten: may not send
        await liveness.start()
        assert liveness.fresh()
        beating = asyncio.create_task(liveness.run(stop))
        relay.freeze()  # its beats hang from now on
        await eventually(lambda: not liveness.fresh(), timeout=30, what="the fence to close")
        async with direct.connect() as connection:
            silent = await connection.scalar(
                text("SELECT extract(epoch FROM now() - beat_at) FROM workers WHERE id = :id"),
                {"id": liveness.owner()},
            )
        assert silent is not None and float(silent) < dead_after  # the others still see it alive
        stop.set()
        beating.cancel()
    finally:
        await relay.close()
        with contextlib.suppress(Exception):
            await engine.dispose()
        await direct.dispose()


async def test_a_stale_sender_s_late_writes_never_undo_the_claim_that_took_its_row_over(
    database_url: str,
) -> None:
    """A row A claimed was taken over (A silent too long, or its lease ran out) and claimed
    again by B. A's writes that come late (giving the row back, holding it for a digest,
    failing it) name A's claim and change nothing: else B's row, being sent, became due again
    (sent a third time), or held (sent again in a digest). B's writes do apply."""
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    try:
        async with sessions.begin() as session:
            await _chat(session, 1)
            _, offer_ids = await _source_with_offers(session, 1)
            await session.execute(
                insert(Delivery).values(
                    chat_id=1,
                    offer_id=offer_ids[0],
                    kind="offer",
                    status=DeliveryStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=NOW,
                    created_at=NOW,
                )
            )
            (a_claim,) = await outbox.claim(
                session, now=NOW, lease_until=NOW + timedelta(seconds=60), limit=1
            )
            # A's lease runs out; B claims the row.
            later = NOW + timedelta(seconds=61)
            (b_claim,) = await outbox.claim(
                session, now=later, lease_until=later + timedelta(seconds=60), limit=1
            )
        assert b_claim.attempts == a_claim.attempts + 1
        row_id = a_claim.delivery_id
        async with sessions.begin() as session:
            await outbox.retry_later(
                session, delivery_id=row_id, at=later, error="late", claim=a_claim.attempts
            )
            await digests.hold(
                session, delivery_id=row_id, reason=Hold.QUIET, now=later, claim=a_claim.attempts
            )
            await outbox.mark_failed(
                session, delivery_id=row_id, error="late", claim=a_claim.attempts
            )
        async with sessions() as session:
            status = await session.scalar(select(Delivery.status).where(Delivery.id == row_id))
        assert status is DeliveryStatus.SENDING  # still B's, being sent
        async with sessions.begin() as session:
            await outbox.retry_later(
                session, delivery_id=row_id, at=later, error="B's", claim=b_claim.attempts
            )
        async with sessions() as session:
            status = await session.scalar(select(Delivery.status).where(Delivery.id == row_id))
        assert status is DeliveryStatus.PENDING
    finally:
        await engine.dispose()
