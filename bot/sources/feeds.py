"""RSS/Atom feeds, Mastodon and Bluesky profiles: fetched over guarded HTTP, parsed by
feedparser in a thread, handed back as plain values (no Telegram, no database)."""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import io
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.sax import SAXParseException

import feedparser
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
from bot.sources.feed_text import feed_links, html_to_text, plain_text

__all__ = [
    "BLUESKY_KIND",
    "FEED_KIND",
    "FEED_KINDS",
    "MASTODON_KIND",
    "MAX_BYTES",
    "MAX_REDIRECTS",
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
HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_AGE_RE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,10})")
SY_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}
WHITESPACE_AND_BOM = b" \t\r\n\xef\xbb\xbf"
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
        parsed = await self._parse(download)
        if not _is_html(parsed, download):
            # Entries to text (HTML reduced, up to 5 MB of it) off the event loop, as parsing.
            return await asyncio.to_thread(_feed, url, download, parsed)
        links = feed_links(_decode(download), download.url) if discover else []
        if not links:
            raise NotAFeed("not a feed")
        found = await self._download(links[0], None, None, deadline, redirects)
        assert isinstance(found, _Download)  # no validators were sent
        parsed = await self._parse(found)
        if _is_html(parsed, found):
            raise NotAFeed("the announced feed is a page")
        return await asyncio.to_thread(_feed, links[0], found, parsed)

    async def aclose(self) -> None:
        """Close the HTTP client and its connections."""
        await self._client.aclose()

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

    async def _parse(self, download: _Download) -> Any:
        self.parsed += 1
        headers = {
            "content-location": download.url,
            "content-type": download.headers.get("content-type", "application/xml"),
        }
        # A stream, never bytes: feedparser opens bytes that name a file as that file.
        return await asyncio.to_thread(
            feedparser.parse, io.BytesIO(download.body), response_headers=headers
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


def _decode(download: _Download) -> str:
    content_type = download.headers.get("content-type", "")
    charset = "utf-8"
    if "charset=" in content_type:
        charset = content_type.split("charset=", 1)[1].split(";")[0].strip().strip("\"'")
    try:
        return download.body.decode(charset, errors="replace")
    except LookupError:
        return download.body.decode("utf-8", errors="replace")


def _is_html(parsed: Any, download: _Download) -> bool:
    """Whether feedparser found no feed in what is an HTML page."""
    if parsed.get("version") or parsed.entries:
        return False
    content_type = download.headers.get("content-type", "").lower()
    start = download.body.lstrip(WHITESPACE_AND_BOM)[:15].lower()
    return content_type.startswith(HTML_TYPES) or start.startswith((b"<!doctype html", b"<html"))


def _feed(url: str, download: _Download, parsed: Any) -> Feed:
    meta = parsed.feed
    link = str(meta.get("link", ""))
    entries = [entry for raw in parsed.entries if (entry := _entry(raw, link)) is not None]
    title = _detail_text(meta.get("title", ""), meta.get("title_detail"))
    if not title and not entries:
        start = download.body.lstrip(WHITESPACE_AND_BOM)
        if not start.startswith(b"<"):
            raise NotAFeed("not XML")
        if parsed.get("bozo") and isinstance(parsed.get("bozo_exception"), SAXParseException):
            raise MalformedFeed("malformed XML")
        if not parsed.get("version"):
            raise NotAFeed("no feed in this XML")
    return Feed(
        url=url,
        title=title,
        link=link,
        entries=entries,
        etag=download.headers.get("etag"),
        last_modified=download.headers.get("last-modified"),
        ttl=_ttl(download.headers, meta),
    )


def _detail_text(value: object, detail: object) -> str:
    """Plain text of a feedparser text construct (HTML reduced; plain text kept literal)."""
    if not isinstance(value, str) or not value:
        return ""
    kind = str(detail.get("type", "")) if isinstance(detail, dict) else ""
    return plain_text(value) if kind == "text/plain" else html_to_text(value)


def _entry(raw: Any, feed_link: str) -> Entry | None:
    contents = raw.get("content") or []
    if contents:
        body, detail = contents[0].get("value", ""), contents[0]
    else:
        body, detail = raw.get("summary", ""), raw.get("summary_detail")
    raw_title = str(raw.get("title", ""))
    title = _detail_text(raw_title, raw.get("title_detail"))
    text = _detail_text(body, detail)
    link = str(raw.get("link", ""))
    if not (title or text or link or raw.get("id")):
        return None
    ident = str(raw.get("id") or link)
    if not ident:
        digest = hashlib.sha256(f"{raw_title}\n{body}".encode()).hexdigest()
        ident = f"sha256:{digest}"
    return Entry(
        id=ident,
        key=hashlib.sha256(ident.encode()).hexdigest(),
        title=title,
        text=text,
        url=link or feed_link,
        published=_moment(raw.get("published_parsed") or raw.get("updated_parsed")),
    )


def _moment(value: object) -> datetime | None:
    """A feedparser date (a struct_time in UTC) as an aware datetime."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
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
