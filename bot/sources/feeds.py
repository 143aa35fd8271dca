"""RSS/Atom feeds, Mastodon and Bluesky profiles: fetched over guarded HTTP, read by feedparser
in worker processes under a time budget (`bot.sources.feed_worker`), handed back as plain
values (no Telegram, no database)."""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from bot.sources.base import Post
from bot.sources.feed_addresses import (
    BLUESKY_KIND,
    FEED_KIND,
    FEED_KINDS,
    MASTODON_KIND,
    FeedAddress,
    FeedAddressError,
    bluesky_handle_url,
    feed_address,
    mastodon_url,
)
from bot.sources.feed_errors import (
    FeedError,
    FeedHttpError,
    FeedRefused,
    FeedTimeout,
    FeedTooComplex,
    FeedTooLarge,
    FeedUnreachable,
    MalformedFeed,
    NotAFeed,
    TooManyRedirects,
)
from bot.sources.feed_guard import (
    GuardedTransport,
    is_public_address,
    parse_host_map,
    resolve_public,
)
from bot.sources.feed_parse import MAX_ENTRIES
from bot.sources.feed_text import html_to_text
from bot.sources.feed_worker import PARSE_SECONDS, READERS, FeedReaders

__all__ = [
    "BLUESKY_KIND",
    "FEED_KIND",
    "FEED_KINDS",
    "MASTODON_KIND",
    "MAX_BYTES",
    "MAX_ENTRIES",
    "MAX_REDIRECTS",
    "PARSE_SECONDS",
    "TIMEOUT_SECONDS",
    "Entry",
    "Feed",
    "FeedAddress",
    "FeedAddressError",
    "FeedError",
    "FeedFetcher",
    "FeedHttpError",
    "FeedRefused",
    "FeedTimeout",
    "FeedTooComplex",
    "FeedTooLarge",
    "FeedUnreachable",
    "MalformedFeed",
    "NotAFeed",
    "NotModified",
    "TooManyRedirects",
    "bluesky_handle_url",
    "feed_address",
    "html_to_text",
    "is_public_address",
    "mastodon_url",
    "parse_host_map",
    "resolve_public",
    "to_post",
]

MAX_BYTES = 5 * 1024 * 1024
TIMEOUT_SECONDS = 15.0
MAX_REDIRECTS = 5
# A feed's own refresh hint is trusted up to a week (a year-long <ttl> is a mistake).
MAX_TTL = timedelta(days=7)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, text/html;q=0.5, */*;q=0.1"
)
MAX_AGE_RE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,10})")
SY_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}
# The compressions asked for and read (decompressed here, each layer bounded by MAX_BYTES).
ACCEPT_ENCODING = "gzip, deflate"
MAX_ENCODINGS = 2  # `gzip, gzip` at most: a stack of compressions is a bomb, not a feed
# An entity declaration is how an XML bomb multiplies itself; feeds never need one.
ENTITY_DECLARATION_RE = re.compile(rb"<!ENTITY", re.IGNORECASE)


class _Decompressor:
    """One `Content-Encoding` layer, inflated at most `limit` bytes at a time: the size limit
    holds on what is decoded, not on what arrived compressed."""

    def __init__(self, encoding: str, limit: int) -> None:
        # gzip, or deflate as zlib or raw (servers send both).
        self._inflate = zlib.decompressobj(47 if encoding == "gzip" else 15)
        self._raw_deflate = encoding == "deflate"
        self._started = False
        self._limit = limit

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        size = 0
        while data:
            try:
                chunk = self._inflate.decompress(data, self._limit + 1 - size)
            except zlib.error:
                if not (self._raw_deflate and not self._started):
                    raise MalformedFeed("undecodable body") from None
                self._inflate, self._raw_deflate = zlib.decompressobj(-15), False
                continue
            self._started = True
            out.append(chunk)
            size += len(chunk)
            if size > self._limit:
                raise FeedTooLarge("too large")
            data = self._inflate.unconsumed_tail
        return b"".join(out)


def _decompressors(headers: httpx.Headers, limit: int) -> list[_Decompressor]:
    """The layers to undo, in the order they are undone; refuses what was not asked for."""
    encodings = [
        e.strip().lower()
        for e in headers.get("content-encoding", "").split(",")
        if e.strip().lower() not in ("", "identity")
    ]
    if len(encodings) > MAX_ENCODINGS:
        raise FeedTooLarge("too many compression layers")
    if any(e not in ("gzip", "x-gzip", "deflate") for e in encodings):
        raise MalformedFeed("unknown content encoding")
    return [
        _Decompressor("deflate" if e == "deflate" else "gzip", limit) for e in reversed(encodings)
    ]


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a feed: `id` as the feed gives it (guid, else link, else a hash of its
    title and content), `key` the SHA-256 of `id` stored to remember it was seen."""

    id: str
    key: str
    title: str
    text: str
    url: str
    published: datetime | None


@dataclass(frozen=True, slots=True)
class Feed:
    """A fetched feed: `url` is the one asked for (or the one a page announced), `entries` in
    document order, `ttl` the longest refresh hint it gave (None if none)."""

    url: str
    title: str
    link: str
    entries: list[Entry]
    etag: str | None
    last_modified: str | None
    ttl: timedelta | None


@dataclass(frozen=True, slots=True)
class NotModified:
    """The feed did not change since the ETag / Last-Modified given."""

    etag: str | None
    last_modified: str | None
    ttl: timedelta | None


@dataclass(frozen=True, slots=True)
class _Download:
    url: str  # after redirects, to resolve relative links against
    headers: httpx.Headers
    body: bytes


class _Redirects:
    """Redirects left for one fetch, discovery hop included."""

    def __init__(self, allowed: int) -> None:
        self.left = allowed


class FeedFetcher:
    """Fetches feeds with one shared HTTP client; every hop goes through the address guard,
    and one overall timeout bounds a fetch."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        host_map: Mapping[str, str] | None = None,
        max_bytes: int = MAX_BYTES,
        timeout: float = TIMEOUT_SECONDS,
        max_redirects: int = MAX_REDIRECTS,
        user_agent: str = "jobrelay (+feeds)",
        parse_seconds: float = PARSE_SECONDS,
        readers: int = READERS,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._transport = GuardedTransport(allow_private=allow_private, host_map=host_map)
        self._client = httpx.AsyncClient(
            transport=self._transport,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout),
            headers={
                "User-Agent": user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            # Feeds get no cookies: none are needed, and none should pass from one to another.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._max_redirects = max_redirects
        # Bodies are read in worker processes, `parse_seconds` each at most, and only their
        # first `max_entries` entries: what a body costs to read is bounded before it is paid.
        self._readers = FeedReaders(size=readers, seconds=parse_seconds)
        self._max_entries = max_entries
        self.parsed = 0

    @property
    def requests(self) -> int:
        """HTTP requests sent (those the guard refused are not counted)."""
        return self._transport.sent

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        discover: bool = False,
    ) -> Feed | NotModified:
        """The feed at `url`, or NotModified; with `discover`, an HTML page's first announced
        feed is fetched instead. Raises a FeedError."""
        deadline = asyncio.get_running_loop().time() + self._timeout
        redirects = _Redirects(self._max_redirects)
        download = await self._download(url, etag, last_modified, deadline, redirects)
        if isinstance(download, NotModified):
            return download
        read = await self._read_body(download, discover=discover)
        if "feed" in read:
            return _feed(url, download, read["feed"])
        links: list[str] = read["page"]  # an HTML page, read for the feeds it announces
        if not links:
            raise NotAFeed("not a feed")
        found = await self._download(links[0], None, None, deadline, redirects)
        assert isinstance(found, _Download)  # no validators were sent
        read = await self._read_body(found, discover=False)  # a page again: NotAFeed
        return _feed(links[0], found, read["feed"])

    @property
    def parse_cpu_seconds(self) -> float:
        """CPU seconds the worker processes spent reading bodies (reads that finished)."""
        return self._readers.cpu_seconds

    async def aclose(self) -> None:
        """Close the HTTP client and its connections, and stop the reading processes."""
        await self._client.aclose()
        await self._readers.aclose()

    async def _download(
        self,
        url: str,
        etag: str | None,
        last_modified: str | None,
        deadline: float,
        redirects: _Redirects,
    ) -> _Download | NotModified:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen = {url}
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    if urlsplit(url).scheme.lower() not in ("http", "https"):
                        raise FeedRefused("scheme")
                    async with self._client.stream("GET", url, headers=headers) as response:
                        status = response.status_code
                        if status in REDIRECT_STATUSES:
                            url = _redirect_target(url, response, seen, redirects)
                            continue
                        if status == 304:
                            # Read its (empty) body, within the size limit, so the connection
                            # goes back to the pool instead of being closed.
                            await self._read(response)
                            return NotModified(
                                etag=response.headers.get("etag") or etag,
                                last_modified=response.headers.get("last-modified")
                                or last_modified,
                                ttl=_ttl(response.headers, {}),
                            )
                        if not 200 <= status < 300:
                            raise FeedHttpError(status)
                        body = await self._read(response)
                        return _Download(url, response.headers, body)
        except TimeoutError:
            raise FeedTimeout("timed out") from None
        except httpx.TimeoutException:
            raise FeedTimeout("timed out") from None
        except httpx.DecodingError:
            raise MalformedFeed("undecodable body") from None
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
            raise FeedUnreachable(f"connection failed ({type(exc).__name__})") from None

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise FeedTooLarge("too large")
        layers = _decompressors(response.headers, self._max_bytes)
        chunks: list[bytes] = []
        received = size = 0
        # Raw bytes, decompressed here: httpx would inflate each chunk without bound.
        async for raw in response.aiter_raw():
            received += len(raw)
            if received > self._max_bytes:
                raise FeedTooLarge("too large")
            chunk = raw
            for layer in layers:
                chunk = layer.feed(chunk)
            size += len(chunk)
            if size > self._max_bytes:
                raise FeedTooLarge("too large")
            chunks.append(chunk)
        body = b"".join(chunks)
        if ENTITY_DECLARATION_RE.search(body):
            raise FeedRefused("entities")
        return body

    async def _read_body(self, download: _Download, *, discover: bool) -> dict[str, Any]:
        """What the body holds (`bot.sources.feed_parse.read_body`), read in a worker process
        within the read budget."""
        self.parsed += 1
        return await self._readers.read(
            download.body,
            url=download.url,
            content_type=download.headers.get("content-type", "application/xml"),
            discover=discover,
            max_entries=self._max_entries,
        )


def _redirect_target(
    url: str, response: httpx.Response, seen: set[str], redirects: _Redirects
) -> str:
    location = str(response.headers.get("location", "")).strip()
    if not location:
        raise FeedHttpError(response.status_code)
    target = urljoin(url, location)
    if urlsplit(target).scheme.lower() not in ("http", "https"):
        raise FeedRefused("scheme")
    if redirects.left <= 0 or target in seen:
        raise TooManyRedirects("too many redirects")
    redirects.left -= 1
    seen.add(target)
    return target


def _feed(url: str, download: _Download, read: dict[str, Any]) -> Feed:
    """A Feed from what a worker read in the body (`bot.sources.feed_parse`)."""
    entries = [
        Entry(
            id=entry["id"],
            key=entry["key"],
            title=entry["title"],
            text=entry["text"],
            url=entry["url"],
            published=_moment(entry["published"]),
        )
        for entry in read["entries"]
    ]
    return Feed(
        url=url,
        title=read["title"],
        link=read["link"],
        entries=entries,
        etag=download.headers.get("etag"),
        last_modified=download.headers.get("last-modified"),
        ttl=_ttl(download.headers, read["hints"]),
    )


def _moment(seconds: int | None) -> datetime | None:
    """Seconds since the epoch as an aware datetime (the worker checked it fits)."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _ttl(headers: httpx.Headers, meta: Mapping[str, Any]) -> timedelta | None:
    """The longest refresh hint: Cache-Control max-age, <ttl> minutes, sy:updatePeriod."""
    hints: list[timedelta] = []
    if match := MAX_AGE_RE.search(headers.get("cache-control", "").lower()):
        hints.append(timedelta(seconds=int(match.group(1))))
    ttl = str(meta.get("ttl", "")).strip()
    if ttl.isdigit() and len(ttl) < 9:
        hints.append(timedelta(minutes=int(ttl)))
    period = SY_PERIODS.get(str(meta.get("sy_updateperiod", "")).strip().lower())
    if period is not None:
        frequency = str(meta.get("sy_updatefrequency", "1")).strip()
        count = int(frequency) if frequency.isdigit() and 0 < int(frequency) < 10_000 else 1
        hints.append(period / count)
    return min(max(hints), MAX_TTL) if hints else None


def to_post(feed_label: str, entry: Entry) -> Post:
    """A feed entry as a Post of the relay (its title heads the text unless already there)."""
    title, text = entry.title, entry.text
    body = f"{title}\n\n{text}" if title and text and not text.startswith(title) else text or title
    return Post(
        external_id=entry.key,
        author=feed_label,
        text=body,
        url=entry.url,
        posted_at=entry.published,
    )
