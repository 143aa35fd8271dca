"""The repositories and the migrations, on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.classify import catalogue
from bot.clock import FrozenClock
from bot.policy import Hold
from bot.sources.base import Post
from bot.updates import HandledUpdates
from storage import categories, chats, outbox, settings, sources
from storage.db import Sessions, create_engine, create_session_factory
from storage.migrate import current_revision, head_revision
from storage.models import (
    Base,
    Chat,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    HandledUpdate,
    Offer,
    PollGroup,
    Source,
    Subscription,
)
from storage.outbox import IncomingOffer

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    yield create_session_factory(engine)
    await engine.dispose()


async def _chat(
    session: AsyncSession,
    chat_id: int,
    *,
    active: bool = True,
    chat_type: str = "private",
    language: str = "en",
    **extra: bool,
) -> None:
    await chats.upsert_chat(
        session,
        chat_id=chat_id,
        chat_type=chat_type,
        title=None if chat_type == "private" else "Club",
        language=language,
        timezone="Europe/Paris",
        now=NOW,
        **extra,
    )
    if not active:
        await chats.deactivate_chat(session, chat_id, NOW)


async def _source_with_offers(session: AsyncSession, count: int) -> tuple[int, list[int]]:
    source_id = await sources.ensure_source(
        session, kind="x", key="acme_jobs", external_id="42", display_name="Acme_Jobs", now=NOW
    )
    offers = [
        Post(
            external_id=str(100 + i),
            author="Acme_Jobs",
            text=f"Job {i}",
            url=f"https://x.com/Acme_Jobs/status/{100 + i}",
            posted_at=NOW,
        )
        for i in range(count)
    ]
    ids = await outbox.store_offers(
        session, offers=[IncomingOffer(source_id, post) for post in offers], now=NOW
    )
    return source_id, ids


async def test_migrations_create_exactly_the_models_schema(database_url: str) -> None:
    assert await current_revision(database_url) == head_revision()
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_fan_out_writes_one_row_per_active_subscriber_and_never_twice(sessions) -> None:
    async with sessions.begin() as session:
        for chat_id in (1, 2, 3):
            await _chat(session, chat_id, active=chat_id != 3)
        source_id, offer_ids = await _source_with_offers(session, 2)
        for chat_id in (1, 2, 3):
            assert await sources.subscribe(session, chat_id=chat_id, source_id=source_id, now=NOW)
        assert not await sources.subscribe(session, chat_id=1, source_id=source_id, now=NOW)
        written = await outbox.fan_out(session, offer_ids=offer_ids, now=NOW)
        again = await outbox.fan_out(session, offer_ids=offer_ids, now=NOW)
    assert written == 4  # 2 offers x 2 active chats; the inactive chat gets nothing
    assert again == 0
    async with sessions() as session:
        rows = (await session.execute(select(Delivery.chat_id, Delivery.offer_id))).all()
    assert sorted(rows) == sorted((c, o) for c in (1, 2) for o in offer_ids)


async def test_storing_the_same_post_twice_keeps_one_offer(sessions) -> None:
    async with sessions.begin() as session:
        _, first = await _source_with_offers(session, 3)
        _, second = await _source_with_offers(session, 4)
    assert len(first) == 3
    assert len(second) == 1  # only the 4th post is new


async def test_claim_leases_rows_and_reclaims_them_only_after_the_lease(sessions) -> None:
    async with sessions.begin() as session:
        await _chat(session, 1)
        source_id, offer_ids = await _source_with_offers(session, 3)
        await sources.subscribe(session, chat_id=1, source_id=source_id, now=NOW)
        await outbox.fan_out(session, offer_ids=offer_ids, now=NOW)
    lease = NOW + timedelta(seconds=60)
    async with sessions.begin() as session:
        claimed = await outbox.claim(session, now=NOW, lease_until=lease, limit=2)
    assert [c.offer_text for c in claimed] == ["Job 0", "Job 1"]
    assert all(c.attempts == 1 for c in claimed)
    async with sessions.begin() as session:
        # "Job 2" waits: an older message of its chat is in flight.
        assert await outbox.claim(session, now=NOW, lease_until=lease, limit=10) == []
    async with sessions.begin() as session:
        await outbox.mark_sent(session, delivery_id=claimed[0].delivery_id, message_id=7, now=NOW)
        assert (
            await outbox.claim(
                session, now=NOW + timedelta(seconds=59), lease_until=lease, limit=10
            )
            == []
        )
    later = NOW + timedelta(seconds=61)
    async with sessions.begin() as session:
        again = await outbox.claim(session, now=later, lease_until=later, limit=10)
    # The sender that held "Job 1" died: it comes back (a second attempt), with "Job 2" that
    # waited behind it; "Job 0" (sent) does not.
    assert [c.offer_text for c in again] == ["Job 1", "Job 2"]
    assert [c.attempts for c in again] == [2, 1]


async def test_rows_of_an_inactive_chat_wait_until_it_comes_back(sessions) -> None:
    async with sessions.begin() as session:
        await _chat(session, 1)
        source_id, offer_ids = await _source_with_offers(session, 1)
        await sources.subscribe(session, chat_id=1, source_id=source_id, now=NOW)
        await outbox.fan_out(session, offer_ids=offer_ids, now=NOW)
        await chats.deactivate_chat(session, 1, NOW)
    async with sessions.begin() as session:
        assert await outbox.claim(session, now=NOW, lease_until=NOW, limit=10) == []
        await _chat(session, 1)  # the user wrote to the bot again
    async with sessions.begin() as session:
        assert len(await outbox.claim(session, now=NOW, lease_until=NOW, limit=10)) == 1


async def test_migrating_a_group_moves_its_subscriptions_and_outbox(sessions) -> None:
    async with sessions.begin() as session:
        await chats.upsert_chat(
            session,
            chat_id=-5,
            chat_type="group",
            title="Club",
            language="fr",
            timezone="Europe/Paris",
            now=NOW,
        )
        source_id, offer_ids = await _source_with_offers(session, 2)
        await sources.subscribe(session, chat_id=-5, source_id=source_id, now=NOW)
        await outbox.fan_out(session, offer_ids=offer_ids, now=NOW)
        await chats.migrate_chat(session, -5, -1005, NOW)
    async with sessions() as session:
        assert await session.get(Chat, -5) is None
        new = await session.get(Chat, -1005)
        assert new is not None and new.language == "fr" and new.type == "supergroup"
        subs = list(await session.scalars(select(Subscription.chat_id)))
        assert subs == [-1005]
        pending = await session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.chat_id == -1005, Delivery.status == DeliveryStatus.PENDING)
        )
        assert pending == 2


async def test_sources_nobody_active_follows_are_not_polled(sessions) -> None:
    async with sessions.begin() as session:
        await _chat(session, 1)
        await _chat(session, 2)
        followed, _ = await _source_with_offers(session, 0)
        orphan = await sources.ensure_source(
            session, kind="x", key="orphan", external_id="9", display_name="orphan", now=NOW
        )
        await sources.subscribe(session, chat_id=1, source_id=followed, now=NOW)
        await sources.subscribe(session, chat_id=2, source_id=orphan, now=NOW)
        await chats.deactivate_chat(session, 2, NOW)
    async with sessions.begin() as session:
        assert await _claim(session) == [["acme_jobs"]]


async def test_a_chat_waits_for_its_older_message_before_newer_ones(sessions) -> None:
    async with sessions.begin() as session:
        await _chat(session, 1)
        await _chat(session, 2)
        source_id, offer_ids = await _source_with_offers(session, 3)
        for chat_id in (1, 2):
            await sources.subscribe(session, chat_id=chat_id, source_id=source_id, now=NOW)
        await outbox.fan_out(session, offer_ids=offer_ids, now=NOW)
    lease = NOW + timedelta(seconds=60)
    async with sessions.begin() as session:
        first = await outbox.claim(session, now=NOW, lease_until=lease, limit=1)
    assert [(c.chat_id, c.offer_text) for c in first] == [(1, "Job 0")]
    async with sessions.begin() as session:
        # Chat 1's "Job 0" is in flight: its "Job 1" and "Job 2" wait; chat 2 is free.
        rest = await outbox.claim(session, now=NOW, lease_until=lease, limit=10)
        assert {(c.chat_id, c.offer_text) for c in rest} == {(2, f"Job {i}") for i in range(3)}
        await outbox.retry_later(
            session, delivery_id=first[0].delivery_id, at=NOW + timedelta(seconds=30), error="429"
        )
    async with sessions.begin() as session:
        assert (
            await outbox.claim(
                session, now=NOW + timedelta(seconds=29), lease_until=lease, limit=10
            )
            == []
        )
    async with sessions.begin() as session:
        later = await outbox.claim(
            session, now=NOW + timedelta(seconds=30), lease_until=lease, limit=10
        )
    assert [c.offer_text for c in later] == ["Job 0", "Job 1", "Job 2"]


async def test_a_chat_that_wrote_during_a_refused_send_stays_active(sessions) -> None:
    async with sessions.begin() as session:
        await _chat(session, 1)
    sent_at = NOW + timedelta(seconds=1)
    async with sessions.begin() as session:
        await chats.upsert_chat(
            session,
            chat_id=1,
            chat_type="private",
            title=None,
            language=None,
            timezone="UTC",
            now=NOW + timedelta(seconds=2),
        )
    async with sessions.begin() as session:
        # Telegram's 403 is older than the user's /start: the chat is back.
        assert not await chats.deactivate_chat(
            session, 1, NOW + timedelta(seconds=3), unless_heard_since=sent_at
        )
        info = await chats.get_chat(session, 1)
    assert info is not None and info.active and info.language == "en"
    async with sessions.begin() as session:
        assert await chats.deactivate_chat(
            session, 1, NOW + timedelta(seconds=4), unless_heard_since=NOW + timedelta(seconds=3)
        )
        await _chat(session, 1)
        info = await chats.get_chat(session, 1)
    assert info is not None and info.active


async def test_a_chat_is_written_again_only_when_something_changed_or_a_send_is_out(
    sessions,
) -> None:
    """What is known about a chat is read first; hearing from it is written while a send to it
    is out, which Telegram may yet refuse (then the chat must stay active, as above)."""
    async with sessions.begin() as session:
        await _chat(session, 1)
        await _chat(session, -5, chat_type="supergroup")

    async def current(
        chat_id: int,
        chat_type: str | None = None,
        title: str | None = "",
        language: str | None = "en",
    ) -> bool:
        async with sessions() as session:
            return await chats.chat_is_current(
                session,
                chat_id=chat_id,
                chat_type=chat_type or ("private" if chat_id > 0 else "supergroup"),
                title=(None if chat_id > 0 else "Club") if title == "" else title,
                language=language,
            )

    assert await current(1) and await current(-5) and await current(-5, language=None)
    assert not await current(1, language="fr")
    assert not await current(-5, title="Lyon club")
    assert not await current(-5, chat_type="group")
    assert not await current(2)  # never heard from
    async with sessions.begin() as session:
        session.add(
            Delivery(
                chat_id=1,
                kind=DeliveryKind.OFFER,
                status=DeliveryStatus.SENDING,
                next_attempt_at=NOW,
                created_at=NOW,
            )
        )
        await chats.deactivate_chat(session, -5, NOW)
    assert not await current(1)  # a send is out
    assert not await current(-5)  # inactive: hearing from it brings it back


async def test_an_update_is_claimed_once_and_forgotten_after_a_day(sessions) -> None:
    clock = FrozenClock(NOW)
    handled = HandledUpdates(sessions=sessions, clock=clock)
    other_process = HandledUpdates(sessions=sessions, clock=clock)
    assert await handled.first_time(7)
    assert not await handled.first_time(7)
    assert not await other_process.first_time(7)
    assert await other_process.first_time(8)
    clock.advance(timedelta(hours=25))
    assert await handled.first_time(9)  # and, an hour after the last prune, a prune
    async with sessions() as session:
        kept = await session.scalars(select(HandledUpdate.update_id))
        assert sorted(kept) == [9]


async def test_a_migrated_group_keeps_its_settings_and_its_pending_digest(sessions) -> None:
    from storage import digests
    from storage.models import Digest
    from storage.settings import update_chat_settings

    async with sessions.begin() as session:
        await chats.upsert_chat(
            session,
            chat_id=-7,
            chat_type="group",
            title="Club",
            language="fr",
            timezone="Europe/Paris",
            now=NOW,
        )
        await update_chat_settings(
            session, -7, daily_limit=3, paused=True, quiet_start="22:00", quiet_end="07:00"
        )
        source_id, offer_ids = await _source_with_offers(session, 2)
        await sources.subscribe(session, chat_id=-7, source_id=source_id, now=NOW)
        await outbox.fan_out(session, offer_ids=offer_ids, now=NOW)
        claimed = await outbox.claim(session, now=NOW, lease_until=NOW, limit=10)
        for row in claimed:
            await digests.hold(session, delivery_id=row.delivery_id, reason=Hold.PAUSE, now=NOW)
        digest_id = await digests.create_digest(session, chat_id=-7, reason="manual", now=NOW)
        assert digest_id is not None
        await chats.migrate_chat(session, -7, -1007, NOW)
    async with sessions() as session:
        chat = await session.get(Chat, -1007)
        assert chat is not None
        assert (chat.daily_limit, chat.paused, chat.quiet_start) == (3, True, "22:00")
        digest = await session.get(Digest, digest_id)
        assert digest is not None and digest.chat_id == -1007 and digest.language == "fr"
        assert len(await digests.digest_offers(session, digest_id)) == 2


async def test_upgrading_a_database_from_the_first_revision_keeps_its_rows(
    tmp_path, postgres_server
) -> None:
    import asyncpg
    from alembic import command

    from storage.migrate import alembic_config, upgrade_async

    urls = [f"sqlite:///{tmp_path / 'old.db'}"]
    if postgres_server is not None:
        admin = await asyncpg.connect(postgres_server.admin_dsn)
        name = f"upgrade_{uuid.uuid4().hex[:8]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        urls.append(postgres_server.url(name))
    for url in urls:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0001_relay_core")
        engine = create_engine(url)
        async with engine.begin() as connection:
            now = "2026-11-25 12:00:00+00"
            await connection.execute(
                text(
                    "INSERT INTO chats (id, type, language, timezone, active, created_at,"
                    " updated_at)"
                    f" VALUES (1, 'private', 'fr', 'Europe/Paris', true, '{now}', '{now}')"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO sources (id, kind, key, external_id, display_name, next_poll_at,"
                    f" error_count, gone, created_at) VALUES (1, 'x', 'a', '9', 'a', '{now}', 0,"
                    f" false, '{now}')"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO subscriptions (chat_id, source_id, created_at)"
                    f" VALUES (1, 1, '{now}')"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO offers (id, source_id, external_id, author, text, url, created_at)"
                    f" VALUES (1, 1, '5', 'a', 'job', 'u', '{now}')"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO deliveries (chat_id, offer_id, kind, status, attempts,"
                    f" next_attempt_at, created_at) VALUES (1, 1, 'offer', 'pending', 0, '{now}',"
                    f" '{now}')"
                )
            )
        await upgrade_async(url)
        async with engine.connect() as connection:
            for table in ("chats", "subscriptions", "offers", "deliveries"):
                count = (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
                assert count == 1, (url, table)
        await engine.dispose()


def _post(external_id: str, author: str, text: str) -> Post:
    return Post(
        external_id=external_id,
        author=author,
        text=text,
        url=f"https://x.com/{author}/status/{external_id}",
        posted_at=NOW,
    )


async def _store(session: AsyncSession, *items: tuple[int, Post]) -> list[int]:
    from bot.polling import read

    ids = await outbox.store_offers(
        session,
        offers=[IncomingOffer(source_id, post, read(post.text)) for source_id, post in items],
        now=NOW,
    )
    await outbox.link_stories(
        session,
        offer_ids=ids,
        since=NOW - timedelta(days=7),
        near_identical=catalogue().near_identical,
    )
    await outbox.fan_out(session, offer_ids=ids, now=NOW)
    return ids


async def _received(session: AsyncSession, chat_id: int) -> list[str]:
    rows = await session.scalars(
        select(Offer.text)
        .join(Delivery, Delivery.offer_id == Offer.id)
        .where(Delivery.chat_id == chat_id)
        .order_by(Delivery.id)
    )
    return list(rows)


SOFTWARE = "We're hiring a Python developer (CDI) in Lyon, hybrid. Apply: https://jobs.acme.fr/1"
HR = "Nous recrutons un(e) chargé(e) de recrutement en CDI à Paris. Postulez !"
NEWS = "Big news: we opened our new office in Lyon today, thanks to the whole team 🎉"
INTERNSHIP = "Stage développeur Python 6 mois à Lyon, postulez : https://jobs.acme.fr/2"


async def test_category_followers_get_that_category_s_offers_and_account_followers_all(
    sessions,
) -> None:
    async with sessions.begin() as session:
        for chat_id in (1, 2, 3):
            await _chat(session, chat_id)
        source_id = await sources.ensure_source(
            session, kind="x", key="acme", external_id="1", display_name="acme", now=NOW
        )
        await sources.subscribe(session, chat_id=1, source_id=source_id, now=NOW)
        await categories.subscribe(session, chat_id=2, category="software", now=NOW)
        await categories.subscribe(session, chat_id=3, category="hr", now=NOW)
        await _store(
            session,
            (source_id, _post("1", "acme", SOFTWARE)),
            (source_id, _post("2", "acme", HR)),
            (source_id, _post("3", "acme", NEWS)),
        )
    async with sessions() as session:
        assert await _received(session, 1) == [SOFTWARE, HR, NEWS]
        assert await _received(session, 2) == [SOFTWARE]
        assert await _received(session, 3) == [HR]


async def test_a_filter_keeps_out_what_it_excludes_and_what_lacks_a_required_word(
    sessions,
) -> None:
    async with sessions.begin() as session:
        for chat_id in (1, 2, 3):
            await _chat(session, chat_id)
            await categories.subscribe(session, chat_id=chat_id, category="software", now=NOW)
        await categories.set_filter(
            session, chat_id=1, words=[categories.FilterWord("stage", "stage", False)]
        )
        await categories.set_filter(
            session,
            chat_id=2,
            words=[
                categories.FilterWord("python", "python", True),
                categories.FilterWord("hybride", "hybride", True),  # a tag's French name
            ],
        )
        source_id = await sources.ensure_source(
            session, kind="x", key="acme", external_id="1", display_name="acme", now=NOW
        )
        await _store(
            session,
            (source_id, _post("1", "acme", SOFTWARE)),
            (source_id, _post("2", "acme", INTERNSHIP)),
        )
    async with sessions() as session:
        assert await _received(session, 1) == [SOFTWARE]
        assert await _received(session, 2) == [SOFTWARE]
        assert await _received(session, 3) == [SOFTWARE, INTERNSHIP]


async def test_one_offer_posted_by_two_accounts_is_one_story_naming_both(sessions) -> None:
    async with sessions.begin() as session:
        for chat_id in (1, 2, 3):
            await _chat(session, chat_id)
        first = await sources.ensure_source(
            session, kind="x", key="acme", external_id="1", display_name="acme", now=NOW
        )
        second = await sources.ensure_source(
            session, kind="x", key="board", external_id="2", display_name="Board", now=NOW
        )
        for source_id in (first, second):
            await sources.subscribe(session, chat_id=1, source_id=source_id, now=NOW)
        await sources.subscribe(session, chat_id=2, source_id=second, now=NOW)
        await categories.subscribe(session, chat_id=3, category="software", now=NOW)
        repost = SOFTWARE.replace("https://jobs.acme.fr/1", "https://t.co/xyz #job @acme")
        await _store(
            session, (first, _post("1", "acme", SOFTWARE)), (second, _post("9", "Board", repost))
        )
    async with sessions() as session:
        for chat_id in (1, 2, 3):
            assert await _received(session, chat_id) == [SOFTWARE], chat_id
        claimed = await outbox.claim(
            session, now=NOW, lease_until=NOW + timedelta(minutes=1), limit=10
        )
    assert {c.chat_id for c in claimed} == {1, 2, 3}
    for row in claimed:
        assert row.offer_author == "acme"
        # Credits name only sources the chat follows (or curated ones): chat 3 follows a
        # category, not @Board.
        assert [credit.author for credit in row.also] == ([] if row.chat_id == 3 else ["Board"])


async def test_credits_name_at_most_three_sources_the_chat_follows_or_curated_ones(
    sessions,
) -> None:
    """Strangers' feeds that copied an offer are not advertised in other people's chats,
    and however many sources posted it, a message names three of them at most."""
    async with sessions.begin() as session:
        await _chat(session, 1)
        first = await sources.ensure_source(
            session, kind="x", key="acme", external_id="1", display_name="acme", now=NOW
        )
        copies = [
            await sources.ensure_source(
                session,
                kind="x",
                key=f"copy{n}",
                external_id=str(10 + n),
                display_name=f"copy{n}",
                now=NOW,
            )
            for n in range(6)
        ]
        await sources.subscribe(session, chat_id=1, source_id=first, now=NOW)
        for source_id in copies[1:5]:
            await sources.subscribe(session, chat_id=1, source_id=source_id, now=NOW)
        await sources.set_board(session, source_id=copies[5], on=True)
        repost = SOFTWARE.replace("https://jobs.acme.fr/1", "https://t.co/xyz #job @acme")
        await _store(
            session,
            (first, _post("1", "acme", SOFTWARE)),
            (first, _post("2", "acme", repost)),  # acme's own repost takes no credit's place
            *(
                (source_id, _post(str(20 + n), f"copy{n}", repost))
                for n, source_id in enumerate(copies)
            ),
        )
    async with sessions() as session:
        claimed = await outbox.claim(
            session, now=NOW, lease_until=NOW + timedelta(minutes=1), limit=10
        )
    assert len(claimed) == 1
    assert [credit.author for credit in claimed[0].also] == ["copy1", "copy2", "copy3"]


async def test_job_boards_are_polled_only_while_someone_follows_a_category(sessions) -> None:
    async with sessions.begin() as session:
        await _chat(session, 1)
        await sources.set_boards(
            session, kind="x", accounts=[("jobboard", "77", "JobBoard")], now=NOW
        )
    async with sessions.begin() as session:
        assert await _claim(session) == []
        assert await sources.boards(session, "x") == ["JobBoard"]
    async with sessions.begin() as session:
        await categories.subscribe(session, chat_id=1, category="design", now=NOW)
    async with sessions.begin() as session:
        assert await _claim(session) == [["jobboard"]]
    async with sessions.begin() as session:
        await sources.set_boards(session, kind="x", accounts=[], now=NOW)
    async with sessions.begin() as session:
        assert await _claim(session, now=NOW + timedelta(minutes=6)) == []


async def test_reading_boards_file_again_keeps_the_boards_an_operator_added(sessions) -> None:
    async with sessions.begin() as session:
        filed = await sources.set_boards(
            session, kind="x", accounts=[("filed", "1", "Filed"), ("both", "2", "Both")], now=NOW
        )
        added = await sources.ensure_source(
            session, kind="x", key="added", external_id="3", display_name="Added", now=NOW
        )
        assert await sources.set_board(session, source_id=added, on=True)
        assert not await sources.set_board(session, source_id=added, on=True)  # already
        assert await sources.set_board(session, source_id=filed[1], on=True) is False
    async with sessions.begin() as session:
        # The file no longer lists "filed" nor "both": the operator's board stays.
        await sources.set_boards(session, kind="x", accounts=[], now=NOW)
    async with sessions() as session:
        rows = await sources.board_list(session)
    assert [(r.key, r.origin) for r in rows] == [("added", "admin")]


async def test_a_migrated_group_keeps_its_categories_and_filter(sessions) -> None:
    async with sessions.begin() as session:
        await _chat(session, -5)
        await categories.subscribe(session, chat_id=-5, category="web", now=NOW)
        await categories.set_filter(
            session, chat_id=-5, words=[categories.FilterWord("php", "php", True)]
        )
        await chats.migrate_chat(session, -5, -1005, NOW)
    async with sessions() as session:
        assert await categories.followed(session, -1005) == ["web"]
        assert [w.word for w in await categories.get_filter(session, -1005)] == ["php"]
        assert await categories.followed(session, -5) == []


async def test_a_near_identical_wording_joins_the_story_but_another_job_does_not(sessions) -> None:
    reworded = (
        "We are hiring a Python developer (CDI) in Lyon, hybrid! Apply now: https://t.co/q #jobs"
    )
    java = SOFTWARE.replace("Python", "Java")
    async with sessions.begin() as session:
        await _chat(session, 1)
        await categories.subscribe(session, chat_id=1, category="software", now=NOW)
        ids = []
        for n, (key, text) in enumerate(
            [("acme", SOFTWARE), ("board", reworded), ("other", java)], start=1
        ):
            source_id = await sources.ensure_source(
                session, kind="x", key=key, external_id=str(n), display_name=key, now=NOW
            )
            ids += await _store(session, (source_id, _post(str(n), key, text)))
    async with sessions() as session:
        assert await _received(session, 1) == [SOFTWARE, java]
        stories = dict((await session.execute(select(Offer.id, Offer.story_id))).all())
    assert stories == {ids[0]: None, ids[1]: ids[0], ids[2]: None}


async def test_stories_never_chain_so_a_chat_gets_each_offer_once(sessions) -> None:
    """O is sent; then A posts a rewording of O and B reposts A's words: one story, O's."""
    reworded = "We are hiring a Python developer (CDI) in Lyon, hybrid! Apply now: https://t.co/q"
    async with sessions.begin() as session:
        await _chat(session, 1)
        ids = {}
        for n, key in enumerate(("zed", "a", "b"), start=1):
            ids[key] = await sources.ensure_source(
                session, kind="x", key=key, external_id=str(n), display_name=key, now=NOW
            )
        for key in ("zed", "b"):
            await sources.subscribe(session, chat_id=1, source_id=ids[key], now=NOW)
        await _store(session, (ids["zed"], _post("1", "zed", SOFTWARE)))
        await _store(
            session,
            (ids["a"], _post("2", "a", reworded)),
            (ids["b"], _post("3", "b", reworded + " #job #Lyon")),
        )
    async with sessions() as session:
        assert await _received(session, 1) == [SOFTWARE]
        heads = set((await session.scalars(select(Offer.story_id))).all())
    assert len(heads - {None}) == 1


async def test_a_post_read_differently_is_another_story(sessions) -> None:
    """A non-offer and the same words read as an offer (hashtags appended) never merge. The
    two readings are set here (which wordings the shipped reader reads which way is the
    reader's business, measured in BENCHMARKS.md); the story is the storage's."""
    from dataclasses import replace

    from bot.polling import read

    cat = catalogue()
    news = "Meet Julie, data engineer at Acme in Lyon: her story on our blog, from intern to lead"
    offer = news + " #hiring #job #CDI"
    as_news = replace(
        read(news), is_offer=False, categories=(), fingerprint=cat.fingerprint(news, "False ")
    )
    as_offer = replace(
        read(offer),
        is_offer=True,
        categories=("data",),
        fingerprint=cat.fingerprint(offer, "True data"),
    )
    async with sessions.begin() as session:
        await _chat(session, 1)
        await categories.subscribe(session, chat_id=1, category="data", now=NOW)
        first = await sources.ensure_source(
            session, kind="x", key="z", external_id="1", display_name="z", now=NOW
        )
        board = await sources.ensure_source(
            session, kind="x", key="board", external_id="2", display_name="board", now=NOW
        )
        await sources.subscribe(session, chat_id=1, source_id=board, now=NOW)
        for source_id, post, reading in (
            (first, _post("1", "z", news), as_news),
            (board, _post("2", "board", offer), as_offer),
        ):
            ids = await outbox.store_offers(
                session, offers=[IncomingOffer(source_id, post, reading)], now=NOW
            )
            await outbox.link_stories(
                session,
                offer_ids=ids,
                since=NOW - timedelta(days=7),
                near_identical=cat.near_identical,
            )
            await outbox.fan_out(session, offer_ids=ids, now=NOW)
    async with sessions() as session:
        received = await _received(session, 1)
    assert received == [offer]


async def test_thousands_of_posts_in_one_cycle_are_stored(sessions) -> None:
    """More posts than one PostgreSQL statement can carry parameters for (32,767)."""
    async with sessions.begin() as session:
        await _chat(session, 1)
        source_id = await sources.ensure_source(
            session, kind="x", key="big", external_id="1", display_name="big", now=NOW
        )
        await sources.subscribe(session, chat_id=1, source_id=source_id, now=NOW)
        posts = [(source_id, _post(str(i), "big", f"Offer number {i}")) for i in range(3_500)]
        ids = await _store(session, *posts)
    assert len(ids) == 3_500
    async with sessions() as session:
        assert len(await _received(session, 1)) == 3_500


async def test_stories_are_found_across_chunks_of_a_big_cycle(sessions, monkeypatch) -> None:
    """Reposts land in other storing, linking and fan-out chunks than their first wording."""
    monkeypatch.setattr(outbox, "STORE_CHUNK", 250)
    monkeypatch.setattr(outbox, "ID_CHUNK", 300)
    roles = ["Python developer", "UX designer", "HR manager", "data analyst", "web developer"]
    cities = ["Lyon", "Paris", "Lille", "Nantes", "Toulouse", "Bordeaux", "Rennes"]
    texts = [
        f"We're hiring a {roles[i % 5]} in {cities[i % 7]}, CDI, hybrid. Job {i}: "
        f"apply at https://jobs.example/{i}"
        for i in range(1_000)
    ]
    async with sessions.begin() as session:
        await _chat(session, 1)
        acme = await sources.ensure_source(
            session, kind="x", key="acme", external_id="1", display_name="acme", now=NOW
        )
        board = await sources.ensure_source(
            session, kind="x", key="board", external_id="2", display_name="board", now=NOW
        )
        for source_id in (acme, board):
            await sources.subscribe(session, chat_id=1, source_id=source_id, now=NOW)
        reposts = [
            (board, _post(f"r{i}", "board", texts[i].replace("jobs.example", "t.co") + " #job"))
            for i in range(0, 1_000, 5)
        ]
        originals = [(acme, _post(str(i), "acme", text)) for i, text in enumerate(texts)]
        ids = await _store(session, *originals, *reposts)
    assert len(ids) == 1_200
    async with sessions() as session:
        assert sorted(await _received(session, 1)) == sorted(texts)
        stories = dict((await session.execute(select(Offer.id, Offer.story_id))).all())
    assert [stories[i] for i in ids[1_000:]] == ids[0:1_000:5]


async def test_the_filter_also_reads_the_wording_the_chat_will_get(sessions) -> None:
    """A chat filtering out "now" gets nothing when the story's first wording says it."""
    async with sessions.begin() as session:
        await _chat(session, 1)
        await categories.set_filter(
            session, chat_id=1, words=[categories.FilterWord("now", "now", False)]
        )
        acme = await sources.ensure_source(
            session, kind="x", key="acme", external_id="1", display_name="acme", now=NOW
        )
        board = await sources.ensure_source(
            session, kind="x", key="board", external_id="2", display_name="board", now=NOW
        )
        await sources.subscribe(session, chat_id=1, source_id=board, now=NOW)
        ids = await _store(
            session,
            (acme, _post("1", "acme", SOFTWARE.replace("Apply:", "Apply now:"))),
            (board, _post("2", "board", SOFTWARE.replace("https://jobs.acme.fr/1", "") + "#job")),
        )
    async with sessions() as session:
        assert await _received(session, 1) == []
        stories = dict((await session.execute(select(Offer.id, Offer.story_id))).all())
    assert stories[ids[1]] == ids[0]


async def test_a_copy_never_ties_an_offer_to_a_story_older_than_the_window(sessions) -> None:
    from bot.polling import read

    async with sessions.begin() as session:
        source_id = await sources.ensure_source(
            session, kind="x", key="acme", external_id="1", display_name="acme", now=NOW
        )
        ids = []
        for n, days_ago in enumerate((10, 5, 0)):
            stored = await outbox.store_offers(
                session,
                offers=[IncomingOffer(source_id, _post(str(n), "acme", SOFTWARE), read(SOFTWARE))],
                now=NOW - timedelta(days=days_ago),
            )
            await outbox.link_stories(
                session, offer_ids=stored, since=NOW - timedelta(days=days_ago + 7)
            )
            ids += stored
    async with sessions() as session:
        stories = dict((await session.execute(select(Offer.id, Offer.story_id))).all())
    # The second joins the first (5 days apart); the third is 10 days after the head: new story.
    assert stories == {ids[0]: None, ids[1]: ids[0], ids[2]: None}


async def test_each_forum_topic_gets_what_was_followed_in_it(sessions) -> None:
    forum = -100_777
    async with sessions.begin() as session:
        await _chat(session, forum, chat_type="supergroup", language="fr")
        acme = await sources.ensure_source(
            session, kind="x", key="acme", external_id="1", display_name="acme", now=NOW
        )
        await sources.subscribe(session, chat_id=forum, source_id=acme, now=NOW, thread_id=7)
        await categories.subscribe(session, chat_id=forum, category="hr", now=NOW, thread_id=9)
        await categories.subscribe(session, chat_id=forum, category="hr", now=NOW, thread_id=7)
        await chats.remember_topic(session, chat_id=forum, thread_id=7, name="Offres")
        ids = await _store(
            session, (acme, _post("1", "acme", SOFTWARE)), (acme, _post("2", "acme", HR))
        )
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Delivery.offer_id, Delivery.thread_id)
                .where(Delivery.chat_id == forum)
                .order_by(Delivery.offer_id, Delivery.thread_id)
            )
        ).all()
        # HR comes once into topic 7 (followed twice there) and once into topic 9.
        assert [tuple(r) for r in rows] == [(ids[0], 7), (ids[1], 7), (ids[1], 9)]
        assert await categories.followed_by_topic(session, forum) == [(7, "hr"), (9, "hr")]
        assert await sources.followed_by_topic(session, forum) == [(7, "acme")]
        assert await chats.topic_names(session, forum) == {7: "Offres"}
        claimed = await outbox.claim(
            session, now=NOW, lease_until=NOW + timedelta(minutes=1), limit=10
        )
    assert [(c.thread_id, c.chat_type, c.shared_chat) for c in claimed] == [
        (7, "supergroup", True),
        (7, "supergroup", True),
        (9, "supergroup", True),
    ]


async def test_a_paced_group_has_nothing_due_before_its_next_round(sessions) -> None:
    group = -100_888
    async with sessions.begin() as session:
        await _chat(session, group, chat_type="supergroup", language="en")
        acme = await sources.ensure_source(
            session, kind="x", key="acme", external_id="1", display_name="acme", now=NOW
        )
        await sources.subscribe(session, chat_id=group, source_id=acme, now=NOW)
        posts = [(acme, _post(str(i), "acme", f"Job number {i}")) for i in range(60)]
        await _store(session, *posts)
        await outbox.pace_chat(session, chat_id=group, until=NOW + timedelta(minutes=1))
    async with sessions.begin() as session:
        lease = NOW + timedelta(minutes=5)
        assert await outbox.claim(session, now=NOW, lease_until=lease, limit=100) == []
        later = NOW + timedelta(minutes=1)
        claimed = await outbox.claim(session, now=later, lease_until=lease, limit=100)
    # A group's round takes up to GROUP_BATCH rows (a private chat's, five).
    assert len(claimed) == outbox.GROUP_BATCH


async def test_a_new_group_starts_in_the_operator_s_group_mode(sessions) -> None:
    async with sessions.begin() as session:
        for chat_id, digest_only in ((-100_1, True), (-100_2, False)):
            await _chat(
                session, chat_id, chat_type="supergroup", language="fr", digest_only=digest_only
            )
        # Seen again (another member writes in English): mode and language stay.
        await _chat(
            session,
            -100_1,
            chat_type="supergroup",
            language="en",
            keep_language=True,
            digest_only=False,
        )
    async with sessions() as session:
        first, second = await session.get(Chat, -100_1), await session.get(Chat, -100_2)
        assert first is not None and second is not None
        assert (first.digest_only, first.language) == (True, "fr")
        assert second.digest_only is False


async def test_each_forum_topic_gets_its_own_digest(sessions) -> None:
    from storage import digests

    forum = -100_999
    async with sessions.begin() as session:
        await _chat(session, forum, chat_type="supergroup", language="fr")
        acme = await sources.ensure_source(
            session, kind="x", key="acme", external_id="1", display_name="acme", now=NOW
        )
        for thread in (7, 9):
            await sources.subscribe(
                session, chat_id=forum, source_id=acme, now=NOW, thread_id=thread
            )
        await _store(session, (acme, _post("1", "acme", SOFTWARE)))
        rows = (await session.scalars(select(Delivery.id).where(Delivery.chat_id == forum))).all()
        for delivery_id in rows:
            await digests.hold(session, delivery_id=delivery_id, reason=Hold.DIGEST, now=NOW)
        assert await digests.create_digest(session, chat_id=forum, reason="manual", now=NOW)
    async with sessions() as session:
        pending = await digests.pending_digests(session)
        assert sorted(d.thread_id for d in pending) == [7, 9]
        for digest in pending:  # the offer once in each topic's digest
            assert [o.text for o in await digests.digest_offers(session, digest.digest_id)] == [
                SOFTWARE
            ]


async def test_x_usage_adds_up_and_each_flag_is_set_once(sessions) -> None:
    from storage import usage

    async with sessions.begin() as session:
        await usage.record(session, month="2026-11", posts=40, requests=2)
        await usage.record(session, month="2026-11", posts=2, requests=1, users=1)
        assert await usage.flag(session, month="2026-11", name="warned")
        assert not await usage.flag(session, month="2026-11", name="warned")
    async with sessions() as session:
        november = await usage.get(session, "2026-11")
        assert (november.posts, november.requests, november.users) == (42, 3, 1)
        assert november.warned and not november.spent and not november.capped
        assert await usage.get(session, "2026-12") == usage.Usage("2026-12")


def _fits_three(handles: list[str]) -> bool:
    return len(handles) <= 3


async def _claim(
    session: AsyncSession, now: datetime = NOW, lease: datetime = NOW + timedelta(minutes=5)
) -> list[list[str]]:
    """Place sources in groups, then claim the due groups: their members' keys."""
    await sources.place_in_groups(session, kind="x", now=now, fits=_fits_three)
    groups = await sources.claim_due_groups(session, kind="x", now=now, limit=10, lease_until=lease)
    return [[m.key for m in g.members] for g in groups]


async def test_a_leased_group_is_polled_by_one_process_until_its_lease_runs_out(
    sessions,
) -> None:
    async with sessions.begin() as session:
        await _chat(session, 1)
        source_id = await sources.ensure_source(
            session, kind="x", key="acme", external_id="1", display_name="acme", now=NOW
        )
        await sources.subscribe(session, chat_id=1, source_id=source_id, now=NOW)
    lease = NOW + timedelta(minutes=5)
    async with sessions.begin() as session:
        first = await _claim(session, lease=lease)
    async with sessions.begin() as session:
        # Another process, meanwhile: nothing for it.
        assert await _claim(session, lease=lease) == []
        # The first process died: after its lease, the group is due again.
        later = lease + timedelta(seconds=1)
        again = await _claim(session, now=later, lease=later + timedelta(minutes=5))
    assert first == [["acme"]] == again
    async with sessions.begin() as session:
        group_id = (await session.get(Source, source_id)).poll_group_id
        await sources.record_group_poll(
            session,
            group_id=group_id,
            cursors={source_id: "9"},
            posted={},
            next_poll_at=NOW + timedelta(seconds=1),
        )
        # A recorded poll gives the group back at once (no lease left), the cursor stored.
        assert await _claim(session, now=NOW + timedelta(seconds=2), lease=lease) == [["acme"]]
        assert (await session.get(Source, source_id)).cursor == "9"


async def test_watched_accounts_fill_groups_and_unwatched_ones_leave_them(sessions) -> None:
    async with sessions.begin() as session:
        await _chat(session, 1)
        ids = {}
        for n in range(7):
            ids[n] = await sources.ensure_source(
                session, kind="x", key=f"a{n}", external_id=str(n), display_name=f"a{n}", now=NOW
            )
            await sources.subscribe(session, chat_id=1, source_id=ids[n], now=NOW)
        # Nobody follows this one: it is in no group, so no query reads it.
        await sources.ensure_source(
            session, kind="x", key="idle", external_id="99", display_name="idle", now=NOW
        )
    async with sessions.begin() as session:
        assert await _claim(session) == [["a0", "a1", "a2"], ["a3", "a4", "a5"], ["a6"]]
    async with sessions.begin() as session:
        # Four followers leave: the groups left thin are merged, leases permitting.
        await sources.unsubscribe(session, chat_id=1, source_ids=[ids[0], ids[1], ids[3], ids[4]])
        later = NOW + timedelta(minutes=6)
        claimed = await _claim(session, now=later, lease=later + timedelta(minutes=5))
    assert sorted(key for group in claimed for key in group) == ["a2", "a5", "a6"]
    assert len(claimed) == 1
    async with sessions.begin() as session:
        # A new follow joins a group with room; a gone account leaves its group.
        await sources.subscribe(session, chat_id=1, source_id=ids[0], now=NOW)
        await sources.mark_gone(session, source_id=ids[2], reason="suspended")
        later = NOW + timedelta(minutes=12)
        claimed = await _claim(session, now=later, lease=later + timedelta(minutes=5))
    assert sorted(key for group in claimed for key in group) == ["a0", "a5", "a6"]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PollGroup)) == 1


async def test_settings_of_more_chats_than_one_statement_takes_are_all_read(sessions) -> None:
    async with sessions.begin() as session:
        for chat_id in range(21, 26):
            await _chat(session, chat_id, language="fr" if chat_id % 2 else "en")
    async with sessions() as session:
        found = await settings.load_settings(
            session, [21, 22, 23, 24, 25, 99], default_limit=7, chunk=2
        )
    assert sorted(found) == [21, 22, 23, 24, 25]
    assert found[21].language == "fr" and found[22].language == "en"
    assert all(s.policy.daily_limit == 7 for s in found.values())


async def test_today_s_pushes_of_many_chats_are_counted_as_one_by_one(sessions) -> None:
    async with sessions.begin() as session:
        for chat_id in (11, 12, 13):
            await _chat(session, chat_id)
        source_id, offer_ids = await _source_with_offers(session, 3)
        for chat_id in (11, 12, 13):
            await sources.subscribe(session, chat_id=chat_id, source_id=source_id, now=NOW)
        await outbox.fan_out(session, offer_ids=offer_ids, now=NOW)
        rows = (await session.scalars(select(Delivery).order_by(Delivery.id))).all()
        # chat 11: two sent this morning and one yesterday; chat 12: one sent, one held; 13: none
        sent_at = {
            (11, offer_ids[0]): NOW - timedelta(days=1),
            (11, offer_ids[1]): NOW - timedelta(hours=2),
            (11, offer_ids[2]): NOW - timedelta(hours=1),
            (12, offer_ids[0]): NOW - timedelta(hours=1),
        }
        for row in rows:
            at = sent_at.get((row.chat_id, row.offer_id or 0))
            if at is not None:
                await outbox.mark_sent(session, delivery_id=row.id, message_id=1, now=at)
            elif row.chat_id == 12:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id == row.id)
                    .values(status=DeliveryStatus.HELD, sent_at=NOW)
                )
    since = {
        11: NOW - timedelta(hours=6),
        12: NOW - timedelta(hours=6),
        13: NOW - timedelta(days=2),
    }
    async with sessions() as session:
        many = await settings.pushed_since_many(session, since, chunk=2)
        one_by_one = {
            chat_id: await settings.pushed_since(session, chat_id, start)
            for chat_id, start in since.items()
        }
    assert many == one_by_one == {11: 2, 12: 1, 13: 0}


async def test_a_sender_renews_the_leases_it_holds_and_learns_which_it_lost(sessions) -> None:
    async with sessions.begin() as session:
        await _chat(session, 1)
        await _chat(session, 2)
        source_id, offer_ids = await _source_with_offers(session, 2)
        for chat_id in (1, 2):
            await sources.subscribe(session, chat_id=chat_id, source_id=source_id, now=NOW)
        await outbox.fan_out(session, offer_ids=offer_ids, now=NOW)
    lease = NOW + timedelta(seconds=60)
    async with sessions.begin() as session:
        mine = await outbox.claim(session, now=NOW, lease_until=lease, limit=100)
    claims = {row.delivery_id: row.attempts for row in mine}
    assert len(claims) == 4
    async with sessions.begin() as session:
        # One row is sent; renewing keeps the others past the first lease.
        await outbox.mark_sent(session, delivery_id=mine[0].delivery_id, message_id=7, now=NOW)
        later = lease + timedelta(seconds=60)
        assert await outbox.renew_leases(session, claims=claims, until=later) == set()
    async with sessions.begin() as session:
        # Past the first lease, another sender finds nothing to take.
        assert (
            await outbox.claim(
                session, now=lease + timedelta(seconds=1), lease_until=later, limit=100
            )
            == []
        )
    async with sessions.begin() as session:
        # Past the renewed lease (this sender stalled), another sender takes the rest over;
        # this sender's next renewal says they are lost to it.
        stolen = await outbox.claim(
            session,
            now=later + timedelta(seconds=1),
            lease_until=later + timedelta(minutes=1),
            limit=100,
        )
        assert {row.delivery_id for row in stolen} == set(claims) - {mine[0].delivery_id}
        lost = await outbox.renew_leases(session, claims=claims, until=later + timedelta(minutes=5))
    assert lost == {row.delivery_id for row in stolen}


async def test_sqlite_writers_wait_their_turn_instead_of_failing_as_locked(
    database_url: str, sessions: Sessions
) -> None:
    """A write transaction that reads first, while a writer of another process commits,
    then writes: with SQLite's deferred BEGIN the first fails at once with "database is
    locked" (its snapshot cannot become a writer). `sessions.begin()` starts writers with
    BEGIN IMMEDIATE, so the other process's writer waits for the first to commit and both
    succeed. (Two engines: two processes, which do not share the in-process turn.)"""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has row locks and no database-wide write lock")
    other_engine = create_engine(database_url)
    other_process = create_session_factory(other_engine)
    first_read = asyncio.Event()

    async def second_writer() -> None:
        await first_read.wait()
        async with other_process.begin() as session:
            await _chat(session, 2)

    second = asyncio.create_task(second_writer())
    try:
        async with sessions.begin() as session:
            assert await session.scalar(select(func.count()).select_from(Chat)) == 0
            first_read.set()
            # The other writer cannot commit while this transaction holds the write lock.
            done, _ = await asyncio.wait({second}, timeout=0.5)
            assert not done
            await _chat(session, 1)
        await asyncio.wait_for(second, 15)
    finally:
        await other_engine.dispose()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Chat)) == 2


async def test_a_burst_of_sqlite_writers_queues_in_the_process_instead_of_timing_out(
    database_url: str,
) -> None:
    """Forty write transactions at once, each holding the write lock 30 ms (awaiting inside,
    as a service's transaction does), with SQLite's busy timeout at 0.1 s: they take turns
    in the process and all commit. Left to SQLite's busy handler, those at the back of the
    queue would give up with "database is locked" (what 250 /follow commands at once did on
    a loaded machine, with the 10 s timeout)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has row locks and no database-wide write lock")
    engine = create_engine(database_url, sqlite_busy_timeout=0.1)
    sessions = create_session_factory(engine)

    async def writer(chat_id: int) -> None:
        async with sessions.begin() as session:
            await _chat(session, chat_id)
            await asyncio.sleep(0.03)

    try:
        await asyncio.gather(*(writer(1000 + i) for i in range(40)))
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Chat)) == 40
    finally:
        await engine.dispose()


async def test_the_upgrade_merges_the_sources_two_handles_of_one_account_made(
    database_url: str,
) -> None:
    """Before sources were X accounts, @alice_jobs and (after a rename) @alice_talent were two
    sources of account 7: the migration keeps one, under the handle followed last, with every
    follower; the other keeps its offers (the outbox may point at them) and no follower."""
    from alembic import command

    from storage.migrate import alembic_config, upgrade

    # The schema before the merge (0013), whatever came after it: the rows are written with
    # explicit columns, the models' later ones (lease_owner, 0014; chats.ranking, 0015) not
    # existing yet.
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0012_handled_updates")
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine).begin() as session:
            for chat_id in (1, 2):
                await session.execute(
                    text(
                        "INSERT INTO chats (id, type, language, timezone, active, created_at, "
                        "updated_at, digest_only, digest_time, paused, timezone_shown) VALUES "
                        "(:id, 'private', 'en', 'Europe/Paris', :yes, :now, :now, :no, '19:00', "
                        ":no, :no)"
                    ),
                    {"id": chat_id, "yes": True, "no": False, "now": NOW},
                )
            for key, created in (("alice_jobs", NOW), ("alice_talent", NOW + timedelta(days=1))):
                await session.execute(
                    insert(Source).values(
                        kind="x",
                        key=key,
                        external_id="7",
                        display_name=key,
                        next_poll_at=NOW,
                        cursor="100" if key == "alice_jobs" else "90",
                        created_at=created,
                    )
                )
            old, new = (await session.scalars(select(Source.id).order_by(Source.id))).all()
            await sources.subscribe(session, chat_id=1, source_id=old, now=NOW)
            await sources.subscribe(session, chat_id=2, source_id=new, now=NOW)
            await sources.subscribe(session, chat_id=1, source_id=new, now=NOW)
            offer = Offer(
                source_id=new,
                external_id="95",
                text="An offer",
                url="https://x.com/a/95",
                author="alice_talent",
                posted_at=NOW,
                created_at=NOW,
            )
            session.add(offer)
        await asyncio.to_thread(upgrade, database_url)
        async with create_session_factory(engine)() as session:
            kept = await session.get(Source, old)
            merged = await session.get(Source, new)
            assert kept is not None and merged is not None
            assert (kept.key, kept.display_name, kept.gone, kept.cursor) == (
                "alice_talent",
                "alice_talent",
                False,
                "100",
            )
            assert merged.gone and merged.key == f"#{new}"
            followers = await session.execute(
                select(Subscription.chat_id, Subscription.source_id).order_by(Subscription.chat_id)
            )
            assert followers.all() == [(1, old), (2, old)]
            assert await session.scalar(select(func.count(Offer.id))) == 1
            again = await sources.ensure_source(
                session, kind="x", key="x", external_id="7", display_name="Alice_Talent", now=NOW
            )
            assert again == old
    finally:
        await engine.dispose()


async def test_an_account_is_one_source_whatever_handle_it_is_followed_by(sessions) -> None:
    async with sessions.begin() as session:
        first = await sources.ensure_source(
            session, kind="x", key="alice", external_id="7", display_name="alice", now=NOW
        )
        # alice renames herself alice_old; a new account (8) takes "alice"; then a lookup of
        # "alice_old" finds account 7.
        newcomer = await sources.ensure_source(
            session, kind="x", key="alice", external_id="8", display_name="Alice", now=NOW
        )
        assert newcomer != first
        vacated = await session.get(Source, first)
        assert vacated is not None and vacated.key == f"#{first}"
        again = await sources.ensure_source(
            session, kind="x", key="alice_old", external_id="7", display_name="alice_old", now=NOW
        )
        assert again == first
        found = await sources.find_sources(session, "x", ["alice", "alice_old"])
        assert {k: v.external_id for k, v in found.items()} == {"alice": "8", "alice_old": "7"}


async def test_one_process_at_a_time_has_the_digests(database_url: str, sessions: Sessions) -> None:
    """Every worker runs the digest tick; two sending one pending digest would send it twice.
    On PostgreSQL the tick is one process's at a time (an advisory lock on a connection it
    holds: a process that dies lets it go); an SQLite file serves one process."""
    from bot.digests import DIGESTS_LOCK

    other_engine = create_engine(database_url)
    other_process = create_session_factory(other_engine)
    try:
        async with sessions.exclusive(DIGESTS_LOCK) as mine:
            assert mine
            async with other_process.exclusive(DIGESTS_LOCK) as theirs:
                assert theirs is database_url.startswith("sqlite")
        async with other_process.exclusive(DIGESTS_LOCK) as theirs:
            assert theirs  # let go at the end of the first one's block
        if database_url.startswith("sqlite"):
            return
        # A process that dies (its connection ends) lets it go too.
        async with sessions.exclusive(DIGESTS_LOCK) as held:
            assert held
            # This database's lock only (other tests' databases share the server), and the
            # backend ends a moment after it is told to.
            this_lock = (
                "FROM pg_locks WHERE locktype = 'advisory' AND objid = :key "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            async with other_engine.connect() as connection:
                await connection.execute(
                    text(f"SELECT pg_terminate_backend(pid) {this_lock}"), {"key": DIGESTS_LOCK}
                )
                await connection.commit()
                for _ in range(200):
                    found = await connection.scalar(
                        text(f"SELECT count(*) {this_lock}"), {"key": DIGESTS_LOCK}
                    )
                    await connection.commit()
                    if not found:
                        break
                    await asyncio.sleep(0.05)
            async with other_process.exclusive(DIGESTS_LOCK) as theirs:
                assert theirs
    finally:
        await other_engine.dispose()
