"""Tests of the feed-server stand-in, over real HTTP (httpx) and checked with feedparser."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import httpx
import pytest

from bot.sandbox.feeds_api import (
    BLUESKY_FEED_SIZE,
    DEFAULT_HOST,
    FeedFormat,
    FeedRequest,
    FeedStandIn,
)

JOBS = "jobs.example"
MASTO = "mastodon.example"
BSKY = "bsky.app"
OFFER_HTML = "<p>Nous recrutons un <b>développeur</b> Python à Lyon…</p>"


@pytest.fixture
async def feeds() -> AsyncIterator[FeedStandIn]:
    async with FeedStandIn() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def fetch(
    http: httpx.AsyncClient,
    feeds: FeedStandIn,
    host: str,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Request `path` on virtual host `host` the way the bot's host map does."""
    all_headers = {"Host": host, **(headers or {})}
    return await http.request(method, feeds.local_url(path), headers=all_headers, **kwargs)


def parse(response: httpx.Response) -> Any:
    return feedparser.parse(response.content)


def jobs_feed(feeds: FeedStandIn, fmt: FeedFormat = "rss2", **kwargs: Any) -> None:
    feeds.add_feed(JOBS, "/feed.xml", fmt=fmt, title="Offres d'emploi", **kwargs)


# ----------------------------------------------------------------------------- basics


async def test_listens_on_loopback_and_builds_urls(feeds: FeedStandIn) -> None:
    assert feeds.port > 0
    assert feeds.local_url("/x") == f"http://127.0.0.1:{feeds.port}/x"
    assert feeds.url(JOBS, "/feed.xml") == "https://jobs.example/feed.xml"
    assert feeds.url("localhost", "/a") == feeds.local_url("/a")
    jobs_feed(feeds)
    feeds.add_mastodon_account(MASTO, "acme", display_name="Acme")
    feeds.add_bluesky_account("acme.bsky.social", display_name="Acme")
    feeds.add_feed(DEFAULT_HOST, "/local.xml", fmt="atom", title="Local")
    base = f"http://127.0.0.1:{feeds.port}"
    assert feeds.hosts_setting() == f"{JOBS}={base},{MASTO}={base},{BSKY}={base}"
    assert feeds.hosts_setting("Jobs.Example") == f"{JOBS}={base}"
    with pytest.raises(RuntimeError):
        await feeds.start()


async def test_virtual_hosts_are_chosen_by_host_header(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    feeds.add_feed(JOBS, "/feed.xml", fmt="rss2", title="Jobs")
    feeds.add_feed("other.example", "/feed.xml", fmt="rss2", title="Other")
    feeds.add_feed(DEFAULT_HOST, "/feed.xml", fmt="rss2", title="Default")

    assert parse(await fetch(http, feeds, "JOBS.example:443", "/feed.xml")).feed.title == "Jobs"
    assert parse(await fetch(http, feeds, "other.example", "/feed.xml")).feed.title == "Other"
    direct = await http.get(feeds.local_url("/feed.xml"))
    assert parse(direct).feed.title == "Default"
    local = await fetch(http, feeds, "localhost", "/feed.xml")
    assert parse(local).feed.title == "Default"

    missing = await fetch(http, feeds, "nowhere.example", "/feed.xml")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert (await fetch(http, feeds, JOBS, "/nope.xml")).status_code == 404
    assert (await fetch(http, feeds, JOBS, "/feed.xml", method="POST")).status_code == 405


# ----------------------------------------------------------------------------- formats


async def test_rss2_feed_as_job_boards_publish_it(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    jobs_feed(feeds, description="Nos offres", ttl_minutes=30, cache_max_age=300)
    old = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    first = feeds.add_entry(
        JOBS,
        "/feed.xml",
        title="Développeur Python (H/F)",
        html=OFFER_HTML,
        link="https://jobs.example/offres/1",
        guid="https://jobs.example/offres/1",
        published=old,
    )
    feeds.add_entry(
        JOBS,
        "/feed.xml",
        title="Data engineer",
        html="<p>CDI</p>",
        link="https://jobs.example/offres/2",
        guid="offre-2",
        published=old + timedelta(hours=1),
    )
    assert first == "https://jobs.example/offres/1"

    response = await fetch(http, feeds, JOBS, "/feed.xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert response.headers["cache-control"] == "max-age=300"
    assert "&lt;p&gt;Nous recrutons un &lt;b&gt;développeur&lt;/b&gt;" in response.text
    assert "<ttl>30</ttl>" in response.text
    assert "<pubDate>Wed, 01 May 2024 08:30:00 +0000</pubDate>" in response.text

    parsed = parse(response)
    assert parsed.bozo == 0
    assert parsed.version == "rss20"
    assert parsed.feed.title == "Offres d'emploi"
    assert parsed.feed.link == "https://jobs.example/"
    assert parsed.feed.subtitle == "Nos offres"
    assert [e.title for e in parsed.entries] == ["Data engineer", "Développeur Python (H/F)"]
    assert [e.id for e in parsed.entries] == ["offre-2", "https://jobs.example/offres/1"]
    assert parsed.entries[0].link == "https://jobs.example/offres/2"
    assert "<b>développeur</b>" in parsed.entries[1].summary
    assert parsed.entries[1].published_parsed[:5] == (2024, 5, 1, 8, 30)


async def test_entries_without_guid_or_link_render_without_them(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    formats: tuple[tuple[FeedFormat, str], ...] = (
        ("rss2", "/rss"),
        ("atom", "/atom"),
        ("rss1", "/rdf"),
    )
    for fmt, path in formats:
        feeds.add_feed(JOBS, path, fmt=fmt, title=fmt)
        key = feeds.add_entry(
            JOBS, path, title="Linked", html="<p>a</p>", link="https://jobs.example/o/7"
        )
        assert key == "#0"
        feeds.add_entry(JOBS, path, title="Bare", html="<p>b</p>")

    rss = await fetch(http, feeds, JOBS, "/rss")
    assert "<guid" not in rss.text
    assert rss.text.count("<link>") == 2  # the channel's and one item's
    parsed = parse(rss)
    assert parsed.bozo == 0
    by_title = {e.title: e for e in parsed.entries}
    assert "id" not in by_title["Bare"] and "link" not in by_title["Bare"]
    assert by_title["Linked"].link == "https://jobs.example/o/7"

    atom = await fetch(http, feeds, JOBS, "/atom")
    assert atom.text.count("<id>") == 1  # the feed's own id only
    parsed = parse(atom)
    assert parsed.bozo == 0
    assert all("id" not in e for e in parsed.entries)

    rdf = await fetch(http, feeds, JOBS, "/rdf")
    assert parse(rdf).bozo == 0
    assert rdf.text.count("<item>") == 1  # the bare entry has no rdf:about
    assert rdf.text.count('<item rdf:about="https://jobs.example/o/7">') == 1


async def test_atom_feed(feeds: FeedStandIn, http: httpx.AsyncClient) -> None:
    jobs_feed(feeds, "atom", description="Toutes les offres")
    published = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
    feeds.add_entry(
        JOBS,
        "/feed.xml",
        title="Chef de projet",
        html=OFFER_HTML,
        link="https://jobs.example/o/3",
        guid="tag:jobs.example,2024:3",
        published=published,
    )
    response = await fetch(http, feeds, JOBS, "/feed.xml")
    assert response.headers["content-type"].startswith("application/atom+xml")
    assert "<published>2024-06-03T09:00:00Z</published>" in response.text
    parsed = parse(response)
    assert parsed.bozo == 0
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Offres d'emploi"
    assert parsed.feed.id == "https://jobs.example/feed.xml"
    entry = parsed.entries[0]
    assert entry.id == "tag:jobs.example,2024:3"
    assert entry.link == "https://jobs.example/o/3"
    assert entry.content[0].type == "text/html"
    assert "<b>développeur</b>" in entry.content[0].value
    assert entry.published_parsed[:4] == (2024, 6, 3, 9)


async def test_rss1_feed(feeds: FeedStandIn, http: httpx.AsyncClient) -> None:
    feeds.add_feed("emploi.example", "/rss.rdf", fmt="rss1", title="Service public de l'emploi")
    for n in range(3):
        feeds.add_entry(
            "emploi.example",
            "/rss.rdf",
            title=f"Offre {n}",
            html=f"<p>Offre n°{n}</p>",
            link=f"https://emploi.example/offre/{n}",
            guid=f"https://emploi.example/offre/{n}",
            published=datetime(2024, 1, 1 + n, tzinfo=UTC),
        )
    response = await fetch(http, feeds, "emploi.example", "/rss.rdf")
    assert "<rdf:Seq>" in response.text
    assert response.text.count("<rdf:li ") == 3
    parsed = parse(response)
    assert parsed.bozo == 0
    assert parsed.version == "rss10"
    assert [e.title for e in parsed.entries] == ["Offre 2", "Offre 1", "Offre 0"]
    assert parsed.entries[0].link == "https://emploi.example/offre/2"
    assert parsed.entries[0].updated_parsed[:3] == (2024, 1, 3)
    assert "<p>Offre n°2</p>" in parsed.entries[0].summary


# ----------------------------------------------------------------------------- conditional GET


async def test_if_none_match_and_if_modified_since_answer_304(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    jobs_feed(feeds)
    feeds.add_entry(JOBS, "/feed.xml", title="A", html="<p>a</p>", guid="a")
    first = await fetch(http, feeds, JOBS, "/feed.xml")
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    same = await fetch(http, feeds, JOBS, "/feed.xml", headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag
    by_date = await fetch(
        http, feeds, JOBS, "/feed.xml", headers={"If-Modified-Since": last_modified}
    )
    assert by_date.status_code == 304
    older = await fetch(
        http,
        feeds,
        JOBS,
        "/feed.xml",
        headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"},
    )
    assert older.status_code == 200
    other = await fetch(http, feeds, JOBS, "/feed.xml", headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200

    feeds.add_entry(JOBS, "/feed.xml", title="B", html="<p>b</p>", guid="b")
    after_add = await fetch(http, feeds, JOBS, "/feed.xml", headers={"If-None-Match": etag})
    assert after_add.status_code == 200
    assert after_add.headers["etag"] != etag
    # Even within the same second, the change moves Last-Modified on.
    after_date = await fetch(
        http, feeds, JOBS, "/feed.xml", headers={"If-Modified-Since": last_modified}
    )
    assert after_date.status_code == 200
    assert after_date.headers["last-modified"] != last_modified

    etag2 = after_add.headers["etag"]
    feeds.edit_entry(JOBS, "/feed.xml", "a", title="A (mis à jour)", html="<p>a2</p>")
    edited = await fetch(http, feeds, JOBS, "/feed.xml", headers={"If-None-Match": etag2})
    assert edited.status_code == 200
    assert edited.headers["etag"] not in (etag, etag2)
    entry = next(e for e in parse(edited).entries if e.id == "a")
    assert entry.title == "A (mis à jour)"
    assert entry.summary == "<p>a2</p>"

    head = await fetch(http, feeds, JOBS, "/feed.xml", method="HEAD")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == edited.headers["etag"]
    assert int(head.headers["content-length"]) == len(edited.content)


async def test_unconditional_feed_has_no_validators(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    jobs_feed(feeds, conditional=False)
    response = await fetch(
        http,
        feeds,
        JOBS,
        "/feed.xml",
        headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
    )
    assert response.status_code == 200
    assert "etag" not in response.headers
    assert "last-modified" not in response.headers


async def test_astral_characters_can_be_written_as_two_surrogate_references(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    jobs_feed(feeds, astral_refs="decimal")
    feeds.add_entry(JOBS, "/feed.xml", title="Décollage 🚀", html="<p>Go 🚀</p>", guid="1")
    body = (await fetch(http, feeds, JOBS, "/feed.xml")).content
    assert b"D\xc3\xa9collage &#55357;&#56960;</title>" in body  # é stays UTF-8
    assert b"&lt;p&gt;Go &#55357;&#56960;&lt;/p&gt;" in body
    feeds.set_astral_refs(JOBS, "/feed.xml", "hex")
    body = (await fetch(http, feeds, JOBS, "/feed.xml")).content
    assert b"&#xD83D;&#xDE80;</title>" in body
    feeds.set_astral_refs(JOBS, "/feed.xml", None)
    body = (await fetch(http, feeds, JOBS, "/feed.xml")).content
    assert "Décollage 🚀</title>".encode() in body


async def test_edit_and_remove_entries_by_index_key_or_link(feeds: FeedStandIn) -> None:
    jobs_feed(feeds)
    key = feeds.add_entry(JOBS, "/feed.xml", title="x", html="x", link="https://j/1")
    feeds.add_entry(JOBS, "/feed.xml", title="y", html="y", guid="g-y")
    feeds.edit_entry(JOBS, "/feed.xml", key, title="x2")
    feeds.edit_entry(JOBS, "/feed.xml", "https://j/1", html="x3")
    feeds.edit_entry(JOBS, "/feed.xml", -1, title="y2")
    feeds.remove_entry(JOBS, "/feed.xml", 0)
    with pytest.raises(KeyError):
        feeds.edit_entry(JOBS, "/feed.xml", key, title="gone")
    with pytest.raises(KeyError):
        feeds.add_entry(JOBS, "/missing.xml", title="t", html="h")
    with pytest.raises(ValueError, match="format"):
        feeds.add_feed(JOBS, "/bad", fmt="json", title="t")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- Mastodon


async def test_mastodon_profile_feed(feeds: FeedStandIn, http: httpx.AsyncClient) -> None:
    feed_url = feeds.add_mastodon_account(MASTO, "acme", display_name="Acme Recrutement")
    assert feed_url == "https://mastodon.example/@acme.rss"
    first = feeds.mastodon_post(
        MASTO,
        "acme",
        "On recrute ! #Python #emploi https://jobs.example/offres/1",
        published=datetime(2024, 5, 1, 10, tzinfo=UTC),
    )
    second = feeds.mastodon_post(MASTO, "acme", "<p>Deuxième offre</p>")
    first_id, second_id = int(first.rsplit("/", 1)[1]), int(second.rsplit("/", 1)[1])
    assert first.startswith("https://mastodon.example/@acme/")
    assert second_id > first_id > 10**15

    response = await fetch(http, feeds, MASTO, "/@acme.rss")
    text = response.text
    assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert response.headers["cache-control"] == "max-age=60, public"
    assert 'xmlns:webfeeds="http://webfeeds.org/rss/1.0"' in text
    assert "<generator>Mastodon v4.3.0</generator>" in text
    assert "<webfeeds:icon>" in text
    assert re.search(r"<item>\s*<guid", text)
    assert "<item>\n      <title>" not in text
    assert text.count("<title>") == 2  # the channel's and the image's
    assert "&lt;p&gt;" in text

    parsed = parse(response)
    assert parsed.bozo == 0
    assert parsed.feed.title == "Acme Recrutement"
    assert parsed.feed.subtitle == "Public posts from @acme@mastodon.example"
    assert parsed.feed.link == "https://mastodon.example/@acme"
    assert [e.id for e in parsed.entries] == [second, first]
    assert [e.link for e in parsed.entries] == [second, first]
    tagged = parsed.entries[1]
    assert [t.term for t in tagged.tags] == ["Python", "emploi"]
    assert 'href="https://mastodon.example/tags/python"' in tagged.summary
    assert 'href="https://jobs.example/offres/1"' in tagged.summary
    assert "title" not in tagged

    etag = response.headers["etag"]
    assert etag.startswith('W/"')
    cached = await fetch(http, feeds, MASTO, "/@acme.rss", headers={"If-None-Match": etag})
    assert cached.status_code == 304

    profile = await fetch(http, feeds, MASTO, "/@ACME")
    assert 'type="application/rss+xml" href="https://mastodon.example/@acme.rss"' in profile.text
    unknown = await fetch(http, feeds, MASTO, "/@nobody.rss")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("text/html")
    assert "isn't here" in unknown.text


# ----------------------------------------------------------------------------- Bluesky


async def test_bluesky_handle_redirects_to_did_feed(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    did = feeds.add_bluesky_account(
        "acme.bsky.social", display_name="Acme", description="Offres d'emploi\nchaque jour"
    )
    assert re.fullmatch(r"did:plc:[a-z2-7]{24}", did)
    assert feeds.add_bluesky_account("other.bsky.social", display_name="O") != did
    url = feeds.bluesky_post(
        "acme.bsky.social",
        'On recrute un dev "senior" & <motivé>',
        published=datetime(2024, 3, 7, 19, 33, 1, tzinfo=UTC),
    )
    rkey = url.rsplit("/", 1)[1]
    assert re.fullmatch(r"[2-7a-z]{13}", rkey)

    redirect = await fetch(http, feeds, BSKY, "/profile/acme.bsky.social/rss")
    assert redirect.status_code == 302
    assert redirect.headers["location"] == f"/profile/{did}/rss"
    feeds.bluesky_absolute_redirect = True
    redirect = await fetch(http, feeds, BSKY, "/profile/acme.bsky.social/rss")
    assert redirect.headers["location"] == f"https://bsky.app/profile/{did}/rss"

    response = await fetch(http, feeds, BSKY, f"/profile/{did}/rss")
    assert response.status_code == 200
    assert "etag" not in response.headers
    assert "<title>" not in response.text.split("<item>", 1)[1]
    assert "&#34;senior&#34; &amp; &lt;motivé&gt;" in response.text
    assert "<pubDate>07 Mar 2024 19:33 +0000</pubDate>" in response.text
    parsed = parse(response)
    assert parsed.bozo == 0
    assert parsed.feed.title == "@acme.bsky.social - Acme"
    assert parsed.feed.subtitle == "Offres d'emploi\nchaque jour"
    assert parsed.feed.link == "https://bsky.app/profile/acme.bsky.social"
    entry = parsed.entries[0]
    assert entry.id == f"at://{did}/app.bsky.feed.post/{rkey}"
    assert entry.link == url
    # Bluesky's descriptions are plain text; feedparser takes "<motivé>" for a tag and drops it.
    assert entry.summary == 'On recrute un dev "senior" &'
    assert entry.published_parsed[:5] == (2024, 3, 7, 19, 33)

    # Following the redirect over the same origin keeps the Host header.
    followed = await fetch(
        http, feeds, BSKY, "/profile/acme.bsky.social/rss", follow_redirects=False
    )
    assert followed.status_code == 302
    feeds.bluesky_absolute_redirect = False
    followed = await fetch(
        http, feeds, BSKY, "/profile/acme.bsky.social/rss", follow_redirects=True
    )
    assert followed.status_code == 200
    assert parse(followed).feed.title == "@acme.bsky.social - Acme"


async def test_bluesky_feed_keeps_the_30_latest_posts(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    did = feeds.add_bluesky_account("acme.bsky.social", display_name="Acme")
    urls = [feeds.bluesky_post("acme.bsky.social", f"post {n}") for n in range(35)]
    assert sorted(urls) == urls  # rkeys grow
    parsed = parse(await fetch(http, feeds, BSKY, f"/profile/{did}/rss"))
    assert len(parsed.entries) == BLUESKY_FEED_SIZE
    assert parsed.entries[0].summary == "post 34"
    assert parsed.entries[-1].summary == "post 5"


async def test_bluesky_unknown_or_invalid_accounts(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    unknown = await fetch(http, feeds, BSKY, "/profile/nobody.bsky.social/rss")
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "account not found: nobody.bsky.social"}
    invalid = await fetch(http, feeds, BSKY, "/profile/not_a_handle/rss")
    assert invalid.status_code == 400
    no_did = await fetch(http, feeds, BSKY, "/profile/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/rss")
    assert no_did.status_code == 404


# ----------------------------------------------------------------------------- pages and raw


async def test_pages_announce_feeds_and_raw_bodies(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    feeds.add_page(
        JOBS,
        "/",
        '<html><head><link rel="alternate" type="application/rss+xml" title="Offres" '
        'href="/feed.xml"></head><body>Bienvenue</body></html>',
    )
    feeds.add_page(JOBS, "/about", "<html><body>Pas de flux</body></html>")
    feeds.add_page(JOBS, "/gone", "<p>gone</p>", status=410)
    feeds.add_raw(JOBS, "/broken.xml", b"<rss><channel><title>oops</channel>")

    home = await fetch(http, feeds, JOBS, "/")
    assert home.headers["content-type"] == "text/html; charset=utf-8"
    assert 'href="/feed.xml"' in home.text
    assert "alternate" not in (await fetch(http, feeds, JOBS, "/about")).text
    assert (await fetch(http, feeds, JOBS, "/gone")).status_code == 410
    broken = await fetch(http, feeds, JOBS, "/broken.xml")
    assert broken.headers["content-type"] == "application/rss+xml"
    assert parse(broken).bozo == 1


# ----------------------------------------------------------------------------- faults


async def test_fail_count_then_recovers(feeds: FeedStandIn, http: httpx.AsyncClient) -> None:
    jobs_feed(feeds)
    feeds.fail(JOBS, "/feed.xml", 503, count=2, body=b"<h1>Maintenance</h1>")
    statuses = [(await fetch(http, feeds, JOBS, "/feed.xml")).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert feeds.count(JOBS, "/feed.xml", status=503) == 2

    feeds.fail(JOBS, None, 500)  # the whole host, until healed
    feeds.add_page(JOBS, "/", "<p>home</p>")
    for path in ("/feed.xml", "/", "/feed.xml"):
        response = await fetch(http, feeds, JOBS, path)
        assert response.status_code == 500
    feeds.heal(JOBS)
    assert (await fetch(http, feeds, JOBS, "/feed.xml")).status_code == 200


async def test_unreachable_closes_the_connection(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    jobs_feed(feeds)
    feeds.add_page("other.example", "/", "<p>fine</p>")
    feeds.unreachable(JOBS)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await fetch(http, feeds, JOBS, "/feed.xml")
    assert (await fetch(http, feeds, "other.example", "/")).status_code == 200
    assert feeds.requests[0].status == 0
    feeds.heal(JOBS)
    assert (await fetch(http, feeds, JOBS, "/feed.xml")).status_code == 200


async def test_delay_holds_the_headers(feeds: FeedStandIn, http: httpx.AsyncClient) -> None:
    jobs_feed(feeds)
    feeds.set_delay(JOBS, "/feed.xml", 0.3)
    started = time.monotonic()
    assert (await fetch(http, feeds, JOBS, "/feed.xml")).status_code == 200
    assert time.monotonic() - started >= 0.3
    feeds.set_delay(JOBS, "/feed.xml", 5.0)
    with pytest.raises(httpx.ReadTimeout):
        await fetch(http, feeds, JOBS, "/feed.xml", timeout=0.2)
    feeds.set_delay(JOBS, "/feed.xml", 0)
    started = time.monotonic()
    assert (await fetch(http, feeds, JOBS, "/feed.xml")).status_code == 200
    assert time.monotonic() - started < 0.3


async def test_trickle_sends_headers_then_a_slow_body(
    feeds: FeedStandIn, http: httpx.AsyncClient
) -> None:
    jobs_feed(feeds)
    for n in range(20):
        feeds.add_entry(JOBS, "/feed.xml", title=f"Offre {n}", html=OFFER_HTML, guid=str(n))
    feeds.set_trickle(JOBS, "/feed.xml", 2000)
    received = 0
    started = time.monotonic()
    async with http.stream("GET", feeds.local_url("/feed.xml"), headers={"Host": JOBS}) as r:
        assert time.monotonic() - started < 0.2
        total = int(r.headers["content-length"])
        assert total > 4000
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                async for chunk in r.aiter_raw():
                    received += len(chunk)
    assert 0 < received < 2000
    feeds.set_trickle(JOBS, "/feed.xml", None)
    assert len((await fetch(http, feeds, JOBS, "/feed.xml")).content) == total


async def test_big_body_is_streamed(feeds: FeedStandIn, http: httpx.AsyncClient) -> None:
    size = 3 * 1024 * 1024 + 7
    feeds.big_body(JOBS, "/huge.xml", size)
    feeds.big_body(JOBS, "/declared.xml", 1000, declare_length=True)
    received = 0
    async with http.stream("GET", feeds.local_url("/huge.xml"), headers={"Host": JOBS}) as r:
        assert "content-length" not in r.headers
        assert r.headers["content-type"] == "application/rss+xml"
        first = b""
        async for chunk in r.aiter_raw():
            first = first or chunk
            received += len(chunk)
    assert received == size
    assert first.startswith(b'<?xml version="1.0"')
    declared = await fetch(http, feeds, JOBS, "/declared.xml")
    assert declared.headers["content-length"] == "1000"
    assert len(declared.content) == 1000
    head = await fetch(http, feeds, JOBS, "/declared.xml", method="HEAD")
    assert head.headers["content-length"] == "1000"
    assert head.content == b""


async def test_redirects_loops_and_chains(feeds: FeedStandIn, http: httpx.AsyncClient) -> None:
    jobs_feed(feeds)
    feeds.redirect(JOBS, "/a", "/b")
    feeds.redirect(JOBS, "/b", "/a", status=301)
    with pytest.raises(httpx.TooManyRedirects):
        await fetch(http, feeds, JOBS, "/a", follow_redirects=True)
    assert feeds.count(JOBS, "/a") >= 10

    for n in range(6):
        feeds.redirect(JOBS, f"/r{n}", f"/r{n + 1}" if n < 5 else "/feed.xml")
    final = await fetch(http, feeds, JOBS, "/r0", follow_redirects=True)
    assert final.status_code == 200
    assert len(final.history) == 6
    assert parse(final).feed.title == "Offres d'emploi"
    one = await fetch(http, feeds, JOBS, "/b")
    assert (one.status_code, one.headers["location"]) == (301, "/a")


async def test_requests_are_recorded(feeds: FeedStandIn, http: httpx.AsyncClient) -> None:
    jobs_feed(feeds)
    # Paths are looked up with their query string, then without; recorded with it.
    assert (await fetch(http, feeds, JOBS, "/feed.xml?utm=x")).status_code == 200
    feeds.add_feed(JOBS, "/q.xml?cat=it", fmt="rss2", title="IT")
    assert parse(await fetch(http, feeds, JOBS, "/q.xml?cat=it")).feed.title == "IT"
    assert (await fetch(http, feeds, JOBS, "/q.xml?cat=hr")).status_code == 404
    etag = (await fetch(http, feeds, JOBS, "/feed.xml")).headers["etag"]
    await fetch(http, feeds, JOBS, "/feed.xml", method="HEAD", headers={"If-None-Match": etag})

    last = feeds.requests[-1]
    assert isinstance(last, FeedRequest)
    assert (last.host, last.path, last.method, last.status) == (JOBS, "/feed.xml", "HEAD", 304)
    assert last.if_none_match == etag
    assert last.if_modified_since is None
    assert last.at <= time.time()
    assert feeds.count(JOBS) == 5
    assert feeds.count(JOBS, "/feed.xml?utm=x") == 1
    assert feeds.count(JOBS, "/q.xml?cat=hr", status=404) == 1
    assert feeds.count(JOBS, "/feed.xml") == 2
    assert feeds.count(JOBS, "/feed.xml", status=304) == 1
    assert feeds.count("other.example") == 0
    feeds.clear_requests()
    assert feeds.count(JOBS) == 0


async def test_stop_abandons_delayed_answers(http: httpx.AsyncClient) -> None:
    feeds = FeedStandIn()
    await feeds.start()
    jobs_feed(feeds)
    feeds.set_delay(JOBS, None, 30.0)
    pending = asyncio.create_task(fetch(http, feeds, JOBS, "/feed.xml"))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await feeds.stop()
    assert time.monotonic() - started < 0.4  # not the 0.5 s shutdown grace: woken at once
    try:
        response = await pending
    except httpx.HTTPError:
        pass  # the connection went down with the server
    else:
        assert response.status_code == 503
    assert feeds.requests[-1].status == 0
