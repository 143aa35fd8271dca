"""Feeds: addresses, the address guard, and fetching from real loopback HTTP servers."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import ipaddress
import os
import signal
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest
from aiohttp import web

from bot.sources.base import SourceError, Unavailable
from bot.sources.feed_parse import cut_entries, decode_surrogate_refs, read_body
from bot.sources.feed_worker import FeedReaders
from bot.sources.feeds import (
    BLUESKY_KIND,
    FEED_KIND,
    MASTODON_KIND,
    Entry,
    Feed,
    FeedAddress,
    FeedAddressError,
    FeedFetcher,
    FeedHttpError,
    FeedRefused,
    FeedTimeout,
    FeedTooComplex,
    FeedTooLarge,
    FeedUnreachable,
    MalformedFeed,
    NotAFeed,
    NotModified,
    TooManyRedirects,
    feed_address,
    html_to_text,
    is_public_address,
    parse_host_map,
    resolve_public,
    to_post,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RSS2 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
<channel>
  <title>Acme &amp; Co jobs</title>
  <link>https://jobs.example/</link>
  <ttl>60</ttl>
  <item>
    <title>D\xc3\xa9veloppeur Python</title>
    <link>https://jobs.example/offers/1</link>
    <guid isPermaLink="false">offer-1</guid>
    <description>&lt;p&gt;CDI &#224; Lyon
      &amp;amp; t\xc3\xa9l\xc3\xa9travail&lt;/p&gt;</description>
    <pubDate>Tue, 04 Mar 2025 09:30:00 +0100</pubDate>
  </item>
  <item>
    <title>Data engineer</title>
    <link>https://jobs.example/offers/2</link>
    <description>Remote, &lt;b&gt;senior&lt;/b&gt;</description>
  </item>
  <item>
    <title>No link nor guid</title>
    <description>Call us</description>
  </item>
</channel>
</rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="text">Recruiter on Atom</title>
  <link rel="alternate" href="https://atom.example/"/>
  <id>urn:uuid:feed</id>
  <updated>2025-03-04T10:00:00Z</updated>
  <entry>
    <title type="html">Ing&#233;nieur &lt;b&gt;QA&lt;/b&gt;</title>
    <id>tag:atom.example,2025:1</id>
    <link rel="alternate" href="https://atom.example/1"/>
    <updated>2025-03-04T10:00:00Z</updated>
    <content type="html">&lt;ul&gt;&lt;li&gt;Paris&lt;/li&gt;
      &lt;li&gt;CDI&lt;/li&gt;&lt;/ul&gt;</content>
  </entry>
</feed>
"""

RSS1 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/"
         xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
  <channel rdf:about="https://rdf.example/">
    <title>RDF jobs</title>
    <link>https://rdf.example/</link>
    <sy:updatePeriod>daily</sy:updatePeriod>
    <sy:updateFrequency>4</sy:updateFrequency>
    <items><rdf:Seq><rdf:li rdf:resource="https://rdf.example/a"/></rdf:Seq></items>
  </channel>
  <item rdf:about="https://rdf.example/a">
    <title>Analyste</title>
    <link>https://rdf.example/a</link>
    <description>Bordeaux</description>
    <dc:date>2025-03-01T08:00:00Z</dc:date>
  </item>
</rdf:RDF>
"""

MASTODON_RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Acme Jobs</title><link>https://mastodon.example/@acme</link>
<item><guid isPermaLink="true">https://mastodon.example/@acme/1</guid>
<link>https://mastodon.example/@acme/1</link><pubDate>Wed, 05 Mar 2025 12:00:00 +0000</pubDate>
<description>&lt;p&gt;On recrute !&lt;/p&gt;&lt;p&gt;Dev &lt;a href="https://acme.example"&gt;acme.example&lt;/a&gt;&lt;/p&gt;</description>
</item></channel></rss>
"""


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class FeedServer:
    """A loopback HTTP server whose answers each test sets per path."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.path_qs, dict(request.headers)))
        handler = self.routes.get(request.path_qs) or self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="no such route")
        return await handler(request)

    def body(self, path: str, data: bytes, content_type: str = "application/rss+xml") -> None:
        async def answer(request: web.Request) -> web.StreamResponse:
            return web.Response(body=data, content_type=content_type)

        self.routes[path] = answer

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        async def answer(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": location})

        self.routes[path] = answer


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    feeds = FeedServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", feeds.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    feeds.port = runner.addresses[0][1]
    yield feeds
    feeds.release.set()
    await runner.cleanup()


@pytest.fixture
async def fetcher() -> AsyncIterator[FeedFetcher]:
    client = FeedFetcher(allow_private=True, timeout=5.0)
    yield client
    await client.aclose()


async def fetch_feed(fetcher: FeedFetcher, url: str, *, discover: bool = False) -> Feed:
    result = await fetcher.fetch(url, discover=discover)
    assert isinstance(result, Feed)
    return result


# Addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        (
            "https://Jobs.Example/feed.xml?lang=fr#top",
            FeedAddress(
                FEED_KIND,
                "https://jobs.example/feed.xml?lang=fr",
                "https://jobs.example/feed.xml?lang=fr",
            ),
        ),
        (
            "HTTP://jobs.example:80/Feed",
            FeedAddress(FEED_KIND, "http://jobs.example/Feed", "http://jobs.example/Feed"),
        ),
        (
            "https://jobs.example:8443/rss",
            FeedAddress(
                FEED_KIND, "https://jobs.example:8443/rss", "https://jobs.example:8443/rss"
            ),
        ),
        (
            "https://jobs.example",
            FeedAddress(FEED_KIND, "https://jobs.example/", "https://jobs.example/"),
        ),
        (
            "https://emploi.bücher.example/flux",
            FeedAddress(
                FEED_KIND,
                "https://emploi.xn--bcher-kva.example/flux",
                "https://emploi.xn--bcher-kva.example/flux",
            ),
        ),
        (
            "https://mastodon.example/@AcmeJobs",
            FeedAddress(
                MASTODON_KIND,
                "@acmejobs@mastodon.example",
                "https://mastodon.example/@acmejobs.rss",
            ),
        ),
        (
            "https://mastodon.example/@acme_jobs.rss",
            FeedAddress(
                MASTODON_KIND,
                "@acme_jobs@mastodon.example",
                "https://mastodon.example/@acme_jobs.rss",
            ),
        ),
        (
            "@acme@Mastodon.Example",
            FeedAddress(
                MASTODON_KIND, "@acme@mastodon.example", "https://mastodon.example/@acme.rss"
            ),
        ),
        (
            "@acme@social.example:8443",
            FeedAddress(
                MASTODON_KIND,
                "@acme@social.example:8443",
                "https://social.example:8443/@acme.rss",
            ),
        ),
        (
            "https://bsky.app/profile/Acme.bsky.social",
            FeedAddress(
                BLUESKY_KIND, "acme.bsky.social", "https://bsky.app/profile/acme.bsky.social/rss"
            ),
        ),
        (
            "https://bsky.app/profile/jobs.acme.example/rss",
            FeedAddress(
                BLUESKY_KIND, "jobs.acme.example", "https://bsky.app/profile/jobs.acme.example/rss"
            ),
        ),
        (
            "acme-jobs.bsky.social",
            FeedAddress(
                BLUESKY_KIND,
                "acme-jobs.bsky.social",
                "https://bsky.app/profile/acme-jobs.bsky.social/rss",
            ),
        ),
        (
            "@Acme.bsky.social",
            FeedAddress(
                BLUESKY_KIND, "acme.bsky.social", "https://bsky.app/profile/acme.bsky.social/rss"
            ),
        ),
        (
            "https://www.youtube.com/@acme",
            FeedAddress(
                FEED_KIND, "https://www.youtube.com/@acme", "https://www.youtube.com/@acme"
            ),
        ),
    ],
)
def test_feed_address_reads_urls_and_profiles(word: str, expected: FeedAddress) -> None:
    assert feed_address(word) == expected


@pytest.mark.parametrize(
    "word",
    [
        "@acme_jobs",
        "software",
        "python,remote",
        "https://x.com/acme",
        "https://twitter.com/acme",
        "https://www.x.com/acme/status/1",
        "acme@jobs.example",
        "bsky.social",
    ],
)
def test_feed_address_leaves_words_that_are_not_feeds(word: str) -> None:
    assert feed_address(word) is None


@pytest.mark.parametrize(
    ("word", "code"),
    [
        ("ftp://jobs.example/feed", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("feed://jobs.example/rss", "scheme"),
        ("https://", "url"),
        ("https:///feed", "url"),
        ("https://jobs.example:99999/feed", "url"),
        ("https://jobs.example:http/feed", "url"),
        ("https://jobs.example/" + "a" * 1000, "url"),
        ("https://jobs.example/a b", "url"),
        ("https://user:secret@jobs.example/feed", "url"),
        ("https://jo!bs.example/feed", "url"),
        ("https://[zz::1]/feed", "url"),
        ("@acme@localhost", "mastodon"),
        ("@ac-me@mastodon.example", "mastodon"),
        ("@" + "a" * 31 + "@mastodon.example", "mastodon"),
        ("@acme@mastodon.example:0", "mastodon"),
        ("-acme.bsky.social", "bluesky"),
        ("ac_me.bsky.social", "bluesky"),
        ("https://bsky.app/profile/not_a_handle", "bluesky"),
    ],
)
def test_feed_address_refuses_malformed_feeds(word: str, code: str) -> None:
    with pytest.raises(FeedAddressError) as caught:
        feed_address(word)
    assert caught.value.code == code
    assert isinstance(caught.value, ValueError)


def test_host_map_setting_is_parsed_and_bad_entries_are_explained() -> None:
    assert parse_host_map("") == {}
    assert parse_host_map("Jobs.Example=http://127.0.0.1:41234/, bsky.app=http://127.0.0.1:5") == {
        "jobs.example": "http://127.0.0.1:41234",
        "bsky.app": "http://127.0.0.1:5",
    }
    for bad in ("jobs.example", "jobs.example=ftp://127.0.0.1:1", "a=http://127.0.0.1:1/path"):
        with pytest.raises(ValueError, match="host=http://IP:PORT"):
            parse_host_map(bad)


# The address guard --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "0.0.0.0",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fec0::1",
        "fd00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::",  # 6to4 of 192.168.1.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2001:db8::1",
    ],
)
def test_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1", "64:ff9b::101:101"],
)
def test_public_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("host", ["localhost", "127.1", "2130706433", "::1", "[::1]", "127.0.0.1"])
async def test_loopback_spellings_are_refused_unless_private_is_allowed(host: str) -> None:
    with pytest.raises(FeedRefused) as caught:
        await resolve_public(host, 80, allow_private=False)
    assert caught.value.code == "private"
    addresses = await resolve_public(host, 80, allow_private=True)
    assert all(ipaddress.ip_address(one).is_loopback for one in addresses)


async def test_a_name_that_does_not_resolve_is_unreachable() -> None:
    with pytest.raises(FeedUnreachable):
        await resolve_public("no-such-host.invalid", 80, allow_private=False)


async def test_a_fetch_to_loopback_is_refused_before_any_request(server: FeedServer) -> None:
    server.body("/feed", RSS2)
    client = FeedFetcher()
    try:
        for url in (f"{server.url}/feed", f"http://localhost:{server.port}/feed"):
            with pytest.raises(FeedRefused) as caught:
                await client.fetch(url)
            assert caught.value.code == "private"
    finally:
        await client.aclose()
    assert server.seen == []
    assert client.requests == 0


async def test_host_map_routes_to_the_mapped_server_and_keeps_the_host_header(
    server: FeedServer,
) -> None:
    server.body("/feed.xml", RSS2)
    server.redirect("/old", "/feed.xml", status=301)
    client = FeedFetcher(allow_private=True, host_map={"jobs.example": server.url})
    try:
        feed = await fetch_feed(client, "https://jobs.example/old")
    finally:
        await client.aclose()
    assert feed.url == "https://jobs.example/old"
    assert feed.title == "Acme & Co jobs"
    assert [(one.path, one.headers["Host"]) for one in server.seen] == [
        ("/old", "jobs.example"),
        ("/feed.xml", "jobs.example"),
    ]
    assert client.requests == 2


async def test_each_redirect_hop_is_routed_and_resolved_again(server: FeedServer) -> None:
    server.redirect("/profile/acme.bsky.social/rss", "https://bsky.app/profile/did:plc:x/rss")
    server.body("/profile/did:plc:x/rss", MASTODON_RSS)
    server.redirect("/gone", "http://no-such-host.invalid/feed")
    client = FeedFetcher(
        allow_private=True, host_map={"jobs.example": server.url, "bsky.app": server.url}
    )
    try:
        feed = await fetch_feed(client, "https://bsky.app/profile/acme.bsky.social/rss")
        with pytest.raises(FeedUnreachable):
            await client.fetch("https://jobs.example/gone")
    finally:
        await client.aclose()
    assert feed.url == "https://bsky.app/profile/acme.bsky.social/rss"
    assert [(one.path, one.headers["Host"]) for one in server.seen] == [
        ("/profile/acme.bsky.social/rss", "bsky.app"),
        ("/profile/did:plc:x/rss", "bsky.app"),
        ("/gone", "jobs.example"),
    ]


async def test_an_https_route_speaks_tls_to_the_checked_address(server: FeedServer) -> None:
    # The loopback server speaks plain HTTP: the TLS handshake fails, which shows the request
    # went out as TLS to the mapped address (the name is kept for SNI and the certificate).
    client = FeedFetcher(
        allow_private=True, host_map={"jobs.example": f"https://127.0.0.1:{server.port}"}
    )
    try:
        with pytest.raises(FeedUnreachable):
            await client.fetch("http://jobs.example/feed.xml")
    finally:
        await client.aclose()
    assert client.requests == 1


async def test_a_mapped_host_still_goes_through_the_guard(server: FeedServer) -> None:
    client = FeedFetcher(host_map={"jobs.example": server.url})
    try:
        with pytest.raises(FeedRefused):
            await client.fetch("https://jobs.example/feed.xml")
    finally:
        await client.aclose()
    assert server.seen == []


# Parsing ------------------------------------------------------------------------------------


async def test_rss2_is_read_with_plain_text_dates_and_ttl(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.body("/rss", RSS2)
    feed = await fetch_feed(fetcher, f"{server.url}/rss")
    assert (feed.title, feed.link, feed.ttl) == (
        "Acme & Co jobs",
        "https://jobs.example/",
        timedelta(minutes=60),
    )
    first, second, third = feed.entries
    assert first.id == "offer-1"
    assert first.key == hashlib.sha256(b"offer-1").hexdigest()
    assert first.title == "Développeur Python"
    assert first.text == "CDI à Lyon & télétravail"
    assert first.url == "https://jobs.example/offers/1"
    assert first.published == datetime(2025, 3, 4, 8, 30, tzinfo=UTC)
    assert second.id == "https://jobs.example/offers/2"  # no guid: the link
    assert second.text == "Remote, senior"
    assert second.published is None
    assert third.id.startswith("sha256:")
    assert third.url == "https://jobs.example/"  # no link: the feed's
    assert len(third.key) == 64


async def test_atom_is_read(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.body("/atom", ATOM, "application/atom+xml")
    feed = await fetch_feed(fetcher, f"{server.url}/atom")
    assert feed.title == "Recruiter on Atom"
    (entry,) = feed.entries
    assert entry == Entry(
        id="tag:atom.example,2025:1",
        key=hashlib.sha256(b"tag:atom.example,2025:1").hexdigest(),
        title="Ingénieur QA",
        text="• Paris\n• CDI",
        url="https://atom.example/1",
        published=datetime(2025, 3, 4, 10, 0, tzinfo=UTC),
    )
    assert feed.ttl is None


async def test_rss1_is_read_with_its_update_period(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.body("/rdf", RSS1, "application/rdf+xml")
    feed = await fetch_feed(fetcher, f"{server.url}/rdf")
    assert feed.title == "RDF jobs"
    assert [(one.title, one.text, one.url) for one in feed.entries] == [
        ("Analyste", "Bordeaux", "https://rdf.example/a")
    ]
    assert feed.entries[0].published == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    assert feed.ttl == timedelta(hours=6)  # daily, 4 times


async def test_mastodon_items_have_no_title_and_become_posts(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.body("/@acme.rss", MASTODON_RSS)
    feed = await fetch_feed(fetcher, f"{server.url}/@acme.rss")
    (entry,) = feed.entries
    assert entry.title == ""
    assert entry.text == "On recrute !\n\nDev acme.example"
    post = to_post("@acme@mastodon.example", entry)
    assert post.text == "On recrute !\n\nDev acme.example"
    assert post.external_id == entry.key
    assert post.author == "@acme@mastodon.example"
    assert post.url == "https://mastodon.example/@acme/1"
    assert post.posted_at == datetime(2025, 3, 5, 12, 0, tzinfo=UTC)


def test_a_post_is_headed_by_its_title_unless_the_text_starts_with_it() -> None:
    entry = Entry("i", "k" * 64, "Dev Python", "CDI à Lyon", "https://j.example/1", None)
    assert to_post("Acme", entry).text == "Dev Python\n\nCDI à Lyon"
    assert to_post("Acme", Entry("i", "k", "Dev", "Dev Python, Lyon", "u", None)).text == (
        "Dev Python, Lyon"
    )
    assert to_post("Acme", Entry("i", "k", "Only a title", "", "u", None)).text == "Only a title"


async def test_entry_ids_are_stable_across_fetches(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.body("/rss", RSS2)
    first = await fetch_feed(fetcher, f"{server.url}/rss")
    second = await fetch_feed(fetcher, f"{server.url}/rss")
    assert [one.id for one in first.entries] == [one.id for one in second.entries]
    assert [one.key for one in first.entries] == [one.key for one in second.entries]
    assert len({one.key for one in first.entries}) == 3


async def test_validators_are_returned_and_a_304_is_not_parsed(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    async def conditional(request: web.Request) -> web.StreamResponse:
        headers = {
            "ETag": '"v1"',
            "Last-Modified": "Tue, 04 Mar 2025 09:00:00 GMT",
            "Cache-Control": "public, max-age=7200",
        }
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers=headers)
        return web.Response(body=RSS2, headers=headers, content_type="application/rss+xml")

    server.routes["/rss"] = conditional
    feed = await fetch_feed(fetcher, f"{server.url}/rss")
    assert (feed.etag, feed.last_modified) == ('"v1"', "Tue, 04 Mar 2025 09:00:00 GMT")
    assert feed.ttl == timedelta(hours=2)  # max-age beats the feed's 60-minute <ttl>
    assert fetcher.parsed == 1
    again = await fetcher.fetch(
        f"{server.url}/rss", etag=feed.etag, last_modified=feed.last_modified
    )
    assert again == NotModified(
        etag='"v1"', last_modified="Tue, 04 Mar 2025 09:00:00 GMT", ttl=timedelta(hours=2)
    )
    assert fetcher.parsed == 1
    assert server.seen[1].headers["If-None-Match"] == '"v1"'
    assert server.seen[1].headers["If-Modified-Since"] == "Tue, 04 Mar 2025 09:00:00 GMT"


# Limits -------------------------------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


async def test_a_body_announced_too_large_is_refused(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.body("/big", b"<rss>" + b" " * TEN_MB + b"</rss>")
    with pytest.raises(FeedTooLarge) as caught:
        await fetcher.fetch(f"{server.url}/big")
    assert caught.value.code == "too_large"
    assert fetcher.parsed == 0


async def test_a_body_without_length_is_cut_when_too_large(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b" " * (1024 * 1024)
        for _ in range(10):
            await response.write(chunk)
        await response.write_eof()
        return response

    server.routes["/big"] = chunked
    with pytest.raises(FeedTooLarge):
        await fetcher.fetch(f"{server.url}/big")
    assert fetcher.parsed == 0


def _serve_encoded(server: FeedServer, path: str, body: bytes, encoding: str) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=body,
            headers={"Content-Type": "application/rss+xml", "Content-Encoding": encoding},
        )

    server.routes[path] = answer


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


async def test_compressed_feeds_are_read_whatever_deflate_they_use(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    for path, body, encoding in [
        ("/gzip", _gzip(RSS2), "gzip"),
        ("/zlib", zlib.compress(RSS2), "deflate"),
        ("/raw", raw.compress(RSS2) + raw.flush(), "deflate"),
        ("/twice", _gzip(_gzip(RSS2)), "gzip, gzip"),
    ]:
        _serve_encoded(server, path, body, encoding)
        feed = await fetcher.fetch(f"{server.url}{path}")
        assert isinstance(feed, Feed) and feed.title == "Acme & Co jobs", path
    assert server.seen[0].headers["Accept-Encoding"] == "gzip, deflate"


async def test_a_gzip_bomb_is_refused_on_decoded_bytes_within_bounded_memory(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    # 800 MB of spaces, compressed twice: under a kilobyte on the wire.
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    layer = b"".join(inner.compress(b" " * (8 * 1024 * 1024)) for _ in range(100)) + inner.flush()
    bomb = _gzip(layer)
    assert len(bomb) < 10_000
    _serve_encoded(server, "/bomb", bomb, "gzip, gzip")
    tracemalloc.start()
    try:
        with pytest.raises(FeedTooLarge) as caught:
            await fetcher.fetch(f"{server.url}/bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == "too_large"  # the user is told it is larger than 5 MB
    assert peak < 100 * 1024 * 1024, f"{peak / 1e6:.0f} MB"
    assert fetcher.parsed == 0


async def test_three_layers_of_compression_and_unknown_ones_are_refused(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    _serve_encoded(server, "/three", _gzip(_gzip(_gzip(RSS2))), "gzip, gzip, gzip")
    with pytest.raises(FeedTooLarge):
        await fetcher.fetch(f"{server.url}/three")
    _serve_encoded(server, "/br", RSS2, "br")
    with pytest.raises(MalformedFeed):
        await fetcher.fetch(f"{server.url}/br")
    _serve_encoded(server, "/broken", b"not gzip at all", "gzip")
    with pytest.raises(MalformedFeed):
        await fetcher.fetch(f"{server.url}/broken")
    assert fetcher.parsed == 0


async def test_a_feed_declaring_entities_is_refused_unparsed(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    laughs = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY a "lol">
  <!entity b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
]>
<rss version="2.0"><channel><title>&b;</title></channel></rss>"""
    server.body("/laughs", laughs)
    with pytest.raises(FeedRefused) as caught:
        await fetcher.fetch(f"{server.url}/laughs")
    assert caught.value.code == "entities"
    assert fetcher.parsed == 0


async def test_a_slow_server_times_out(server: FeedServer) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(server.release.wait(), 3)
        return web.Response(body=RSS2)

    server.routes["/slow"] = slow
    client = FeedFetcher(allow_private=True, timeout=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(FeedTimeout) as caught:
            await client.fetch(f"{server.url}/slow")
    finally:
        await client.aclose()
    assert time.monotonic() - started < 2.0
    assert caught.value.code == "timeout"
    assert isinstance(caught.value, Unavailable)


async def test_a_trickling_body_is_cut_by_the_overall_timeout(server: FeedServer) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        await response.write(b"<rss><channel><title>t</title>")
        while not server.release.is_set():
            try:
                await response.write(b" ")
            except ConnectionError:
                break
            await asyncio.sleep(0.05)
        return response

    server.routes["/trickle"] = trickle
    client = FeedFetcher(allow_private=True, timeout=0.6)
    started = time.monotonic()
    try:
        with pytest.raises(FeedTimeout):
            await client.fetch(f"{server.url}/trickle")
    finally:
        await client.aclose()
    assert time.monotonic() - started < 1.5


async def test_redirects_are_followed_up_to_five(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.body("/feed", RSS2)
    for hop in range(1, 6):
        server.redirect(f"/r{hop}", f"/r{hop + 1}" if hop < 5 else "/feed")
    feed = await fetch_feed(fetcher, f"{server.url}/r1")
    assert feed.url == f"{server.url}/r1"
    assert len(server.seen) == 6


async def test_a_sixth_redirect_is_refused(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.body("/feed", RSS2)
    for hop in range(1, 7):
        server.redirect(f"/r{hop}", f"{server.url}/r{hop + 1}" if hop < 6 else "/feed")
    with pytest.raises(TooManyRedirects) as caught:
        await fetcher.fetch(f"{server.url}/r1")
    assert caught.value.code == "redirects"
    assert len(server.seen) == 6


async def test_a_redirect_loop_is_refused(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.redirect("/a", "/b")
    server.redirect("/b", "/a")
    with pytest.raises(TooManyRedirects):
        await fetcher.fetch(f"{server.url}/a")
    assert [one.path for one in server.seen] == ["/a", "/b"]


async def test_a_redirect_to_another_scheme_is_refused(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.redirect("/feed", "ftp://jobs.example/feed.xml")
    with pytest.raises(FeedRefused) as caught:
        await fetcher.fetch(f"{server.url}/feed")
    assert caught.value.code == "scheme"


# Not feeds ----------------------------------------------------------------------------------

PAGE_WITH_FEED = b"""<!DOCTYPE html><html><head><title>Acme careers</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/feed+json" href="/feed.json">
<link rel="alternate" type="application/rss+xml" title="Jobs" href="feeds/jobs.xml">
</head><body><p>Careers</p></body></html>"""
PAGE_WITHOUT_FEED = b"<!doctype html><html><head><title>Acme</title></head><body>Hi</body></html>"


async def test_an_html_page_announcing_a_feed_is_followed_when_discovering(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.body("/careers/", PAGE_WITH_FEED, "text/html")
    server.body("/careers/feeds/jobs.xml", RSS2)
    feed = await fetch_feed(fetcher, f"{server.url}/careers/", discover=True)
    assert feed.url == f"{server.url}/careers/feeds/jobs.xml"
    assert feed.title == "Acme & Co jobs"
    assert fetcher.requests == 2


async def test_an_html_page_is_not_a_feed_without_discovery_or_feed_link(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.body("/careers/", PAGE_WITH_FEED, "text/html")
    server.body("/plain", PAGE_WITHOUT_FEED, "text/html")
    with pytest.raises(NotAFeed) as caught:
        await fetcher.fetch(f"{server.url}/careers/")
    assert caught.value.code == "not_a_feed"
    with pytest.raises(NotAFeed):
        await fetcher.fetch(f"{server.url}/plain", discover=True)
    assert len(server.seen) == 2


async def test_a_feed_served_as_html_is_still_a_feed(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.body("/mislabelled", RSS2, "text/html")
    feed = await fetch_feed(fetcher, f"{server.url}/mislabelled", discover=True)
    assert feed.entries[0].title == "Développeur Python"
    assert fetcher.requests == 1


async def test_broken_xml_is_malformed(server: FeedServer, fetcher: FeedFetcher) -> None:
    server.body("/broken", b'<?xml version="1.0"?><rss><channel><item><title>a</ti')
    with pytest.raises(MalformedFeed) as caught:
        await fetcher.fetch(f"{server.url}/broken")
    assert caught.value.code == "malformed"


async def test_a_lenient_parse_with_entries_is_accepted(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.body("/loose", b"<rss><channel><title>Loose & easy</title><item><title>A</title>")
    feed = await fetch_feed(fetcher, f"{server.url}/loose")
    assert feed.title == "Loose & easy"


async def test_a_body_that_is_not_xml_is_not_a_feed(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.body("/json", b'{"version": "https://jsonfeed.org/version/1.1"}', "application/json")
    with pytest.raises(NotAFeed):
        await fetcher.fetch(f"{server.url}/json")


@pytest.mark.parametrize("status", [404, 410, 500, 503])
async def test_http_errors_carry_their_status(
    server: FeedServer, fetcher: FeedFetcher, status: int
) -> None:
    async def failing(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text="nope")

    server.routes["/feed"] = failing
    with pytest.raises(FeedHttpError) as caught:
        await fetcher.fetch(f"{server.url}/feed")
    assert caught.value.status == status
    assert caught.value.code == "http"
    assert caught.value.transient == (status >= 500)
    assert isinstance(caught.value, SourceError)


async def test_a_closed_port_is_unreachable(fetcher: FeedFetcher) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FeedUnreachable) as caught:
        await fetcher.fetch(f"http://127.0.0.1:{port}/feed")
    assert caught.value.code == "unreachable"


# Surrogate references, the entry cap and the reading budget ---------------------------------

ROCKET = "\U0001f680"  # 🚀, U+1F680: the UTF-16 halves D83D and DE80 (55357 and 56960)


@pytest.mark.parametrize(
    ("written", "read"),
    [
        (b"&#55357;&#56960;", b"&#128640;"),
        (b"&#xD83D;&#xDE80;", b"&#128640;"),
        (b"&#xd83d;&#Xde80;", b"&#128640;"),
        (b"&#0055357;&#x0DE80;", b"&#128640;"),  # leading zeros, decimal then hex
        (b"&amp;#55357;&amp;#56960;", b"&amp;#128640;"),  # inside escaped HTML
        (b"a&#55357;b", b"ab"),  # a lone high half encodes nothing
        (b"a&#56960;b", b"ab"),  # a lone low half
        (b"&#56960;&#55357;", b""),  # in the wrong order: two lone halves
        (b"&#55357;&#55357;&#56960;", b"&#128640;"),  # the second high half pairs
        (b"&#55357; &#56960;", b" "),  # not adjacent
        (b"&#55357;&amp;#56960;", b""),  # not escaped alike
        (b"&#55000;&#57999;&#233;&#x1F680;", b"&#55000;&#57999;&#233;&#x1F680;"),  # untouched
        (b"no references at all", b"no references at all"),
    ],
)
def test_references_to_surrogates_are_decoded_into_the_character_or_dropped(
    written: bytes, read: bytes
) -> None:
    assert decode_surrogate_refs(written) == read


def _rss(items: list[str], title: str = "Board") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://jobs.example/</link>"
        + "".join(items)
        + "<description>after the items</description></channel></rss>"
    ).encode()


def _item(n: int, title: str | None = None) -> str:
    return f"<item><title>{title or f'Offer {n}'}</title><guid>g{n}</guid></item>"


def test_a_feed_is_cut_after_its_first_entries_keeping_its_closing_tags() -> None:
    body = _rss([_item(n) for n in range(600)])
    cut = cut_entries(body, 500)
    assert cut.count(b"<item>") == 500 and b"<title>Offer 499</title>" in cut
    assert cut.endswith(b"</channel></rss>")
    read = read_body(cut, url="https://jobs.example/", content_type="", discover=False)
    assert len(read["feed"]["entries"]) == 500
    # Fewer entries than the limit, or other elements that start alike, are left alone.
    assert cut_entries(body, 600) is body
    rdf = b"<rdf:RDF><items><rdf:Seq/></items><item>a</item><rss:item>b</rss:item></rdf:RDF>"
    assert cut_entries(rdf, 1) == b"<rdf:RDF><items><rdf:Seq/></items><item>a</item></rdf:RDF>"
    atom = b"<feed><entry>1</entry>\n<atom:entry>2</atom:entry><entry>3</entry></feed>"
    assert cut_entries(atom, 2) == b"<feed><entry>1</entry>\n<atom:entry>2</atom:entry></feed>"
    # What follows the last entry is kept, however long.
    long_tail = b"<rss><item>1</item><item>2</item><x>" + b"y" * 200_000 + b"</x></rss>"
    assert cut_entries(long_tail, 1) == b"<rss><item>1</item><x>" + b"y" * 200_000 + b"</x></rss>"


def test_a_surrogate_pair_at_the_cut_is_decoded_before_the_cut() -> None:
    """Decoded first, then cut where the next entry starts: a pair next to the cut, in the
    last entry kept or just after it, is never split."""
    items = [_item(n) for n in range(499)]
    items.append("<item><title>Last &#55357;</title><guid>g499</guid></item>&#56960;&#55357;")
    items += [f"&#56960;{_item(n, 'Cut &#55357;&#56960;')}" for n in range(500, 510)]
    read = read_body(_rss(items), url="https://jobs.example/", content_type="", discover=False)
    entries = read["feed"]["entries"]
    assert len(entries) == 500
    assert entries[-1]["title"] == "Last"
    items = [_item(n, f"Offer {n} &#xD83D;&#xDE80;") for n in range(501)]
    read = read_body(_rss(items), url="https://jobs.example/", content_type="", discover=False)
    assert [e["title"] for e in read["feed"]["entries"][-2:]] == [
        f"Offer 498 {ROCKET}",
        f"Offer 499 {ROCKET}",
    ]


def test_a_parser_failure_is_a_malformed_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the parser broke")

    monkeypatch.setattr(feedparser, "parse", failing)
    with pytest.raises(MalformedFeed) as caught:
        read_body(RSS2, url="https://jobs.example/", content_type="", discover=False)
    assert caught.value.code == "malformed" and caught.value.unreadable


async def test_an_emoji_written_as_two_surrogate_references_is_read_as_the_emoji(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    """Some generators write 🚀 as `&#55357;&#56960;`: feedparser's loose parser raised
    UnicodeEncodeError on it, and the feed could never be read."""
    server.body(
        "/emoji",
        _rss(
            [
                "<item><title>Dev &#55357;&#56960; Lyon</title><guid>1</guid>"
                "<description>&lt;p&gt;On d&#233;colle &#xD83D;&#xDE80; &amp;#55357;&amp;#56960;"
                " &#55357;seul&lt;/p&gt;</description></item>"
            ],
            title="Jobs &#55357;&#56960;",
        ),
    )
    feed = await fetch_feed(fetcher, f"{server.url}/emoji")
    assert feed.title == f"Jobs {ROCKET}"
    [entry] = feed.entries
    assert entry.title == f"Dev {ROCKET} Lyon"
    assert entry.text == f"On décolle {ROCKET} {ROCKET} seul"


async def test_a_document_the_parser_fails_on_is_refused_as_unreadable_not_unreachable(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    # UTF-16, where the references are not decoded: feedparser raises UnicodeEncodeError.
    body = (
        '<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel>'
        "<title>T &#55357;&#56960;</title><item><title>a & b</title></item></channel></rss>"
    ).encode("utf-16")
    server.body("/utf16", body)
    with pytest.raises(MalformedFeed) as caught:
        await fetcher.fetch(f"{server.url}/utf16")
    assert caught.value.code == "malformed" and caught.value.unreadable
    assert not isinstance(caught.value, Unavailable)
    server.body("/fine", RSS2)  # the next read is served as ever
    assert len((await fetch_feed(fetcher, f"{server.url}/fine")).entries) == 3


def _tiny_items(size: int) -> bytes:
    """A malformed feed (a bare `&`) of tiny items, `size` bytes: feedparser read all of
    its 100,000 items, twice (strict, then loose)."""
    item = b"<item><title>x</title></item>"
    head = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Tiny & many</title>'
    return head + item * ((size - len(head)) // len(item)) + b"</channel></rss>"


def _intricate(size: int) -> bytes:
    """One Atom entry whose XHTML content is `size` bytes of tiny elements: one entry, and
    feedparser takes about 5 s a megabyte to rebuild and sanitize it."""
    head = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Heavy</title>'
        b'<entry><id>1</id><title>x</title><content type="xhtml">'
        b'<div xmlns="http://www.w3.org/1999/xhtml">'
    )
    return head + b"<i>a</i>" * (size // 8) + b"</div></content></entry></feed>"


async def test_only_the_first_500_entries_of_a_huge_feed_are_parsed(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    server.body("/tiny", _tiny_items(3_000_000))
    feed = await fetch_feed(fetcher, f"{server.url}/tiny")
    assert feed.title == "Tiny & many"
    assert len(feed.entries) == 500


async def test_a_feed_that_takes_too_long_to_read_is_refused_and_the_next_is_read(
    server: FeedServer,
) -> None:
    server.body("/heavy", _intricate(3_000_000), "application/atom+xml")
    server.body("/fine", RSS2)
    fetcher = FeedFetcher(allow_private=True, parse_seconds=0.5, readers=1)
    try:
        with pytest.raises(FeedTooComplex) as caught:
            await fetcher.fetch(f"{server.url}/heavy")
        assert caught.value.code == "too_complex" and caught.value.unreadable
        assert caught.value.seconds == 0.5
        # Its reader was stopped; the only one left reads the next feed.
        assert len((await fetch_feed(fetcher, f"{server.url}/fine")).entries) == 3
        both = await asyncio.gather(
            fetcher.fetch(f"{server.url}/heavy"),
            fetcher.fetch(f"{server.url}/fine"),
            return_exceptions=True,
        )
        assert isinstance(both[0], FeedTooComplex) and isinstance(both[1], Feed)
    finally:
        await fetcher.aclose()


async def test_a_reader_that_dies_in_the_middle_of_a_read_is_replaced() -> None:
    readers = FeedReaders(size=1, seconds=60)

    async def read(body: bytes) -> dict[str, Any]:
        return await readers.read(
            body, url="https://a.example/", content_type="", discover=False, max_entries=500
        )

    try:
        await read(RSS2)  # its worker has started
        [worker] = readers._started
        reading = asyncio.create_task(read(_intricate(3_000_000)))
        await asyncio.sleep(0.2)
        worker.kill()  # as the kernel's OOM killer would
        with pytest.raises(FeedTooComplex):
            await reading
        await worker.process.wait()  # it was killed (its status may be reaped elsewhere)
        read_again = await read(RSS2)
        assert len(read_again["feed"]["entries"]) == 3
    finally:
        await readers.aclose()


async def test_a_read_that_outlives_the_wall_clock_limit_is_abandoned_with_its_worker() -> None:
    """A worker that gets no CPU (stopped here; starved on a busy machine) never reaches its
    CPU budget: the wall-clock limit ends the read, and the next read gets a fresh worker."""
    readers = FeedReaders(size=1, seconds=5, wall_seconds=0.5)
    try:
        await readers.read(
            RSS2, url="https://a.example/", content_type="", discover=False, max_entries=500
        )
        [worker] = readers._started
        os.kill(worker.process.pid, signal.SIGSTOP)
        with pytest.raises(FeedTooComplex) as caught:
            await readers.read(
                RSS2, url="https://a.example/", content_type="", discover=False, max_entries=500
            )
        assert "not read within 0.5 s" in str(caught.value)
        await worker.process.wait()  # it was killed (its status may be reaped elsewhere)
        read = await readers.read(
            RSS2, url="https://a.example/", content_type="", discover=False, max_entries=500
        )
        assert len(read["feed"]["entries"]) == 3
    finally:
        await readers.aclose()


# HTML to text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        ("<p>Caf&eacute; cr&egrave;me &amp; th&eacute;</p>", "Café crème & thé"),
        ("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>", "<script>alert(1)</script>"),
        ("&amp;lt;b&amp;gt;", "&lt;b&gt;"),
        ("Avant<script>steal()</script><style>p{}</style> après", "Avant après"),
        ("Ligne 1<br>Ligne 2<br/>Ligne 3", "Ligne 1\nLigne 2\nLigne 3"),
        ("<p>Un</p><p>Deux</p>", "Un\n\nDeux"),
        ("<h2>Poste</h2><div>Lyon</div><div>CDI</div>", "Poste\n\nLyon\nCDI"),
        ("<ul><li>Python</li><li>SQL</li></ul>", "• Python\n• SQL"),
        ('Voir <a href="https://jobs.example/1">l\'offre</a>', "Voir l'offre"),
        ("  trop    d'espaces \n\t ici  ", "trop d'espaces ici"),
        ("<pre>ligne 1\nligne 2</pre>après", "ligne 1\nligne 2\n\naprès"),
        ("<p>a</p><br><br><br><p>b</p>", "a\n\nb"),
        ("<blockquote>cité</blockquote>fin", "cité\n\nfin"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("", ""),
    ],
)
def test_html_is_reduced_to_plain_text(fragment: str, text: str) -> None:
    assert html_to_text(fragment) == text
