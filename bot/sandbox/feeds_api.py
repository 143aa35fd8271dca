"""A local stand-in of the web servers jobrelay reads feeds from.

It is an ``aiohttp.web`` server bound to 127.0.0.1 that serves several *virtual hosts*,
chosen by the request's ``Host`` header (port stripped, lower-cased), the way the bot
reaches it: its host map rewrites ``https://jobs.example/feed.xml`` to
``http://127.0.0.1:PORT/feed.xml`` and keeps ``Host: jobs.example``. A request whose Host is
127.0.0.1 or localhost goes to the default host, named ``"127.0.0.1"``. It serves

* RSS 2.0, RSS 1.0 (RDF) and Atom feeds (:meth:`FeedStandIn.add_feed`,
  :meth:`FeedStandIn.add_entry`), rendered on each request from their current entries,
  newest first, in the style job boards and public employment services publish them
  (entity-escaped HTML descriptions, RFC 822 dates, optional ``<ttl>``), with a strong
  ``ETag`` and ``Last-Modified`` and ``304 Not Modified`` answers to conditional requests;
* Mastodon 4.x profile feeds, ``https://{instance}/@{username}.rss``
  (:meth:`FeedStandIn.add_mastodon_account`, :meth:`FeedStandIn.mastodon_post`), with the
  weak ETag and ``Cache-Control: max-age=60, public`` Mastodon answers with, and the
  profile page ``/@{username}`` that announces the feed;
* Bluesky profile feeds on ``bsky.app`` (:meth:`FeedStandIn.add_bluesky_account`,
  :meth:`FeedStandIn.bluesky_post`) as bskyweb renders them: ``/profile/{handle}/rss``
  redirects (302) to ``/profile/{did}/rss``, which lists the 30 latest posts without
  validators; ``/profile/{handle}`` is a page that announces the feed;
* characters beyond U+FFFF written as two numeric references to their UTF-16 halves
  (``&#55357;&#56960;`` for 🚀), as some generators write them
  (:meth:`FeedStandIn.set_astral_refs`);
* HTML pages and raw bodies (:meth:`FeedStandIn.add_page`, :meth:`FeedStandIn.add_raw`),
  redirects (:meth:`FeedStandIn.redirect`) and endless-looking bodies
  (:meth:`FeedStandIn.big_body`).

Faults are injected per (host, path) or for a whole host: error statuses
(:meth:`FeedStandIn.fail`), connections closed without an answer
(:meth:`FeedStandIn.unreachable`), slow headers (:meth:`FeedStandIn.set_delay`) and slow
bodies (:meth:`FeedStandIn.set_trickle`). Every request is recorded in
:attr:`FeedStandIn.requests`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from types import TracebackType
from typing import Final, Literal, Self

from aiohttp import web

__all__ = [
    "BLUESKY_FEED_SIZE",
    "BLUESKY_HOST",
    "DEFAULT_HOST",
    "MASTODON_FEED_SIZE",
    "AstralRefs",
    "FeedFormat",
    "FeedRequest",
    "FeedStandIn",
]

log = logging.getLogger(__name__)

FeedFormat = Literal["rss2", "rss1", "atom"]
AstralRefs = Literal["decimal", "hex"]

#: The virtual host of requests whose Host header is 127.0.0.1 or localhost.
DEFAULT_HOST: Final = "127.0.0.1"
BLUESKY_HOST: Final = "bsky.app"
#: Posts a Bluesky profile feed lists (bskyweb asks for an author feed of 30).
BLUESKY_FEED_SIZE: Final = 30
#: Statuses a Mastodon profile feed lists.
MASTODON_FEED_SIZE: Final = 20
MASTODON_VERSION: Final = "4.3.0"

_LOOPBACK: Final = "127.0.0.1"
_FORMATS: Final = frozenset({"rss2", "rss1", "atom"})
_CONTENT_TYPES: Final[dict[str, str]] = {
    "rss2": "application/rss+xml; charset=utf-8",
    "rss1": "application/rdf+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
}
_HTML: Final = "text/html; charset=utf-8"
_BIG_CHUNK: Final = 64 * 1024
_TICKS_PER_SECOND: Final = 10
_TID_ALPHABET: Final = "234567abcdefghijklmnopqrstuvwxyz"
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun")
_MONTHS_2: Final = ("Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_HANDLE_RE: Final = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)
_DID_RE: Final = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$")
_MASTODON_USER_RE: Final = re.compile(r"^[A-Za-z0-9_]+(?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_HASHTAG_RE: Final = re.compile(r"(?<![\w/#])#(\w+)")
_URL_RE: Final = re.compile(r"https?://[^\s<]+[^\s<.,;:!?)\]'\"]")
_TAG_RE: Final = re.compile(r"<[^>]*>")

_NOT_FOUND_PAGE: Final = (
    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n"
    b"<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p>"
    b"</body></html>\n"
)
_MASTODON_NOT_FOUND_PAGE: Final = (
    b"<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
    b"<title>The page you are looking for isn't here. - Mastodon</title>\n</head>\n"
    b"<body class='error'>\n<div class='dialog'>\n<div class='dialog__message'>\n"
    b"<h1>The page you are looking for isn't here.</h1>\n</div>\n</div>\n</body>\n</html>\n"
)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """One request the stand-in received and the status it answered (0: connection closed
    without an answer). `path` includes the query string, if any."""

    host: str
    path: str
    method: str
    status: int
    if_none_match: str | None
    if_modified_since: str | None
    at: float


@dataclass(slots=True)
class _Entry:
    title: str
    html: str
    link: str | None
    guid: str | None
    published: datetime
    updated: datetime
    key: str


@dataclass(slots=True)
class _Feed:
    host: str
    path: str
    fmt: str
    title: str
    link: str
    description: str
    ttl_minutes: int | None
    cache_max_age: int | None
    conditional: bool
    changed_at: datetime
    entries: list[_Entry] = field(default_factory=list)
    added: int = 0
    observed: bool = False  # a response carried the current Last-Modified
    astral_refs: AstralRefs | None = None


@dataclass(slots=True)
class _Static:
    body: bytes
    status: int
    content_type: str


@dataclass(slots=True)
class _Redirect:
    location: str
    status: int


@dataclass(slots=True)
class _BigBody:
    size: int
    content_type: str
    declare_length: bool


_Resource = _Feed | _Static | _Redirect | _BigBody


@dataclass(slots=True)
class _Status:
    id: int
    html: str
    tags: tuple[str, ...]
    published: datetime


@dataclass(slots=True)
class _MastodonAccount:
    instance: str
    username: str
    display_name: str
    note: str
    statuses: list[_Status] = field(default_factory=list)


@dataclass(slots=True)
class _Post:
    rkey: str
    text: str
    published: datetime


@dataclass(slots=True)
class _BlueskyAccount:
    handle: str
    did: str
    display_name: str
    description: str
    posts: list[_Post] = field(default_factory=list)


@dataclass(slots=True)
class _Faults:
    fail_status: int | None = None
    fail_remaining: int | None = None  # None: until healed
    fail_body: bytes = b""
    unreachable: bool = False
    delay: float = 0.0
    trickle: int | None = None  # bytes per second

    def empty(self) -> bool:
        return (
            self.fail_status is None
            and not self.unreachable
            and self.delay == 0.0
            and self.trickle is None
        )


@dataclass(slots=True)
class _Answer:
    """A response before it is written: a whole body, or a streamed big body."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    big: _BigBody | None = None


# --------------------------------------------------------------------------- helpers


def _normalize_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    else:
        name, sep, port = host.rpartition(":")
        if sep and port.isdigit():
            host = name
    if host in ("localhost", "127.0.0.1", "::1", ""):
        return DEFAULT_HOST
    return host


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(value: str) -> str:
    """Escape character data."""
    return html.escape(value, quote=False)


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _surrogate_refs(body: bytes, style: AstralRefs) -> bytes:
    """`body` (UTF-8) with each character beyond U+FFFF written as two numeric references to
    its UTF-16 surrogates, as some feed generators write them (invalid XML)."""

    def halves(match: re.Match[str]) -> str:
        code = ord(match.group()) - 0x10000
        high, low = 0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)
        return f"&#x{high:X};&#x{low:X};" if style == "hex" else f"&#{high};&#{low};"

    return re.sub("[\U00010000-\U0010ffff]", halves, body.decode()).encode()


def _rfc822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC))


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _go_date(moment: datetime) -> str:
    """bskyweb's pubDate layout, "02 Jan 2006 15:04 -0700" (no weekday, no seconds)."""
    moment = moment.astimezone(UTC)
    month = (_MONTHS + _MONTHS_2)[moment.month - 1]
    return f"{moment.day:02d} {month} {moment.year} {moment.hour:02d}:{moment.minute:02d} +0000"


def _go_escape(value: str) -> str:
    """Escape text as Go's encoding/xml does (quotes and line breaks as character refs)."""
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
        .replace("\t", "&#x9;")
        .replace("\n", "&#xA;")
        .replace("\r", "&#xD;")
    )


def _etag(body: bytes, *, weak: bool = False) -> str:
    digest = hashlib.sha256(body).hexdigest()[:32]
    return f'W/"{digest}"' if weak else f'"{digest}"'


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison, as If-None-Match requires (RFC 9110 13.1.2)."""
    if header.strip() == "*":
        return True
    mine = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == mine for candidate in header.split(","))


def _parse_http_date(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return _utc(moment)


def _did_for(handle: str) -> str:
    digest = hashlib.sha256(handle.lower().encode()).digest()
    return "did:plc:" + base64.b32encode(digest).decode().lower()[:24]


def _tid(value: int) -> str:
    chars: list[str] = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _mastodon_html(instance: str, text: str) -> str:
    """Format plain text as Mastodon renders a status: paragraphs, links, hashtag links."""
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        pieces: list[str] = []
        position = 0
        for match in re.finditer(f"{_URL_RE.pattern}|{_HASHTAG_RE.pattern}", block):
            pieces.append(_text(block[position : match.start()]))
            if match.group(1) is not None:
                tag = match.group(1)
                pieces.append(
                    f'<a href="https://{instance}/tags/{_attr(tag.lower())}" '
                    f'class="mention hashtag" rel="tag">#<span>{_text(tag)}</span></a>'
                )
            else:
                url = match.group(0)
                scheme, _, rest = url.partition("://")
                shown, hidden = rest[:30], rest[30:]
                ellipsis = ' class="ellipsis"' if hidden else ' class=""'
                pieces.append(
                    f'<a href="{_attr(url)}" target="_blank" rel="nofollow noopener noreferrer" '
                    f'translate="no"><span class="invisible">{scheme}://</span>'
                    f"<span{ellipsis}>{_text(shown)}</span>"
                    f'<span class="invisible">{_text(hidden)}</span></a>'
                )
            position = match.end()
        pieces.append(_text(block[position:]))
        paragraphs.append("<p>" + "".join(pieces).replace("\n", "<br />") + "</p>")
    return "".join(paragraphs)


def _hashtags(status_html: str) -> tuple[str, ...]:
    plain = html.unescape(_TAG_RE.sub("", status_html))
    seen: dict[str, str] = {}
    for tag in _HASHTAG_RE.findall(plain):
        seen.setdefault(tag.lower(), tag)
    return tuple(seen.values())


_BIG_HEAD: Final = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Big</title>\n'
)
_BIG_ITEM: Final = (
    b"<item><title>filler</title><description>" + b"x" * 200 + b"</description></item>\n"
)


def _big_stream(size: int, step: int) -> Iterator[bytes]:
    """`size` bytes of an RSS prolog and filler items, in pieces of at most `step` bytes; the
    filler block is built once (about 64 KiB) and sliced, whatever the size."""
    block = _BIG_ITEM * (_BIG_CHUNK // len(_BIG_ITEM) + 1)
    pending = _BIG_HEAD[:size]
    remaining = size - len(pending)
    offset = 0
    while pending or remaining > 0:
        while len(pending) < step and remaining > 0:
            take = min(step - len(pending), remaining, len(block) - offset)
            pending += block[offset : offset + take]
            offset = (offset + take) % len(block)
            remaining -= take
        yield pending[:step]
        pending = pending[step:]


# --------------------------------------------------------------------------- rendering


def _render_rss2(feed: _Feed, self_url: str, entries: list[_Entry]) -> bytes:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n',
        f"<title>{_text(feed.title)}</title>\n",
        f"<link>{_text(feed.link)}</link>\n",
        f"<description>{_text(feed.description)}</description>\n",
        f'<atom:link href="{_attr(self_url)}" rel="self" type="application/rss+xml"/>\n',
        f"<lastBuildDate>{_rfc822(feed.changed_at)}</lastBuildDate>\n",
    ]
    if feed.ttl_minutes is not None:
        out.append(f"<ttl>{feed.ttl_minutes}</ttl>\n")
    for entry in entries:
        out.append(f"<item>\n<title>{_text(entry.title)}</title>\n")
        if entry.link is not None:
            out.append(f"<link>{_text(entry.link)}</link>\n")
        if entry.guid is not None:
            permalink = "true" if entry.guid == entry.link else "false"
            out.append(f'<guid isPermaLink="{permalink}">{_text(entry.guid)}</guid>\n')
        out.append(f"<pubDate>{_rfc822(entry.published)}</pubDate>\n")
        out.append(f"<description>{_text(entry.html)}</description>\n</item>\n")
    out.append("</channel>\n</rss>\n")
    return "".join(out).encode()


def _render_atom(feed: _Feed, self_url: str, entries: list[_Entry]) -> bytes:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n',
        '<feed xmlns="http://www.w3.org/2005/Atom">\n',
        f'<title type="text">{_text(feed.title)}</title>\n',
    ]
    if feed.description:
        out.append(f'<subtitle type="text">{_text(feed.description)}</subtitle>\n')
    out += [
        f'<link rel="alternate" type="text/html" href="{_attr(feed.link)}"/>\n',
        f'<link rel="self" type="application/atom+xml" href="{_attr(self_url)}"/>\n',
        f"<id>{_text(self_url)}</id>\n",
        f"<updated>{_iso(feed.changed_at)}</updated>\n",
        f"<author><name>{_text(feed.title)}</name></author>\n",
    ]
    for entry in entries:
        out.append(f'<entry>\n<title type="text">{_text(entry.title)}</title>\n')
        if entry.link is not None:
            out.append(f'<link rel="alternate" type="text/html" href="{_attr(entry.link)}"/>\n')
        if entry.guid is not None:
            out.append(f"<id>{_text(entry.guid)}</id>\n")
        out.append(f"<published>{_iso(entry.published)}</published>\n")
        out.append(f"<updated>{_iso(entry.updated)}</updated>\n")
        out.append(f'<content type="html">{_text(entry.html)}</content>\n</entry>\n')
    out.append("</feed>\n")
    return "".join(out).encode()


def _render_rss1(feed: _Feed, self_url: str, entries: list[_Entry]) -> bytes:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">\n',
        f'<channel rdf:about="{_attr(self_url)}">\n',
        f"<title>{_text(feed.title)}</title>\n",
        f"<link>{_text(feed.link)}</link>\n",
        f"<description>{_text(feed.description)}</description>\n",
        f"<dc:date>{_iso(feed.changed_at)}</dc:date>\n",
        "<items>\n<rdf:Seq>\n",
    ]
    abouts = [entry.guid or entry.link for entry in entries]
    out += [f'<rdf:li rdf:resource="{_attr(about)}"/>\n' for about in abouts if about]
    out.append("</rdf:Seq>\n</items>\n</channel>\n")
    for entry, about in zip(entries, abouts, strict=True):
        out.append(f'<item rdf:about="{_attr(about)}">\n' if about else "<item>\n")
        out.append(f"<title>{_text(entry.title)}</title>\n")
        if entry.link is not None:
            out.append(f"<link>{_text(entry.link)}</link>\n")
        out.append(f"<description>{_text(entry.html)}</description>\n")
        out.append(f"<dc:date>{_iso(entry.published)}</dc:date>\n</item>\n")
    out.append("</rdf:RDF>\n")
    return "".join(out).encode()


def _render_mastodon(account: _MastodonAccount) -> bytes:
    profile = f"https://{account.instance}/@{account.username}"
    avatar = f"https://{account.instance}/avatars/original/missing.png"
    name = _text(account.display_name)
    statuses = sorted(account.statuses, key=lambda s: s.id, reverse=True)[:MASTODON_FEED_SIZE]
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<rss version="2.0" xmlns:webfeeds="http://webfeeds.org/rss/1.0" '
        'xmlns:media="http://search.yahoo.com/mrss/">\n',
        "  <channel>\n",
        f"    <title>{name}</title>\n",
        f"    <description>Public posts from @{account.username}@{account.instance}"
        "</description>\n",
        f"    <link>{profile}</link>\n",
        f"    <image>\n      <url>{avatar}</url>\n      <title>{name}</title>\n"
        f"      <link>{profile}</link>\n    </image>\n",
    ]
    if statuses:
        out.append(f"    <lastBuildDate>{_rfc822(statuses[0].published)}</lastBuildDate>\n")
    out.append(f"    <webfeeds:icon>{avatar}</webfeeds:icon>\n")
    out.append(f"    <generator>Mastodon v{MASTODON_VERSION}</generator>\n")
    for status in statuses:
        url = f"{profile}/{status.id}"
        out += [
            "    <item>\n",
            f'      <guid isPermaLink="true">{url}</guid>\n',
            f"      <link>{url}</link>\n",
            f"      <pubDate>{_rfc822(status.published)}</pubDate>\n",
            f"      <description>{_text(status.html)}</description>\n",
        ]
        out += [f"      <category>{_text(tag)}</category>\n" for tag in status.tags]
        out.append("    </item>\n")
    out.append("  </channel>\n</rss>\n")
    return "".join(out).encode()


def _render_bluesky(account: _BlueskyAccount) -> bytes:
    posts = sorted(account.posts, key=lambda p: p.rkey, reverse=True)[:BLUESKY_FEED_SIZE]
    profile = f"https://{BLUESKY_HOST}/profile/{account.handle}"
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>']
    if account.description:
        out.append(f"<description>{_go_escape(account.description)}</description>")
    title = f"@{account.handle}"
    if account.display_name:
        title += f" - {account.display_name}"
    out.append(f"<link>{_go_escape(profile)}</link><title>{_go_escape(title)}</title>")
    for post in posts:
        out.append(f"<item><link>{_go_escape(profile)}/post/{post.rkey}</link>")
        if post.text:
            out.append(f"<description>{_go_escape(post.text)}</description>")
        out.append(f"<pubDate>{_go_date(post.published)}</pubDate>")
        out.append(
            f'<guid isPermaLink="false">at://{account.did}/app.bsky.feed.post/{post.rkey}</guid>'
            "</item>"
        )
    out.append("</channel></rss>")
    return "".join(out).encode()


def _alternate_page(title: str, feed_url: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>\n"
        f"<title>{_text(title)}</title>\n"
        f'<link rel="alternate" type="application/rss+xml" href="{_attr(feed_url)}"/>\n'
        f"</head><body><h1>{_text(title)}</h1></body></html>\n"
    ).encode()


# --------------------------------------------------------------------------- the server


class FeedStandIn:
    """An in-memory feed server with virtual hosts, for tests and sandboxes.

    Its methods are not thread-safe: call them from the event loop that runs the server
    (or before :meth:`start`). Hosts are matched case-insensitively; paths exactly (a path
    may carry a query string: ``/rss?cat=it`` is looked up before ``/rss``).
    """

    def __init__(self, *, port: int = 0) -> None:
        """Configure the stand-in; nothing listens until :meth:`start` (port 0: the OS picks)."""
        self.port = port
        self.requests: list[FeedRequest] = []
        #: Whether the bsky.app handle redirect names an absolute URL. bskyweb answers
        #: ``Location: /profile/{did}/rss`` (relative, from echo's ``c.Redirect``).
        self.bluesky_absolute_redirect = False
        # Mastodon lets caches keep a profile feed a minute; tests that poll every second
        # lower it to see new posts without waiting.
        self.mastodon_max_age = 60
        self._resources: dict[tuple[str, str], _Resource] = {}
        self._hosts: dict[str, None] = {}  # hosts with content, in the order they got it
        self._mastodon: dict[tuple[str, str], _MastodonAccount] = {}
        self._mastodon_instances: set[str] = set()
        self._bluesky: dict[str, _BlueskyAccount] = {}  # by lower-cased handle
        self._bluesky_dids: dict[str, _BlueskyAccount] = {}
        self._faults: dict[tuple[str, str | None], _Faults] = {}
        self._last_status_id = 0
        self._last_tid = 0
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start listening on 127.0.0.1; sets :attr:`port`."""
        if self._runner is not None:
            raise RuntimeError("FeedStandIn is already started")
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, _LOOPBACK, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("Feed stand-in listening on %s", self.local_url("/"))

    async def stop(self) -> None:
        """Stop listening; delayed and trickling answers are abandoned."""
        runner, self._runner = self._runner, None
        if self._closing is not None:
            self._closing.set()
        if runner is not None:
            await runner.cleanup()
            log.info("Feed stand-in on port %d stopped", self.port)

    async def __aenter__(self) -> Self:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        await self.stop()

    # ----------------------------------------------------------------- addresses

    def local_url(self, path: str = "/") -> str:
        """``http://127.0.0.1:PORT{path}``: the default host, reached directly."""
        return f"http://{_LOOPBACK}:{self._require_port()}{path}"

    def url(self, host: str, path: str = "/") -> str:
        """The public URL of `path` on `host` (``https://{host}{path}``); for the default
        host, :meth:`local_url`."""
        host = _normalize_host(host)
        if host == DEFAULT_HOST:
            return self.local_url(path)
        return f"https://{host}{path}"

    def hosts_setting(self, *hosts: str) -> str:
        """The bot's host map sending `hosts` (default: every host given content or faults,
        but the default host) here: ``"jobs.example=http://127.0.0.1:PORT,..."``."""
        chosen = [_normalize_host(h) for h in hosts] if hosts else list(self._hosts)
        base = f"http://{_LOOPBACK}:{self._require_port()}"
        return ",".join(f"{host}={base}" for host in chosen if host != DEFAULT_HOST)

    def _require_port(self) -> int:
        if not self.port:
            raise RuntimeError("FeedStandIn has no port yet: call start() first")
        return self.port

    def _touch_host(self, host: str) -> str:
        host = _normalize_host(host)
        self._hosts.setdefault(host, None)
        return host

    # ----------------------------------------------------------------- feeds

    def add_feed(
        self,
        host: str,
        path: str,
        *,
        fmt: FeedFormat,
        title: str,
        link: str | None = None,
        description: str = "",
        ttl_minutes: int | None = None,
        cache_max_age: int | None = None,
        conditional: bool = True,
        astral_refs: AstralRefs | None = None,
    ) -> None:
        """Serve an (empty) feed at `path` on `host`; `link` defaults to the host's home page.
        With `conditional`, answers carry ETag and Last-Modified and may be 304; with
        `astral_refs`, see :meth:`set_astral_refs`."""
        if fmt not in _FORMATS:
            raise ValueError(f"unknown feed format {fmt!r} (rss2, rss1 or atom)")
        host = self._touch_host(host)
        self._resources[(host, path)] = _Feed(
            host=host,
            path=path,
            fmt=fmt,
            title=title,
            link=link if link is not None else f"https://{host}/",
            description=description,
            ttl_minutes=ttl_minutes,
            cache_max_age=cache_max_age,
            conditional=conditional,
            changed_at=datetime.now(UTC).replace(microsecond=0),
            astral_refs=astral_refs,
        )

    def add_entry(
        self,
        host: str,
        path: str,
        *,
        title: str,
        html: str,
        link: str | None = None,
        guid: str | None = None,
        published: datetime | None = None,
    ) -> str:
        """Append an entry to a feed. Without `guid` it is rendered with no guid/id element
        (a reader falls back to the link, then to the content). Returns the guid, or when
        there is none a key ``"#N"`` (N: the entry's insertion index) for :meth:`edit_entry`.
        """
        feed = self._feed(host, path)
        moment = _utc(published)
        key = guid if guid is not None else f"#{feed.added}"
        feed.added += 1
        feed.entries.append(_Entry(title, html, link, guid, moment, moment, key))
        self._changed(feed)
        return key

    def edit_entry(
        self,
        host: str,
        path: str,
        entry: int | str,
        *,
        title: str | None = None,
        html: str | None = None,
    ) -> None:
        """Change an entry's text in place (same guid and link). `entry` is an index in the
        order entries were added (negative from the end), a guid, a key :meth:`add_entry`
        returned, or a link."""
        feed = self._feed(host, path)
        found = self._entry(feed, entry)
        if title is not None:
            found.title = title
        if html is not None:
            found.html = html
        found.updated = datetime.now(UTC)
        self._changed(feed)

    def set_astral_refs(self, host: str, path: str, style: AstralRefs | None) -> None:
        """Write the feed's characters beyond U+FFFF (emoji) as two numeric references to
        their UTF-16 surrogates, `decimal` (``&#55357;&#56960;``) or `hex`
        (``&#xD83D;&#xDE80;``), as some generators do; None writes them as UTF-8 again."""
        feed = self._feed(host, path)
        feed.astral_refs = style
        self._changed(feed)

    def remove_entry(self, host: str, path: str, entry: int | str) -> None:
        """Drop an entry from a feed (as :meth:`edit_entry` designates it)."""
        feed = self._feed(host, path)
        feed.entries.remove(self._entry(feed, entry))
        self._changed(feed)

    def _feed(self, host: str, path: str) -> _Feed:
        resource = self._resources.get((_normalize_host(host), path))
        if not isinstance(resource, _Feed):
            raise KeyError(f"no feed at {host}{path}")
        return resource

    @staticmethod
    def _entry(feed: _Feed, entry: int | str) -> _Entry:
        if isinstance(entry, int):
            return feed.entries[entry]
        for candidate in feed.entries:
            if entry in (candidate.key, candidate.guid):
                return candidate
        for candidate in feed.entries:
            if candidate.link == entry:
                return candidate
        raise KeyError(f"no entry {entry!r} in {feed.host}{feed.path}")

    @staticmethod
    def _changed(feed: _Feed) -> None:
        # Last-Modified has a one-second resolution: a change made in the second a client
        # was told about moves it on by a second, so If-Modified-Since never hides it.
        now = datetime.now(UTC).replace(microsecond=0)
        step = timedelta(seconds=1) if feed.observed else timedelta(0)
        feed.changed_at = max(now, feed.changed_at + step)
        feed.observed = False

    # ----------------------------------------------------------------- Mastodon

    def add_mastodon_account(
        self, instance: str, username: str, *, display_name: str, note: str = ""
    ) -> str:
        """Create an account on a Mastodon instance; returns its feed URL
        (``https://{instance}/@{username}.rss``)."""
        if not _MASTODON_USER_RE.match(username):
            raise ValueError(f"invalid Mastodon username: {username!r}")
        instance = self._touch_host(instance)
        key = (instance, username.lower())
        if key in self._mastodon:
            raise ValueError(f"@{username}@{instance} already exists")
        self._mastodon[key] = _MastodonAccount(instance, username, display_name, note)
        self._mastodon_instances.add(instance)
        return f"https://{instance}/@{username}.rss"

    def mastodon_post(
        self, instance: str, username: str, html: str, *, published: datetime | None = None
    ) -> str:
        """Publish a public status and return its URL. `html` is the status as Mastodon
        renders it (``<p>…</p>``); plain text (not starting with ``<``) is formatted the way
        Mastodon formats it: paragraphs, links and hashtag links. Hashtags become
        ``<category>`` elements. Ids are snowflake-like ((ms << 16) + sequence) and grow."""
        account = self._mastodon_account(instance, username)
        moment = _utc(published)
        body = html if html.lstrip().startswith("<") else _mastodon_html(account.instance, html)
        status_id = max(self._last_status_id + 1, int(moment.timestamp() * 1000) << 16)
        self._last_status_id = status_id
        account.statuses.append(_Status(status_id, body, _hashtags(body), moment))
        return f"https://{account.instance}/@{account.username}/{status_id}"

    def _mastodon_account(self, instance: str, username: str) -> _MastodonAccount:
        try:
            return self._mastodon[(_normalize_host(instance), username.lower())]
        except KeyError:
            raise KeyError(f"no account @{username}@{instance}") from None

    # ----------------------------------------------------------------- Bluesky

    def add_bluesky_account(
        self, handle: str, *, did: str | None = None, display_name: str, description: str = ""
    ) -> str:
        """Create a Bluesky account (`did` defaults to a deterministic ``did:plc:``) and
        return its DID."""
        if not _HANDLE_RE.match(handle):
            raise ValueError(f"invalid Bluesky handle: {handle!r}")
        did = did if did is not None else _did_for(handle)
        if not _DID_RE.match(did):
            raise ValueError(f"invalid DID: {did!r}")
        if handle.lower() in self._bluesky or did in self._bluesky_dids:
            raise ValueError(f"{handle} or {did} already exists")
        account = _BlueskyAccount(handle.lower(), did, display_name, description)
        self._bluesky[account.handle] = account
        self._bluesky_dids[did] = account
        self._touch_host(BLUESKY_HOST)
        return did

    def bluesky_post(self, handle: str, text: str, *, published: datetime | None = None) -> str:
        """Publish a top-level post and return its URL (``https://bsky.app/profile/
        {handle}/post/{rkey}``); rkeys are 13-character TIDs that grow."""
        account = self._bluesky.get(handle.lower())
        if account is None:
            raise KeyError(f"no Bluesky account {handle!r}")
        tid = max(self._last_tid + 1, (time.time_ns() // 1000) << 10)
        self._last_tid = tid
        rkey = _tid(tid)
        account.posts.append(_Post(rkey, text, _utc(published)))
        return f"https://{BLUESKY_HOST}/profile/{account.handle}/post/{rkey}"

    def bluesky_did(self, handle: str) -> str:
        """The DID of an account."""
        return self._bluesky[handle.lower()].did

    # ----------------------------------------------------------------- pages and bodies

    def add_page(
        self, host: str, path: str, html: str, *, status: int = 200, content_type: str = _HTML
    ) -> None:
        """Serve an HTML page (a job board's home page announcing its feed, say)."""
        host = self._touch_host(host)
        self._resources[(host, path)] = _Static(html.encode(), status, content_type)

    def add_raw(
        self, host: str, path: str, body: bytes, *, content_type: str = "application/rss+xml"
    ) -> None:
        """Serve `body` as is (malformed XML, say)."""
        host = self._touch_host(host)
        self._resources[(host, path)] = _Static(body, 200, content_type)

    def redirect(self, host: str, path: str, location: str, *, status: int = 302) -> None:
        """Answer `path` with a redirect to `location` (relative or absolute, sent as is)."""
        if status not in (301, 302, 303, 307, 308):
            raise ValueError(f"not a redirect status: {status}")
        host = self._touch_host(host)
        self._resources[(host, path)] = _Redirect(location, status)

    def big_body(
        self,
        host: str,
        path: str,
        size_bytes: int,
        *,
        content_type: str = "application/rss+xml",
        declare_length: bool = False,
    ) -> None:
        """Stream `size_bytes` of XML-looking filler in 64 KiB chunks (with Content-Length
        only when `declare_length`; chunked otherwise)."""
        if size_bytes < 0:
            raise ValueError("size must not be negative")
        host = self._touch_host(host)
        self._resources[(host, path)] = _BigBody(size_bytes, content_type, declare_length)

    # ----------------------------------------------------------------- faults

    def fail(
        self,
        host: str,
        path: str | None,
        status: int,
        *,
        count: int | None = None,
        body: bytes = b"",
    ) -> None:
        """Answer `status` to requests for `path` (every path when None) `count` times
        (None: until :meth:`heal`)."""
        if not 100 <= status <= 599:
            raise ValueError(f"invalid HTTP status: {status}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        faults = self._fault_slot(host, path)
        faults.fail_status, faults.fail_remaining, faults.fail_body = status, count, body

    def unreachable(self, host: str, path: str | None = None) -> None:
        """Close connections for `path` (every path when None) without answering."""
        self._fault_slot(host, path).unreachable = True

    def set_delay(self, host: str, path: str | None, seconds: float) -> None:
        """Wait `seconds` before answering (the headers); 0 to stop."""
        if seconds < 0:
            raise ValueError("delay must not be negative")
        self._fault_slot(host, path).delay = seconds
        self._prune(host, path)

    def set_trickle(self, host: str, path: str | None, bytes_per_second: int | None) -> None:
        """Send the headers at once, then the body at `bytes_per_second` (None to stop)."""
        if bytes_per_second is not None and bytes_per_second < 1:
            raise ValueError("bytes_per_second must be at least 1")
        self._fault_slot(host, path).trickle = bytes_per_second
        self._prune(host, path)

    def heal(self, host: str, path: str | None = None) -> None:
        """Remove the faults set on `path`; with None, every fault on the host."""
        host = _normalize_host(host)
        if path is not None:
            self._faults.pop((host, path), None)
            return
        for key in [key for key in self._faults if key[0] == host]:
            del self._faults[key]

    def _fault_slot(self, host: str, path: str | None) -> _Faults:
        host = self._touch_host(host)
        return self._faults.setdefault((host, path), _Faults())

    def _prune(self, host: str, path: str | None) -> None:
        key = (_normalize_host(host), path)
        faults = self._faults.get(key)
        if faults is not None and faults.empty():
            del self._faults[key]

    def _faults_for(self, host: str, path: str) -> Iterator[_Faults]:
        """The faults that apply to a request: the path's, then the host's."""
        bare = path.partition("?")[0]
        seen: set[int] = set()
        for key in ((host, path), (host, bare), (host, None)):
            faults = self._faults.get(key)
            if faults is not None and id(faults) not in seen:
                seen.add(id(faults))
                yield faults

    # ----------------------------------------------------------------- observability

    def count(self, host: str, path: str | None = None, *, status: int | None = None) -> int:
        """Requests recorded for `host` (and `path`, when given; with its query string, if
        any), optionally only those answered with `status`."""
        host = _normalize_host(host)
        return sum(
            1
            for r in self.requests
            if r.host == host
            and (path is None or r.path == path)
            and (status is None or r.status == status)
        )

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self.requests.clear()

    # ----------------------------------------------------------------- request pipeline

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        at = time.time()
        host = _normalize_host(request.host)
        path = request.path_qs
        faults = list(self._faults_for(host, path))

        def record(status: int) -> None:
            self.requests.append(
                FeedRequest(
                    host=host,
                    path=path,
                    method=request.method,
                    status=status,
                    if_none_match=request.headers.get("If-None-Match"),
                    if_modified_since=request.headers.get("If-Modified-Since"),
                    at=at,
                )
            )

        if any(f.unreachable for f in faults):
            record(0)
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPException()  # never written: the connection is gone

        delay = max((f.delay for f in faults), default=0.0)
        if delay > 0 and not await self._sleep(delay):
            record(0)
            raise web.HTTPServiceUnavailable()  # shutting down

        answer = self._take_failure(faults)
        if answer is None:
            try:
                answer = self._answer(request, host, path)
            except Exception:
                log.exception("feed stand-in failed on %s %s%s", request.method, host, path)
                answer = _Answer(500, {"Content-Type": "text/plain"}, b"Internal Server Error")
        record(answer.status)
        trickle = next((f.trickle for f in faults if f.trickle is not None), None)
        if trickle is None and answer.big is None:
            return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
        return await self._stream(request, answer, trickle)

    @staticmethod
    def _take_failure(faults: list[_Faults]) -> _Answer | None:
        for f in faults:
            if f.fail_status is None:
                continue
            status, body = f.fail_status, f.fail_body
            if f.fail_remaining is not None:
                f.fail_remaining -= 1
                if f.fail_remaining <= 0:
                    f.fail_status = f.fail_remaining = None
            return _Answer(status, {"Content-Type": _HTML}, body)
        return None

    async def _sleep(self, seconds: float) -> bool:
        """Sleep; False when the server stops meanwhile."""
        closing = self._closing
        if closing is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), seconds)
        return not closing.is_set()

    async def _stream(
        self, request: web.Request, answer: _Answer, trickle: int | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=answer.status, headers=answer.headers)
        big = answer.big
        if big is None:
            response.content_length = len(answer.body)
        elif big.declare_length:
            response.content_length = big.size
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        step = max(1, trickle // _TICKS_PER_SECOND) if trickle is not None else _BIG_CHUNK
        try:
            for chunk in self._chunks(answer, step):
                await response.write(chunk)
                if trickle is not None and not await self._sleep(len(chunk) / trickle):
                    break
            await response.write_eof()
        except ConnectionError:
            pass  # the client gave up
        return response

    @staticmethod
    def _chunks(answer: _Answer, step: int) -> Iterator[bytes]:
        if answer.big is None:
            for start in range(0, len(answer.body), step):
                yield answer.body[start : start + step]
            return
        yield from _big_stream(answer.big.size, step)

    def _answer(self, request: web.Request, host: str, path: str) -> _Answer:
        if request.method not in ("GET", "HEAD"):
            return _Answer(405, {"Allow": "GET, HEAD", "Content-Type": _HTML}, b"")
        resource = self._resources.get((host, path)) or self._resources.get(
            (host, path.partition("?")[0])
        )
        bare = request.path
        if resource is None:
            if host in self._mastodon_instances:
                return self._mastodon_route(request, host, bare)
            if host == BLUESKY_HOST:
                return self._bluesky_route(request, bare)
            return _Answer(404, {"Content-Type": _HTML}, _NOT_FOUND_PAGE)
        if isinstance(resource, _Static):
            headers = {"Content-Type": resource.content_type}
            return _Answer(resource.status, headers, resource.body)
        if isinstance(resource, _Redirect):
            headers = {"Location": resource.location, "Content-Type": _HTML}
            return _Answer(resource.status, headers, b"")
        if isinstance(resource, _BigBody):
            return _Answer(200, {"Content-Type": resource.content_type}, big=resource)
        return self._feed_answer(request, resource)

    def _feed_answer(self, request: web.Request, feed: _Feed) -> _Answer:
        self_url = f"https://{feed.host}{feed.path}"
        if feed.host == DEFAULT_HOST:
            self_url = self.local_url(feed.path)
        entries = sorted(feed.entries, key=lambda e: e.published, reverse=True)
        renderer = {"rss2": _render_rss2, "rss1": _render_rss1, "atom": _render_atom}[feed.fmt]
        body = renderer(feed, self_url, entries)
        if feed.astral_refs is not None:
            body = _surrogate_refs(body, feed.astral_refs)
        headers = {"Content-Type": _CONTENT_TYPES[feed.fmt]}
        if feed.cache_max_age is not None:
            headers["Cache-Control"] = f"max-age={feed.cache_max_age}"
        if not feed.conditional:
            return _Answer(200, headers, body)
        headers["ETag"] = _etag(body)
        headers["Last-Modified"] = _http_date(feed.changed_at)
        feed.observed = True
        return self._conditional(request, headers, body, feed.changed_at)

    @staticmethod
    def _conditional(
        request: web.Request, headers: dict[str, str], body: bytes, changed_at: datetime | None
    ) -> _Answer:
        """200 with `body`, or 304 when the request's validators still match."""
        inm = request.headers.get("If-None-Match")
        ims = request.headers.get("If-Modified-Since")
        etag = headers.get("ETag")
        if inm is not None:  # If-Modified-Since is ignored then (RFC 9110 13.1.3)
            fresh = etag is not None and _etag_matches(inm, etag)
        elif ims is not None and changed_at is not None:
            since = _parse_http_date(ims)
            fresh = since is not None and since >= changed_at
        else:
            fresh = False
        if fresh:
            del headers["Content-Type"]
            return _Answer(304, headers)
        return _Answer(200, headers, body)

    def _mastodon_route(self, request: web.Request, host: str, path: str) -> _Answer:
        match = re.fullmatch(r"/@([^/]+?)(\.rss)?", path)
        account = self._mastodon.get((host, match.group(1).lower())) if match else None
        if match is None or account is None:
            return _Answer(404, {"Content-Type": _HTML}, _MASTODON_NOT_FOUND_PAGE)
        profile = f"https://{host}/@{account.username}"
        if match.group(2) is None:
            page = _alternate_page(
                f"{account.display_name} (@{account.username}@{host})", f"{profile}.rss"
            )
            return _Answer(200, {"Content-Type": _HTML}, page)
        body = _render_mastodon(account)
        headers = {
            "Content-Type": "application/rss+xml; charset=utf-8",
            "Cache-Control": f"max-age={self.mastodon_max_age}, public",
            "ETag": _etag(body, weak=True),
            "Vary": "Accept, Accept-Language, Cookie",
        }
        return self._conditional(request, headers, body, None)

    def _bluesky_route(self, request: web.Request, path: str) -> _Answer:
        match = re.fullmatch(r"/profile/([^/]+)(/rss)?", path)
        if match is None:
            return _Answer(404, {"Content-Type": _HTML}, _NOT_FOUND_PAGE)
        ident, rss = match.group(1), match.group(2) is not None
        if not ident.startswith("did:"):
            if not _HANDLE_RE.match(ident):
                return _bsky_error(400, f"not a valid handle: {ident}")
            account = self._bluesky.get(ident.lower())
            if account is None:
                return _bsky_error(404, f"account not found: {ident.lower()}")
            if not rss:
                page = _alternate_page(
                    f"{account.display_name} (@{account.handle})",
                    f"https://{BLUESKY_HOST}/profile/{account.did}/rss",
                )
                return _Answer(200, {"Content-Type": _HTML}, page)
            location = f"/profile/{account.did}/rss"
            if self.bluesky_absolute_redirect:
                location = f"https://{BLUESKY_HOST}{location}"
            return _Answer(302, {"Location": location}, b"")
        if not _DID_RE.match(ident):
            return _bsky_error(400, f"not a valid DID: {ident}")
        account = self._bluesky_dids.get(ident)
        if account is None:
            return _bsky_error(404, f"account not found: {ident}")
        if not rss:
            return _Answer(200, {"Content-Type": _HTML}, _alternate_page(account.handle, ""))
        return _Answer(
            200, {"Content-Type": "application/xml; charset=UTF-8"}, _render_bluesky(account)
        )


def _bsky_error(status: int, message: str) -> _Answer:
    """An echo HTTPError, as bskyweb answers it."""
    body = ('{"message":"' + message.replace("\\", "\\\\").replace('"', '\\"') + '"}\n').encode()
    return _Answer(status, {"Content-Type": "application/json; charset=UTF-8"}, body)
