"""The feed poller in-process, on a real database and the feed stand-in over loopback HTTP:
what a poll costs and what it remembers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from bot.clock import FrozenClock
from bot.feed_polling import FeedPoller
from bot.follows import Follows
from bot.i18n import Translator
from bot.render import render_notice
from bot.sandbox.feeds_api import FeedStandIn
from bot.sources.feeds import FEED_KINDS, FeedFetcher, feed_address
from storage import chats, feeds, sources
from storage.db import Sessions, create_engine, create_session_factory
from storage.models import Delivery, FeedEntry, Offer, Source, Subscription

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
HOST = "jobs.example"
CHAT = 4242


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def server() -> AsyncIterator[FeedStandIn]:
    async with FeedStandIn() as feeds:
        feeds.add_feed(HOST, "/feed.xml", fmt="rss2", title="Acme Careers")
        feeds.add_entry(HOST, "/feed.xml", title="Old offer", html="<p>before the follow</p>")
        yield feeds


@pytest.fixture
async def fetcher(server: FeedStandIn) -> AsyncIterator[FeedFetcher]:
    fetcher = FeedFetcher(allow_private=True, host_map={HOST: server.local_url("")})
    yield fetcher
    await fetcher.aclose()


async def _follow(
    sessions: Sessions,
    clock: FrozenClock,
    fetcher: FeedFetcher,
    *,
    path: str = "/feed.xml",
    already: bool = False,
) -> None:
    async with sessions.begin() as session:
        await chats.upsert_chat(
            session,
            chat_id=CHAT,
            chat_type="private",
            title=None,
            language="en",
            timezone="Europe/Paris",
            now=clock.now(),
        )
    follows = Follows(
        sessions=sessions,
        clock=clock,
        x=None,
        default_timezone="Europe/Paris",
        fetcher=fetcher,
        feed_interval_seconds=60,
    )
    address = feed_address(f"https://{HOST}{path}")
    assert address is not None
    report = await follows.follow_feeds(CHAT, [address])
    assert len(report.already if already else report.followed) == 1, report


async def _rows(sessions: Sessions) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Delivery)) or 0)


async def test_a_304_costs_no_parsing_and_new_entries_are_relayed_once(
    sessions: Sessions, server: FeedStandIn, fetcher: FeedFetcher
) -> None:
    clock = FrozenClock(NOW)
    await _follow(sessions, clock, fetcher)
    poller = FeedPoller(sessions=sessions, clock=clock, fetcher=fetcher, interval_seconds=60)
    assert fetcher.parsed == 1  # the follow's own fetch
    assert await poller.tick() == 0  # not due yet: the follow just read it
    clock.advance(timedelta(seconds=61))
    assert await poller.tick() == 0
    assert server.count(HOST, "/feed.xml", status=304) == 1
    assert fetcher.parsed == 1  # the 304 was not parsed
    server.add_entry(
        HOST,
        "/feed.xml",
        title="New offer",
        html="<p>Développeur, CDI</p>",
        guid="https://jobs.example/offers/2",
    )
    clock.advance(timedelta(seconds=61))
    assert await poller.tick() == 1
    assert fetcher.parsed == 2
    server.edit_entry(HOST, "/feed.xml", 1, html="<p>Développeur, CDI (edited)</p>")
    clock.advance(timedelta(seconds=61))
    assert await poller.tick() == 0  # an edited entry is not relayed again
    assert await _rows(sessions) == 1
    async with sessions() as session:
        remembered = await session.scalar(select(func.count()).select_from(FeedEntry))
        source = await session.scalar(select(Source).where(Source.kind == "feed"))
    assert remembered == 2
    assert source is not None and source.etag and source.error_count == 0


async def test_a_failing_feed_backs_off_then_pauses_once_and_resumes(
    sessions: Sessions, server: FeedStandIn, fetcher: FeedFetcher
) -> None:
    clock = FrozenClock(NOW)
    await _follow(sessions, clock, fetcher)
    poller = FeedPoller(
        sessions=sessions,
        clock=clock,
        fetcher=fetcher,
        interval_seconds=60,
        pause_after_seconds=3600,
    )
    server.fail(HOST, "/feed.xml", 503)
    waits: list[float] = []
    validators: list[bool] = []
    for _ in range(5):
        clock.advance(timedelta(hours=2))  # whatever the backoff, the feed is due
        await poller.tick()
        async with sessions() as session:
            source = await session.scalar(select(Source).where(Source.kind == "feed"))
            assert source is not None
            waits.append((source.next_poll_at - clock.now()).total_seconds())
            validators.append(source.etag is not None or source.last_modified is not None)
    assert waits[:4] == [60, 120, 240, 480], waits
    # After three failures in a row the validators go (in case they are the trouble).
    assert validators == [True, True, False, False, False], validators
    assert source is not None
    assert source.paused and source.error_count == 5
    # Told once: one notice row per follower, however many failures followed.
    assert await _rows(sessions) == 1
    server.heal(HOST, "/feed.xml")
    clock.advance(timedelta(hours=2))
    await poller.tick()
    async with sessions() as session:
        source = await session.scalar(select(Source).where(Source.kind == "feed"))
        assert source is not None
        assert not source.paused and source.error_count == 0 and source.failing_since is None
    assert await _rows(sessions) == 2  # and told it answers again


async def test_a_feed_s_ttl_longer_than_the_interval_is_respected(
    sessions: Sessions, server: FeedStandIn, fetcher: FeedFetcher
) -> None:
    server.add_feed(HOST, "/slow.xml", fmt="rss2", title="Weekly board", ttl_minutes=30)
    clock = FrozenClock(NOW)
    await _follow(sessions, clock, fetcher, path="/slow.xml")
    poller = FeedPoller(sessions=sessions, clock=clock, fetcher=fetcher, interval_seconds=60)
    clock.advance(timedelta(minutes=5))
    await poller.tick()
    assert server.count(HOST, "/slow.xml") == 1  # only the follow's fetch: <ttl> is 30 min
    clock.advance(timedelta(minutes=26))
    await poller.tick()
    assert server.count(HOST, "/slow.xml") == 2
    async with sessions() as session:
        source = await session.scalar(select(Source).where(Source.kind == "feed"))
    assert source is not None
    assert source.next_poll_at == clock.now() + timedelta(minutes=30)


async def test_a_feed_that_answers_slowly_is_fetched_less_often(
    sessions: Sessions, server: FeedStandIn, fetcher: FeedFetcher
) -> None:
    """One slow host must not hold a fetch slot and the end of the cycle at every interval."""
    server.add_feed(HOST, "/slow.xml", fmt="rss2", title="Slow board")
    clock = FrozenClock(NOW)
    await _follow(sessions, clock, fetcher)
    await _follow(sessions, clock, fetcher, path="/slow.xml")
    server.set_delay(HOST, "/slow.xml", 0.5)
    # 0.2 s counts as slow here (5 s in production): 0.5 s is "12.5 s", spaced by 60 × 12.5 s.
    poller = FeedPoller(
        sessions=sessions, clock=clock, fetcher=fetcher, interval_seconds=60, slow_fetch_seconds=0.2
    )
    clock.advance(timedelta(seconds=61))
    await poller.tick()
    async with sessions() as session:
        next_at = dict(
            (
                await session.execute(
                    select(Source.url, Source.next_poll_at).where(Source.kind == "feed")
                )
            ).all()
        )
    fast, slow = next_at[f"https://{HOST}/feed.xml"], next_at[f"https://{HOST}/slow.xml"]
    assert fast == clock.now() + timedelta(seconds=60)
    assert slow >= clock.now() + timedelta(minutes=12)
    clock.advance(timedelta(seconds=61))
    await poller.tick()
    assert server.count(HOST, "/slow.xml") == 2  # the follow's fetch and one poll, not two


async def test_a_feed_nobody_followed_for_days_relays_only_what_is_recent_on_return(
    sessions: Sessions, server: FeedStandIn, fetcher: FeedFetcher
) -> None:
    clock = FrozenClock(NOW)
    await _follow(sessions, clock, fetcher)
    async with sessions.begin() as session:
        await chats.deactivate_chat(session, CHAT, clock.now())  # the only follower left
    poller = FeedPoller(sessions=sessions, clock=clock, fetcher=fetcher, interval_seconds=60)
    server.add_entry(
        HOST, "/feed.xml", title="Old news", html="x", guid="g-1", published=NOW + timedelta(1)
    )
    server.add_entry(
        HOST, "/feed.xml", title="Recent", html="y", guid="g-2", published=NOW + timedelta(2.5)
    )
    clock.advance(timedelta(days=3))
    await poller.tick()
    assert server.count(HOST, "/feed.xml") == 1  # an unwatched feed is not fetched
    await _follow(sessions, clock, fetcher, already=True)  # the chat comes back
    assert await poller.tick() == 1  # only the entry of the last day
    async with sessions() as session:
        texts = list(await session.scalars(select(Offer.text)))
    assert texts == ["Recent\n\ny"]
    server.add_entry(HOST, "/feed.xml", title="Next", html="z", guid="g-3")
    clock.advance(timedelta(seconds=61))
    assert await poller.tick() == 1  # a regular poll relays every new entry, whatever its date


async def test_a_feed_repeating_an_id_or_listing_thousands_of_entries_is_still_read(
    sessions: Sessions, server: FeedStandIn, fetcher: FeedFetcher
) -> None:
    server.add_feed(HOST, "/big.xml", fmt="rss2", title="Archive board")
    for n in range(1200):
        server.add_entry(HOST, "/big.xml", title=f"Archived {n}", html="old", guid=f"a-{n}")
    clock = FrozenClock(NOW)
    await _follow(sessions, clock, fetcher, path="/big.xml")
    poller = FeedPoller(sessions=sessions, clock=clock, fetcher=fetcher, interval_seconds=60)
    offer = "We are hiring a Python developer in Lyon, CDI, apply at https://jobs.example/9"
    for _ in range(2):  # the same guid twice in one answer (broken feeds do that)
        server.add_entry(HOST, "/big.xml", title="Développeur Python", html=offer, guid="dup")
    clock.advance(timedelta(seconds=61))
    assert await poller.tick() == 1  # one offer, one row
    async with sessions() as session:
        source = await session.scalar(select(Source).where(Source.key.like("%/big.xml")))
        remembered = await session.scalar(select(func.count()).select_from(FeedEntry))
    assert source is not None and source.error_count == 0
    # Only the newest 500 entries of an answer are read (the feed lists the newest first).
    assert remembered is not None and 500 <= remembered <= 501


async def test_a_fetch_whose_lease_was_taken_over_stores_nothing(
    sessions: Sessions, server: FeedStandIn, fetcher: FeedFetcher
) -> None:
    clock = FrozenClock(NOW)
    await _follow(sessions, clock, fetcher)
    clock.advance(timedelta(minutes=10))
    mine = clock.now() + timedelta(minutes=5)
    async with sessions.begin() as session:
        [feed] = await feeds.claim_due_feeds(
            session, kinds=FEED_KINDS, now=clock.now(), limit=10, lease_until=mine
        )
        assert await feeds.primed_if_held(session, source_id=feed.source_id, lease=mine) is True
    async with sessions.begin() as session:  # this process stalled; another one claimed it
        await session.execute(
            update(Source)
            .where(Source.id == feed.source_id)
            .values(lease_until=mine + timedelta(seconds=1))
        )
    async with sessions.begin() as session:
        assert await feeds.primed_if_held(session, source_id=feed.source_id, lease=mine) is None
        unchanged = feeds.Unchanged(
            source_id=feed.source_id,
            etag='"stale"',
            last_modified=None,
            ttl=None,
            next_poll_at=clock.now() + timedelta(days=1),
        )
        await feeds.record_unchanged(session, unchanged=[unchanged], lease=mine, now=clock.now())
    async with sessions() as session:
        source = await session.get(Source, feed.source_id)
    assert source is not None and source.etag != '"stale"'  # left to the other process


async def test_recording_304s_never_deadlocks_with_a_chat_subscribing_to_those_feeds(
    database_url: str, sessions: Sessions
) -> None:
    """A chat subscribing to feeds B then A (each insert's foreign key takes a KEY SHARE lock
    on the feed) while the poller records 304s for A and B (locking both rows) must not wait
    in a circle: the poller locks with FOR NO KEY UPDATE, which a foreign key check does not
    conflict with. Found by the parallel suite: PostgreSQL aborted the poller's transaction
    with "deadlock detected" during an /import."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no row locks: its writers take turns (BEGIN IMMEDIATE)")
    lease = NOW + timedelta(minutes=5)
    async with sessions.begin() as session:
        await chats.upsert_chat(
            session,
            chat_id=CHAT,
            chat_type="private",
            title=None,
            language="en",
            timezone="Europe/Paris",
            now=NOW,
        )
        ids = [
            await feeds.create_feed(
                session,
                kind="rss",
                key=f"{HOST}/{name}.xml",
                url=f"https://{HOST}/{name}.xml",
                label=name,
                etag=None,
                last_modified=None,
                ttl=None,
                entry_keys=[],
                now=NOW,
                next_poll_at=NOW,
            )
            for name in ("a", "b")
        ]
        await session.execute(update(Source).where(Source.id.in_(ids)).values(lease_until=lease))
    first, second = ids
    unchanged = [
        feeds.Unchanged(source_id=i, etag=None, last_modified=None, ttl=None, next_poll_at=NOW)
        for i in ids
    ]
    subscribed_second = asyncio.Event()

    async def poller() -> None:
        await subscribed_second.wait()
        async with sessions.begin() as session:
            await feeds.record_unchanged(session, unchanged=unchanged, lease=lease, now=NOW)

    async def waiting_on_a_lock() -> int:
        async with sessions() as session:
            query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            return int(await session.scalar(text(query)) or 0)

    async def subscriber(recording: asyncio.Task[None]) -> None:
        async with sessions.begin() as session:
            await sources.subscribe(session, chat_id=CHAT, source_id=second, now=NOW)
            subscribed_second.set()
            # The poller either records and commits, or waits for `second`'s lock (seen only
            # in pg_stat_activity: there is no event to await).
            while not recording.done() and not await waiting_on_a_lock():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await sources.subscribe(session, chat_id=CHAT, source_id=first, now=NOW)

    recording = asyncio.create_task(poller())
    await asyncio.wait_for(asyncio.gather(subscriber(recording), recording), 20)
    async with sessions() as session:
        subscribed = await session.scalar(select(func.count()).select_from(Subscription))
    assert subscribed == 2


async def _feed_row(sessions: Sessions, path: str) -> Source:
    async with sessions() as session:
        source = await session.scalar(select(Source).where(Source.key.like(f"%{path}")))
    assert source is not None
    return source


async def test_a_feed_that_answers_with_what_cannot_be_read_is_paused_as_unreadable(
    sessions: Sessions, server: FeedStandIn, fetcher: FeedFetcher
) -> None:
    """Broken XML is no silence: its failure is recorded as what it is, and its followers
    are not told it "has not answered"."""
    clock = FrozenClock(NOW)
    await _follow(sessions, clock, fetcher)
    poller = FeedPoller(
        sessions=sessions,
        clock=clock,
        fetcher=fetcher,
        interval_seconds=60,
        pause_after_seconds=3600,
    )
    server.add_raw(HOST, "/feed.xml", b"<?xml version='1.0'?><rss><channel><title>x</ti")
    for _ in range(2):
        clock.advance(timedelta(hours=2))
        await poller.tick()
    source = await _feed_row(sessions, "/feed.xml")
    assert source.paused and source.last_error is not None
    assert source.last_error.startswith("malformed:"), source.last_error
    async with sessions() as session:
        [payload] = list(await session.scalars(select(Delivery.payload)))
    assert payload is not None
    assert payload["code"] == "feed_paused" and payload["reason"] == "unreadable"
    text = render_notice(Translator("en"), payload)
    assert "answers, but with nothing jobrelay can read as a feed" in text
    assert "has not answered" not in text


async def test_a_feed_too_complex_to_read_holds_up_none_of_the_others_of_its_tick(
    sessions: Sessions, server: FeedStandIn
) -> None:
    """A followed feed that starts serving a body that would take long to read is read
    within its budget and recorded as too complex; the feeds of the same tick are relayed."""
    fetcher = FeedFetcher(
        allow_private=True,
        host_map={HOST: server.local_url("")},
        parse_seconds=0.5,
        readers=1,  # one reader for all: the others wait for it, then get it back
    )
    try:
        clock = FrozenClock(NOW)
        paths = ["/heavy.xml", "/a.xml", "/b.xml"]
        for path in paths:
            server.add_feed(HOST, path, fmt="rss2", title=f"Board {path}")
            await _follow(sessions, clock, fetcher, path=path)
        poller = FeedPoller(sessions=sessions, clock=clock, fetcher=fetcher, interval_seconds=60)
        # One entry of 3 MB of tiny XHTML elements: about 15 s of feedparser's time.
        heavy = (
            b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Heavy</title>'
            b'<entry><id>1</id><title>x</title><content type="xhtml">'
            b'<div xmlns="http://www.w3.org/1999/xhtml">'
            + b"<i>a</i>" * 375_000
            + b"</div></content></entry></feed>"
        )
        server.add_raw(HOST, "/heavy.xml", heavy, content_type="application/atom+xml")
        for path in paths[1:]:
            server.add_entry(HOST, path, title=f"New at {path}", html="CDI", guid=f"{path}#1")
        clock.advance(timedelta(seconds=61))
        assert await poller.tick() == 2
        heavy_row = await _feed_row(sessions, "/heavy.xml")
        assert heavy_row.error_count == 1 and heavy_row.last_error is not None
        assert heavy_row.last_error.startswith("too_complex:"), heavy_row.last_error
        for path in paths[1:]:
            assert (await _feed_row(sessions, path)).error_count == 0
    finally:
        await fetcher.aclose()
