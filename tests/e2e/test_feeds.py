"""Feeds beside X, end to end: the real bot follows RSS/Atom feeds, a Mastodon and a Bluesky
profile served by the feed stand-in (through FEED_HOSTS, as the sandbox does), on SQLite and
PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.sandbox.feeds_api import FeedStandIn
from storage.db import create_engine
from storage.models import FeedEntry, Source
from tests.e2e.harness import (
    BotProcess,
    MutedUpdates,
    Stack,
    eventually,
    eventually_async,
    feed_reads,
)

JOBS = "jobs.example"
MASTODON = "mastodon.example"


@pytest.fixture
async def feeds(stack: Stack) -> AsyncIterator[FeedStandIn]:
    """The feed stand-in, reached by the bot through FEED_HOSTS (private addresses allowed:
    the stand-in is on 127.0.0.1)."""
    async with FeedStandIn() as server:
        server.mastodon_max_age = 0  # Mastodon's one-minute cache would outlast the test
        server.add_page(JOBS, "/", "<html><body>Acme careers</body></html>")
        server.add_page("bsky.app", "/", "<html><body>Bluesky</body></html>")
        server.add_page(MASTODON, "/", "<html><body>Mastodon</body></html>")
        stack.bot.env.update(
            ALLOW_PRIVATE_FEEDS="true",
            FEED_HOSTS=server.hosts_setting(JOBS, MASTODON, "bsky.app", "board.example"),
        )
        yield server


async def _quiet(stack: Stack, feeds: FeedStandIn, *where: tuple[str, str | None]) -> None:
    """Each feed (host, path) fetched twice more, so what it shows now is stored, then the
    outbox idle: nothing more will be sent."""
    for host, path in where:
        await feed_reads(feeds, host, path, count=2)
    await stack.db.idle()


async def feed_sources(stack: Stack) -> tuple[int, int]:
    """(feed sources, remembered entries) in the database."""
    engine = create_engine(stack.database_url)
    try:
        async with engine.connect() as connection:
            sources = await connection.scalar(
                select(func.count()).select_from(Source).where(Source.kind != "x")
            )
            entries = await connection.scalar(select(func.count()).select_from(FeedEntry))
    finally:
        await engine.dispose()
    return int(sources or 0), int(entries or 0)


async def test_a_feed_a_mastodon_and_a_bluesky_profile_push_each_new_entry_once(
    stack: Stack, feeds: FeedStandIn
) -> None:
    feeds.add_feed(JOBS, "/feed.xml", fmt="rss2", title="Acme Careers", ttl_minutes=None)
    feeds.add_entry(JOBS, "/feed.xml", title="Old offer", html="<p>Posted last week</p>")
    feeds.add_mastodon_account(MASTODON, "recruteur", display_name="Recrutement Lyon")
    feeds.mastodon_post(MASTODON, "recruteur", "<p>An old toot about a job</p>")
    feeds.add_bluesky_account("acme.bsky.social", display_name="Acme on Bluesky")
    feeds.bluesky_post("acme.bsky.social", "An old skeet about a job")
    await stack.bot.start()
    user = stack.user()
    reply = await user.ask(
        f"/follow https://{JOBS}/feed.xml @recruteur@{MASTODON} acme.bsky.social", timeout=30
    )
    assert "Now following" in reply, reply
    for name in ("Acme Careers", "Recrutement Lyon", "Acme on Bluesky"):
        assert name in reply
    # Polls pass: what the feeds showed at the follow is never sent.
    everywhere = ((JOBS, "/feed.xml"), (MASTODON, None), ("bsky.app", None))
    await _quiet(stack, feeds, *everywhere)
    assert len(user.received()) == 1
    feeds.add_entry(
        JOBS,
        "/feed.xml",
        title="Développeur Python (H/F)",
        html="<p>Nous recrutons un <b>développeur</b> &amp; testeur à Lyon.</p>"
        "<ul><li>CDI</li><li>Télétravail partiel</li></ul>",
        link="https://jobs.example/offres/42",
    )
    feeds.mastodon_post(MASTODON, "recruteur", "<p>We're hiring a UX designer in Lyon</p>")
    feeds.bluesky_post("acme.bsky.social", "Hiring: data analyst, remote, apply now")
    texts = await user.wait_for(4, timeout=20)
    pushed = "\n---\n".join(texts[1:])
    assert "📰 Acme Careers" in pushed
    assert "🐘 Recrutement Lyon" in pushed
    assert "🦋" in pushed and "Acme on Bluesky" in pushed
    # HTML reduced to text before it is escaped for Telegram: no tag shows, entities decoded.
    assert "Nous recrutons un développeur & testeur à Lyon." in pushed
    assert "<b>" not in pushed and "&amp;" not in pushed
    assert "Old offer" not in pushed and "old toot" not in pushed and "old skeet" not in pushed
    # An entry edited later is not sent again; nothing is sent twice.
    feeds.edit_entry(JOBS, "/feed.xml", 1, html="<p>Nous recrutons (mis à jour)</p>")
    await _quiet(stack, feeds, *everywhere)
    assert len(user.received()) == 4, user.texts()
    listing = await user.ask("/list")
    assert "You follow 3 feeds" in listing
    assert f"@recruteur@{MASTODON}" in listing and "acme.bsky.social" in listing
    # Later polls were conditional and answered 304 (no body, nothing to parse).
    assert feeds.count(JOBS, "/feed.xml", status=304) >= 1
    reply = await user.ask(f"/unfollow https://{JOBS}/feed.xml acme.bsky.social")
    assert "Stopped following 📰 Acme Careers, 🦋" in reply, reply
    listing = await user.ask("/list")
    assert "You follow 1 feed" in listing and "Recrutement Lyon" in listing


async def test_a_page_announcing_its_feed_is_followed_through_it(
    stack: Stack, feeds: FeedStandIn
) -> None:
    feeds.add_feed(JOBS, "/rss", fmt="atom", title="Offres Acme")
    feeds.add_page(
        JOBS,
        "/carrieres",
        '<html><head><link rel="alternate" type="application/atom+xml" title="Offres" '
        'href="/rss"></head><body>Nos offres</body></html>',
    )
    await stack.bot.start()
    user = stack.user("fr")
    reply = await user.ask(f"/follow https://{JOBS}/carrieres", timeout=30)
    assert "Offres Acme" in reply, reply
    listing = await user.ask("/list")
    assert f"https://{JOBS}/rss" in listing
    feeds.add_entry(JOBS, "/rss", title="Chargé de communication", html="CDD, Nantes")
    texts = await user.wait_for(3, timeout=20)
    assert "Chargé de communication" in texts[2]


async def test_an_unreachable_feed_backs_off_is_paused_once_and_resumes(
    stack: Stack, feeds: FeedStandIn
) -> None:
    stack.bot.env["FEED_PAUSE_AFTER_SECONDS"] = "4"
    feeds.add_feed(JOBS, "/feed.xml", fmt="rss2", title="Acme Careers")
    await stack.bot.start()
    user = stack.user()
    assert "Now following" in await user.ask(f"/follow https://{JOBS}/feed.xml")
    await feed_reads(feeds, JOBS, "/feed.xml", count=1)  # a poll after the follow's fetch
    feeds.unreachable(JOBS, "/feed.xml")
    texts = await user.wait_for(2, timeout=30)
    assert "has not answered since" in texts[1], texts
    failed = [r.at for r in feeds.requests if r.path == "/feed.xml" and r.status == 0]
    gaps = [b - a for a, b in itertools.pairwise(failed)]
    # Exponential backoff: each retry waits at least twice as long as the one before (1, 2,
    # 4 … s; a little more, as polls come on the next tick after that).
    assert len(gaps) >= 2, gaps
    assert all(gap >= 0.95 * 2**i for i, gap in enumerate(gaps)), gaps
    feeds.heal(JOBS, "/feed.xml")
    feeds.add_entry(JOBS, "/feed.xml", title="Back with an offer", html="Comptable, CDI")
    texts = await user.wait_for(4, timeout=40)
    assert any("answers again" in t for t in texts[2:]), texts
    assert any("Back with an offer" in t for t in texts[2:]), texts
    await _quiet(stack, feeds, (JOBS, "/feed.xml"))
    assert sum("has not answered since" in t for t in user.texts()) == 1


async def test_emoji_written_as_surrogate_references_are_followed_and_pushed_intact(
    stack: Stack, feeds: FeedStandIn
) -> None:
    """Some generators write 🚀 as `&#55357;&#56960;` (the UTF-16 halves of it): such a feed
    answered "could not be reached" to /follow, and a followed feed that started writing so
    failed every poll until it was paused as "not answering"."""
    feeds.add_feed(
        JOBS, "/emoji.xml", fmt="rss2", title="Startup 🚀 jobs", ttl_minutes=None,
        astral_refs="decimal",
    )  # fmt: skip
    feeds.add_entry(JOBS, "/emoji.xml", title="Old offer 🚀", html="<p>Last week 🎉</p>")
    feeds.add_feed(JOBS, "/plain.xml", fmt="atom", title="Plain board", ttl_minutes=None)
    await stack.bot.start()
    user = stack.user()
    reply = await user.ask(f"/follow https://{JOBS}/emoji.xml https://{JOBS}/plain.xml", 30)
    assert "Now following" in reply and "Startup 🚀 jobs" in reply, reply
    await _quiet(stack, feeds, (JOBS, "/emoji.xml"), (JOBS, "/plain.xml"))
    # The other feed starts writing its emoji so too, in hex.
    feeds.set_astral_refs(JOBS, "/plain.xml", "hex")
    feeds.add_entry(
        JOBS,
        "/emoji.xml",
        title="Développeur Python 🚀 (H/F)",
        html="<p>On décolle 🚀 à Lyon, CDI 👩‍💻</p>",
        link="https://jobs.example/offres/7",
    )
    feeds.add_entry(JOBS, "/plain.xml", title="Designer 🎨", html="<p>Nantes, CDD 🎨</p>")
    texts = await user.wait_for(3, timeout=30)
    pushed = "\n---\n".join(texts[1:])
    assert "📰 Startup 🚀 jobs" in pushed and "Développeur Python 🚀 (H/F)" in pushed
    assert "On décolle 🚀 à Lyon, CDI 👩‍💻" in pushed
    assert "Designer 🎨" in pushed and "Nantes, CDD 🎨" in pushed
    assert "\ufffd" not in pushed and "Old offer" not in pushed
    await _quiet(stack, feeds, (JOBS, "/emoji.xml"), (JOBS, "/plain.xml"))
    assert len(user.received()) == 3, user.texts()
    assert "failed" not in stack.bot.log and "Traceback" not in stack.bot.log


async def test_a_feed_answering_with_broken_xml_is_paused_as_unreadable_not_as_silent(
    stack: Stack, feeds: FeedStandIn
) -> None:
    stack.bot.env["FEED_PAUSE_AFTER_SECONDS"] = "3"
    feeds.add_feed(JOBS, "/feed.xml", fmt="rss2", title="Acme Careers")
    await stack.bot.start()
    user = stack.user()
    assert "Now following" in await user.ask(f"/follow https://{JOBS}/feed.xml")
    await feed_reads(feeds, JOBS, "/feed.xml", count=1)
    feeds.add_raw(JOBS, "/feed.xml", b"<?xml version='1.0'?><rss><channel><title>x</ti")
    texts = await user.wait_for(2, timeout=30)
    assert "answers, but with nothing jobrelay can read as a feed" in texts[1], texts
    assert not any("has not answered" in text for text in user.texts())


async def test_private_addresses_are_refused(stack: Stack) -> None:
    async with FeedStandIn() as server:
        server.add_feed("127.0.0.1", "/feed.xml", fmt="rss2", title="Internal")
        await stack.bot.start()  # ALLOW_PRIVATE_FEEDS is not set
        user = stack.user()
        port = server.port
        for url in (
            f"http://localhost:{port}/feed.xml",
            f"http://127.1:{port}/feed.xml",
            f"http://2130706433:{port}/feed.xml",
            f"http://[::1]:{port}/feed.xml",
        ):
            reply = await user.ask(f"/follow {url}")
            assert "private or local network address" in reply, (url, reply)
        assert server.requests == []
        assert "You follow nothing" in await user.ask("/list")
    assert await feed_sources(stack) == (0, 0)


async def test_feeds_that_cannot_be_read_get_a_clear_reply_and_nothing_is_saved(
    stack: Stack, feeds: FeedStandIn
) -> None:
    feeds.add_raw(JOBS, "/broken.xml", b"<?xml version='1.0'?><rss><channel><title>x</ti")
    feeds.add_page(JOBS, "/nofeed", "<html><head><title>Jobs</title></head><body/></html>")
    feeds.big_body(JOBS, "/huge.xml", 10 * 1024 * 1024)
    feeds.redirect(JOBS, "/a", f"https://{JOBS}/b")
    feeds.redirect(JOBS, "/b", f"https://{JOBS}/a")
    feeds.fail(JOBS, "/gone.xml", 404)
    # UTF-16, where references to surrogates are not decoded: feedparser raises on them.
    feeds.add_raw(
        JOBS,
        "/utf16.xml",
        '<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel>'
        "<title>&#55357;&#56960;</title><item><title>a & b</title></item></channel></rss>".encode(
            "utf-16"
        ),
    )
    await stack.bot.start()
    user = stack.user()
    expected = {
        "/broken.xml": "not a readable RSS or Atom feed",
        "/utf16.xml": "not a readable RSS or Atom feed",
        "/nofeed": "announces no RSS or Atom feed",
        "/huge.xml": "larger than 5 MB",
        "/a": "redirects too many times",
        "/gone.xml": "does not exist",
    }
    for path, answer in expected.items():
        reply = await user.ask(f"/follow https://{JOBS}{path}", timeout=30)
        assert answer in reply, (path, reply)
        assert "Nothing was changed" in reply
    reply = await user.ask("/follow ftp://jobs.example/feed.xml")
    assert "only http:// and https://" in reply
    assert "You follow nothing" in await user.ask("/list")
    assert await feed_sources(stack) == (0, 0)
    assert not stack.bot.exited


async def test_opml_export_then_import_round_trips(stack: Stack, feeds: FeedStandIn) -> None:
    feeds.add_feed(JOBS, "/feed.xml", fmt="rss2", title="Acme Careers")
    feeds.add_feed("board.example", "/atom", fmt="atom", title="Job Board")
    feeds.add_mastodon_account(MASTODON, "recruteur", display_name="Recrutement Lyon")
    feeds.add_bluesky_account("acme.bsky.social", display_name="Acme on Bluesky")
    stack.x.add_user("acme_jobs", name="Acme Jobs")
    await stack.bot.start()
    first = stack.user()
    reply = await first.ask(
        f"/follow https://{JOBS}/feed.xml https://board.example/atom @recruteur@{MASTODON} "
        "acme.bsky.social @acme_jobs design",
        timeout=30,
    )
    assert reply.count("Now following") >= 2, reply
    before = len(first.received())
    first.say("/export")
    await eventually(lambda: len(first.received()) > before, 15, "the OPML file")
    exported = first.received()[before]
    assert exported.method == "sendDocument" and exported.file_bytes
    assert b"xmlUrl" in exported.file_bytes
    second = stack.user()
    before = len(second.received())
    stack.tg.send_message(
        second.chat_id,
        "/import",
        user_id=second.user_id,
        document=("jobrelay.opml", exported.file_bytes),
    )
    await eventually(lambda: len(second.received()) > before, 30, "the import report")
    report = second.texts()[before]
    assert "Now following" in report, report
    assert "Not understood" not in report, report
    first_list = (await first.ask("/list")).splitlines()
    second_list = (await second.ask("/list")).splitlines()
    assert sorted(first_list) == sorted(second_list)
    assert any("Acme Careers" in line for line in second_list)
    assert any("@acme_jobs" in line for line in second_list)
    # A file sent alone gets a hint; answering it with /import imports it.
    third = stack.user("fr")
    before = len(third.received())
    sent = stack.tg.send_message(
        third.chat_id,
        "",
        user_id=third.user_id,
        language_code="fr",
        document=("abonnements.opml", exported.file_bytes),
    )
    await eventually(lambda: len(third.received()) > before, 15, "the hint")
    assert "/import" in third.texts()[before]
    assert "Vous ne suivez encore rien" in await third.ask("/list")
    before = len(third.received())
    stack.tg.send_message(
        third.chat_id,
        "/import",
        user_id=third.user_id,
        language_code="fr",
        reply_to=sent["message_id"],
    )
    await eventually(lambda: len(third.received()) > before, 30, "the import report")
    assert "Vous suivez maintenant" in third.texts()[before], third.texts()[before]
    assert len((await third.ask("/list")).splitlines()) == len(first_list)
    # A file that is not OPML gets a clear answer and changes nothing.
    fourth = stack.user()
    before = len(fourth.received())
    stack.tg.send_message(
        fourth.chat_id,
        "/import",
        user_id=fourth.user_id,
        document=("notes.opml", b"<html><body>not a list</body></html>"),
    )
    await eventually(lambda: len(fourth.received()) > before, 15, "the refusal")
    assert "is not an OPML file" in fourth.texts()[before]
    assert "You follow nothing" in await fourth.ask("/list")
    # A file captioned for another bot is not ours to import.
    before = len(fourth.received())
    stack.tg.send_message(
        fourth.chat_id,
        "/import@someone_elses_bot",
        user_id=fourth.user_id,
        document=("jobrelay.opml", exported.file_bytes),
    )
    # A chat's updates are handled in order: /list is answered after the file was ignored.
    assert "You follow nothing" in await fourth.ask("/list")
    assert len(fourth.received()) == before + 1


async def test_an_import_report_is_cut_between_lines_never_inside_an_address(
    stack: Stack,
) -> None:
    """An OPML attribute may hold line breaks (`&#10;`): a refused address is quoted in one
    <code> on one line, so a long report is never cut between its <code> and </code>."""
    await stack.bot.start()
    user = stack.user()
    handles = b"".join(b'<outline url="https://x.com/nobody_%05d"/>' % i for i in range(150))
    broken = b"".join(
        b'<outline xmlUrl="ftp://a%d' % i + b"&#10;" * 110 + b'z"/>' for i in range(20)
    )
    opml = b'<?xml version="1.0"?><opml version="2.0"><head/><body>%s%s</body></opml>' % (
        handles,
        broken,
    )
    before = len(user.received())
    stack.tg.send_message(
        user.chat_id, "/import", user_id=user.user_id, document=("odd.opml", opml)
    )
    await eventually(lambda: len(user.received()) > before, 30, "the import report")
    report = "\n".join(user.texts()[before:])
    assert "Something went wrong" not in report, report[:300]
    assert "No X account is named @nobody_00000" in report
    assert "Not understood, so not added: ftp://a0 z, ftp://a1 z" in report
    assert not any("sendMessage" in error for error in stack.tg.recent_errors)


async def test_an_opml_file_naming_a_megabyte_category_is_answered_at_once(stack: Stack) -> None:
    """A category outline is looked up by its value: one of 900,000 characters (within the
    1 MB /import takes) must not hold up the bot, which serves every chat from one loop."""
    await stack.bot.start()
    user, other = stack.user(), stack.user()
    opml = (
        b'<?xml version="1.0"?><opml version="2.0"><head/><body>'
        b'<outline type="jobrelay-category" text="design" category="design"/>'
        b'<outline type="jobrelay-category" category="' + b"x" * 900_000 + b'"/>'
        b"</body></opml>"
    )
    before = len(user.received())
    stack.tg.send_message(
        user.chat_id, "/import", user_id=user.user_id, document=("big.opml", opml)
    )
    await eventually(lambda: len(user.received()) > before, 15, "the import report")
    report = user.texts()[before]
    assert "Now following the category Design" in report, report
    assert "Not understood, so not added: " + "x" * 79 + "…." in report
    assert "You follow nothing yet" in await other.ask("/list")


async def test_two_processes_fetch_each_feed_once_per_interval_and_relay_each_entry_once(
    stack: Stack, feeds: FeedStandIn
) -> None:
    """The Procfile's `worker` scaled to two on PostgreSQL: both poll feeds. A feed is claimed
    by one process at a time (FOR UPDATE SKIP LOCKED and a lease), so it is fetched once per
    POLL_INTERVAL_SECONDS (1 s here) whichever process does it, and each entry arrives once."""
    if not stack.database_url.startswith("postgresql"):
        pytest.skip("two bot processes share a database only on PostgreSQL")
    paths = [f"/feed{i}.xml" for i in range(8)]
    for path in paths:
        feeds.add_feed(JOBS, path, fmt="rss2", title=f"Board {path}")
    stack.bot.env["DEFAULT_DAILY_LIMIT"] = "50"  # every entry pushed, none held
    await stack.bot.start()
    user = stack.user()
    reply = await user.ask("/follow " + " ".join(f"https://{JOBS}{p}" for p in paths), 30)
    assert "Now following" in reply
    async with MutedUpdates(stack.tg) as relay:
        workdir = stack.workdir / "second"
        workdir.mkdir(exist_ok=True)
        second = BotProcess(
            env={**stack.bot.env, "TELEGRAM_API_URL": relay.base_url},
            workdir=workdir,
            tg=stack.tg,
        )
        await second.start()
        try:
            feeds.set_delay(JOBS, None, 0.2)  # a feed takes a moment to answer
            for path in paths:  # both processes now poll feeds that answer slowly
                await feed_reads(feeds, JOBS, path, count=1)
            feeds.clear_requests()
            for round_ in range(3):
                for n, path in enumerate(paths):
                    feeds.add_entry(
                        JOBS, path, title=f"Entry {round_}-{n}", html="CDI", guid=f"{path}#{round_}"
                    )
                await user.wait_for(1 + (round_ + 1) * len(paths), timeout=30)
            await _quiet(stack, feeds, *((JOBS, path) for path in paths))
            fetches = [r for r in feeds.requests if r.path in paths]
        finally:
            await second.stop()
        assert "Traceback" not in second.log, second.log
        print(
            "entries stored by each process:",
            stack.bot.log.count("new entr"),
            second.log.count("new entr"),
        )
    texts = user.texts()[1:]
    entries = [line for text in texts for line in text.splitlines() if line.startswith("Entry ")]
    assert sorted(entries) == sorted(f"Entry {r}-{n}" for r in range(3) for n in range(len(paths)))
    by_path: dict[str, list[float]] = {}
    for request in fetches:
        by_path.setdefault(request.path, []).append(request.at)
    again = sum(
        1 for times in by_path.values() for a, b in itertools.pairwise(sorted(times)) if b - a < 0.9
    )
    assert len(by_path) == len(paths) and again == 0, by_path


async def test_a_bot_without_x_access_follows_feeds(stack: Stack, feeds: FeedStandIn) -> None:
    """A job club with no X bill: no X_BEARER_TOKEN, feeds only."""
    del stack.bot.env["X_BEARER_TOKEN"]
    feeds.add_feed(JOBS, "/feed.xml", fmt="rss1", title="Offres RDF")
    await stack.bot.start()
    user = stack.user()
    reply = await user.ask(f"/follow https://{JOBS}/feed.xml @acme_jobs")
    assert "Now following 📰 Offres RDF" in reply, reply
    assert "no X API access configured" in reply
    feeds.add_entry(JOBS, "/feed.xml", title="Chargé de recrutement", html="CDI à Lille")
    texts = await user.wait_for(2, timeout=20)
    assert "Chargé de recrutement" in texts[1] and "CDI à Lille" in texts[1]
    assert stack.x.requests == []


async def test_a_hostile_feed_entry_is_cut_unlinked_and_freezes_no_one(
    stack: Stack, feeds: FeedStandIn
) -> None:
    """A stranger's feed: a 300 KB entry of one unbroken word, a `javascript:` link. Its
    follower gets it cut to one message with "…" and no link; nobody else waits for it."""
    feeds.add_feed(JOBS, "/hostile.xml", fmt="rss2", title="Hostile board", ttl_minutes=None)
    await stack.bot.start()
    owner, bystander = stack.user(), stack.user()
    assert "Now following" in await owner.ask(f"/follow https://{JOBS}/hostile.xml", timeout=30)
    await _quiet(stack, feeds, (JOBS, "/hostile.xml"))
    feeds.add_entry(
        JOBS,
        "/hostile.xml",
        title="Hiring",
        html="<p>" + "a@a." * 75_000 + "</p>",
        link="javascript:alert(document.cookie)",
    )
    feeds.add_entry(JOBS, "/hostile.xml", title="Tags", html="<p>" + "#" + "b" * 300_000 + "</p>")
    await feed_reads(feeds, JOBS, "/hostile.xml", count=1)
    # While the bot reads it, another person is answered.
    assert "I watch recruiters'" in await bystander.ask("/help")
    texts = await owner.wait_for(3, timeout=30)
    for text in texts[1:]:
        assert len(text) <= 4096 and "…" in text
    sent = [m for m in stack.tg.sent if m.chat_id == owner.chat_id]
    assert not any("javascript:" in (m.text or "") for m in sent)  # never reaches sendMessage


async def test_case_variants_of_a_feed_address_count_against_max_follows(
    stack: Stack, feeds: FeedStandIn
) -> None:
    # A feed address's path is case-sensitive: /jobs.xml and /JOBS.xml are two feeds, two
    # sources, and count as two follows (spelling variants must not pass the cap).
    for path in ("/jobs.xml", "/JOBS.xml", "/Jobs.xml"):
        feeds.add_feed(JOBS, path, fmt="rss2", title=f"Feed {path}", ttl_minutes=None)
    stack.bot.env["MAX_FOLLOWS_PER_CHAT"] = "1"
    await stack.bot.start()
    user = stack.user()
    assert "Now following" in await user.ask(f"/follow https://{JOBS}/jobs.xml", timeout=30)
    reply = await user.ask(f"/follow https://{JOBS}/JOBS.xml https://{JOBS}/Jobs.xml")
    assert "at most 1 X accounts and feeds; this one follows 1, and these would add 2" in reply
    assert (await feed_sources(stack))[0] == 1


async def test_a_stranger_s_own_feed_reaches_category_followers_only_once_curated(
    stack: Stack, feeds: FeedStandIn
) -> None:
    feeds.add_feed(JOBS, "/mine.xml", fmt="rss2", title="My own board", ttl_minutes=None)
    feeds.add_feed("board.example", "/offres.xml", fmt="rss2", title="Real board", ttl_minutes=None)
    stack.boards(feeds=("https://board.example/offres.xml",))
    operator = stack.user()
    stack.bot.env["ADMIN_USER_IDS"] = str(operator.user_id)
    await stack.bot.start()
    owner, seeker = stack.user(), stack.user()
    assert "Now following" in await owner.ask(f"/follow https://{JOBS}/mine.xml", timeout=30)
    await seeker.ask("/follow software")
    await _quiet(stack, feeds, (JOBS, "/mine.xml"), ("board.example", "/offres.xml"))
    offer = "We're hiring a Backend Developer (Python) in Lyon, CDI, hybrid. Apply now"
    feeds.add_entry(
        JOBS, "/mine.xml", title="Backend Developer", html=offer, link="https://evil.example/1"
    )
    feeds.add_entry(
        "board.example",
        "/offres.xml",
        title="Data Engineer (Python, SQL)",
        html="Nous recrutons un data engineer Python en CDI à Nantes, télétravail partiel.",
        link="https://board.example/o/7",
    )
    await owner.wait_for(2, timeout=20)  # its follower gets it
    await eventually(lambda: len(seeker.received()) == 2, 20, "the board's offer")
    await _quiet(stack, feeds, (JOBS, "/mine.xml"), ("board.example", "/offres.xml"))
    assert "Real board" in seeker.texts()[1]
    assert not any("evil.example" in (m.text or "") for m in stack.tg.messages_for(seeker.chat_id))
    assert len(seeker.received()) == 2  # never the stranger's feed
    reply = await operator.ask(f"/admin board add https://{JOBS}/mine.xml")
    assert "is now a job board" in reply, reply
    feeds.add_entry(
        JOBS,
        "/mine.xml",
        title="Frontend Developer",
        html="We are hiring a Frontend Engineer (TypeScript, React) in Nantes, CDI.",
        link="https://jobs.example/o/2",
    )
    await eventually(lambda: len(seeker.received()) == 3, 20, "the curated feed's offer")


def _intricate_feed(size: int) -> bytes:
    """An Atom feed of one entry whose XHTML content is `size` bytes of tiny elements:
    feedparser takes about 5 s a megabyte to rebuild and sanitize it."""
    return (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Heavy</title>'
        b'<entry><id>1</id><title>x</title><content type="xhtml">'
        b'<div xmlns="http://www.w3.org/1999/xhtml">'
        + b"<i>a</i>" * (size // 8)
        + b"</div></content></entry></feed>"
    )


def _tiny_items_feed(size: int) -> bytes:
    """A malformed feed (a bare `&`) of `size` bytes of tiny items, 100,000 of them."""
    head = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Tiny & many</title>'
    item = b"<item><title>x</title></item>"
    return head + item * ((size - len(head)) // len(item)) + b"</channel></rss>"


async def test_a_feed_too_complex_to_read_is_refused_and_holds_up_no_other_feed(
    stack: Stack, feeds: FeedStandIn
) -> None:
    """Reading a body is bounded: its first 500 entries only, within FEED_PARSE_SECONDS, in a
    worker process. A feed that would take longer is refused at /follow and recorded as a
    failure when it turns so; the feeds polled with it are relayed all the same."""
    stack.bot.env["FEED_PARSE_SECONDS"] = "2"
    heavy = _intricate_feed(4_500_000)  # about 20 s of feedparser's time
    feeds.add_raw(JOBS, "/heavy.xml", heavy, content_type="application/atom+xml")
    feeds.add_raw(JOBS, "/tiny.xml", _tiny_items_feed(3_000_000))
    paths = ["/a.xml", "/b.xml", "/turns.xml"]
    for path in paths:
        feeds.add_feed(JOBS, path, fmt="rss2", title=f"Board {path}", ttl_minutes=None)
    await stack.bot.start()
    user, other = stack.user(), stack.user()
    reply = await user.ask(f"/follow https://{JOBS}/heavy.xml", timeout=30)
    assert "takes too long to read (over 2 s)" in reply, reply
    assert "Nothing was changed" in reply
    # Its first 500 tiny items only are read: it is followed.
    reply = await other.ask(f"/follow https://{JOBS}/tiny.xml", timeout=30)
    assert "Now following 📰 Tiny & many" in reply, reply
    reply = await user.ask("/follow " + " ".join(f"https://{JOBS}{p}" for p in paths), 30)
    assert "Now following" in reply, reply
    await _quiet(stack, feeds, *((JOBS, path) for path in paths))
    feeds.add_raw(JOBS, "/turns.xml", heavy, content_type="application/atom+xml")
    await feed_reads(feeds, JOBS, "/turns.xml", count=1)
    feeds.add_entry(JOBS, "/a.xml", title="Comptable", html="CDI à Lyon, cabinet de 12")
    feeds.add_entry(JOBS, "/b.xml", title="Designer UX", html="Freelance, Nantes, 3 mois")
    texts = await user.wait_for(4, timeout=30)
    assert any("Comptable" in text for text in texts[2:]), texts
    assert any("Designer UX" in text for text in texts[2:]), texts
    # Its read ends at its budget (later than the others', which were relayed meanwhile).
    engine = create_engine(stack.database_url)
    errors: list[str | None] = []

    async def recorded() -> bool:
        async with engine.connect() as connection:
            errors.append(
                await connection.scalar(
                    select(Source.last_error).where(Source.key == f"https://{JOBS}/turns.xml")
                )
            )
        return errors[-1] is not None

    try:
        await eventually_async(recorded, 60, "the failure of the feed that turned heavy")
    finally:
        await engine.dispose()
    assert str(errors[-1]).startswith("too_complex:"), errors[-1]
    assert "Traceback" not in stack.bot.log
