"""A fetched feed body read into plain values: numeric references to surrogates decoded, cut
to its first entries, parsed by feedparser, its entries reduced to text.

This is the CPU-bound part of reading a feed, and it is given a stranger's bytes: it runs in
a worker process (`bot.sources.feed_worker`), under a time budget. It returns JSON-ready
values and raises only FeedError (a parser's own exception becomes MalformedFeed).
"""

from __future__ import annotations

import calendar
import hashlib
import io
import re
import time
from datetime import UTC, datetime
from typing import Any
from xml.sax import SAXParseException

import feedparser

from bot.sources.feed_errors import FeedError, MalformedFeed, NotAFeed
from bot.sources.feed_text import feed_links, html_to_text, plain_text

# Entries read from one answer (in document order, the newest first in practice): a 5 MB feed
# can list a hundred thousand tiny ones, and its followers want what is new, not its archive.
MAX_ENTRIES = 500
MAX_LINKS = 5  # feeds an HTML page announces, kept for discovery
WHITESPACE_AND_BOM = b" \t\r\n\xef\xbb\xbf"
HTML_TYPES = ("text/html", "application/xhtml+xml")

# Some generators write a character beyond U+FFFF as the two UTF-16 halves of it, each as a
# numeric character reference (`&#55357;&#56960;` for 🚀). XML forbids them, and feedparser's
# loose parser raises UnicodeEncodeError on them. A reference to a surrogate, decimal or hex,
# written once (`&#…;`) or escaped inside escaped HTML (`&amp;#…;`); the decimal alternative
# takes a little more than the range (55000–57999), which the value check narrows.
SURROGATE_REF_RE = re.compile(
    rb"&(amp;)?#(?:[xX]0{0,8}([dD][89a-fA-F][0-9a-fA-F]{2})|0{0,8}(5[5-7][0-9]{3}));"
)
HIGH = range(0xD800, 0xDC00)
LOW = range(0xDC00, 0xE000)
# Where an entry starts or ends (RSS <item>, Atom <entry>, with or without a prefix).
ENTRY_START_RE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]")
ENTRY_END_RE = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>")
TAIL_WINDOW = 64 * 1024
SURROGATES_RE = re.compile("[\ud800-\udfff]")


def _surrogate(match: re.Match[bytes]) -> int | None:
    hex_digits, decimal = match.group(2), match.group(3)
    value = int(hex_digits, 16) if hex_digits else int(decimal)
    return value if 0xD800 <= value <= 0xDFFF else None


def decode_surrogate_refs(body: bytes) -> bytes:
    """`body` with each pair of references to a high and a low surrogate written as one
    reference to the character they encode (`&#55357;&#56960;` -> `&#128640;`, in the same
    escaping), and every other reference to a surrogate dropped: it encodes nothing."""
    matches = [(m, value) for m in SURROGATE_REF_RE.finditer(body) if (value := _surrogate(m))]
    if not matches:
        return body
    out: list[bytes] = []
    position = 0
    index = 0
    while index < len(matches):
        match, value = matches[index]
        out.append(body[position : match.start()])
        position = match.end()
        index += 1
        if value in HIGH and index < len(matches):
            low, low_value = matches[index]
            if low.start() == match.end() and low_value in LOW and low[1] == match[1]:
                character = 0x10000 + ((value - 0xD800) << 10) + (low_value - 0xDC00)
                out.append(b"&%s#%d;" % (match[1] or b"", character))
                position = low.end()
                index += 1
    out.append(body[position:])
    return b"".join(out)


def cut_entries(body: bytes, limit: int) -> bytes:
    """`body` without its entries past the first `limit` (what follows the last entry, the
    closing tags, is kept): the parser never pays for the rest. The cut is made where the
    entry after the limit starts, so it never splits a reference or a tag."""
    starts = ENTRY_START_RE.finditer(body)
    cut = None
    for count, start in enumerate(starts):
        if count == limit:
            cut = start.start()
            break
    if cut is None:
        return body
    # The last entry's end, looked for near the end of the body first (it is there, unless
    # something long follows it).
    last_end = None
    for since in dict.fromkeys((max(cut, len(body) - TAIL_WINDOW), cut)):
        for last_end in ENTRY_END_RE.finditer(body, since):  # noqa: B007 (the last one)
            pass
        if last_end is not None:
            break
    tail = body[last_end.end() :] if last_end is not None else b""
    return body[:cut] + tail


def read_body(
    body: bytes,
    *,
    url: str,
    content_type: str,
    discover: bool,
    max_entries: int = MAX_ENTRIES,
) -> dict[str, Any]:
    """What a body holds, as JSON-ready values: `{"feed": {...}}` (title, link, refresh hints
    and at most `max_entries` entries), or `{"page": [links]}` for an HTML page (the feeds it
    announces, when `discover`). Raises NotAFeed or MalformedFeed."""
    body = cut_entries(decode_surrogate_refs(body), max_entries)
    headers = {"content-location": url, "content-type": content_type or "application/xml"}
    try:
        # A stream, never bytes: feedparser opens bytes that name a file as that file.
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    except FeedError:
        raise
    except Exception as exc:
        # A parser's failure is what it is: this document cannot be read (not "unreachable").
        raise MalformedFeed(f"unreadable ({type(exc).__name__})") from None
    if _is_html(parsed, content_type, body):
        if not discover:
            raise NotAFeed("not a feed")
        return {"page": feed_links(_decode(body, content_type), url)[:MAX_LINKS]}
    return {"feed": _feed(parsed, body, max_entries)}


def _decode(body: bytes, content_type: str) -> str:
    charset = "utf-8"
    if "charset=" in content_type:
        charset = content_type.split("charset=", 1)[1].split(";")[0].strip().strip("\"'")
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _is_html(parsed: Any, content_type: str, body: bytes) -> bool:
    """Whether feedparser found no feed in what is an HTML page."""
    if parsed.get("version") or parsed.entries:
        return False
    start = body.lstrip(WHITESPACE_AND_BOM)[:15].lower()
    return content_type.lower().startswith(HTML_TYPES) or start.startswith(
        (b"<!doctype html", b"<html")
    )


def _feed(parsed: Any, body: bytes, max_entries: int) -> dict[str, Any]:
    meta = parsed.feed
    link = _clean(str(meta.get("link", "")))
    entries = [
        entry for raw in parsed.entries[:max_entries] if (entry := _entry(raw, link)) is not None
    ]
    title = _detail_text(meta.get("title", ""), meta.get("title_detail"))
    if not title and not entries:
        start = body.lstrip(WHITESPACE_AND_BOM)
        if not start.startswith(b"<"):
            raise NotAFeed("not XML")
        if parsed.get("bozo") and isinstance(parsed.get("bozo_exception"), SAXParseException):
            raise MalformedFeed("malformed XML")
        if not parsed.get("version"):
            raise NotAFeed("no feed in this XML")
    return {
        "title": title,
        "link": link,
        # The refresh hints the fetcher weighs against Cache-Control (see feeds._ttl).
        "hints": {
            name: _clean(str(meta.get(name, "")))[:32]
            for name in ("ttl", "sy_updateperiod", "sy_updatefrequency")
        },
        "entries": entries,
    }


def _clean(text: str) -> str:
    """`text` without lone UTF-16 surrogates (a parser may still make some from what it
    reads): a pair becomes the character it encodes, a lone half U+FFFD. Such a string could
    be neither stored nor sent."""
    if not SURROGATES_RE.search(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _detail_text(value: object, detail: object) -> str:
    """Plain text of a feedparser text construct (HTML reduced; plain text kept literal)."""
    if not isinstance(value, str) or not value:
        return ""
    kind = str(detail.get("type", "")) if isinstance(detail, dict) else ""
    return _clean(plain_text(value) if kind == "text/plain" else html_to_text(value))


def _entry(raw: Any, feed_link: str) -> dict[str, Any] | None:
    contents = raw.get("content") or []
    if contents:
        body, detail = contents[0].get("value", ""), contents[0]
    else:
        body, detail = raw.get("summary", ""), raw.get("summary_detail")
    raw_title = _clean(str(raw.get("title", "")))
    title = _detail_text(raw_title, raw.get("title_detail"))
    text = _detail_text(body, detail)
    link = _clean(str(raw.get("link", "")))
    if not (title or text or link or raw.get("id")):
        return None
    ident = _clean(str(raw.get("id") or link))
    if not ident:
        content = _clean(body if isinstance(body, str) else "")
        digest = hashlib.sha256(f"{raw_title}\n{content}".encode()).hexdigest()
        ident = f"sha256:{digest}"
    return {
        "id": ident,
        "key": hashlib.sha256(ident.encode()).hexdigest(),
        "title": title,
        "text": text,
        "url": link or feed_link,
        "published": _moment(raw.get("published_parsed") or raw.get("updated_parsed")),
    }


def _moment(value: object) -> int | None:
    """A feedparser date (a struct_time in UTC) as seconds since the epoch, if a datetime
    can hold it."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        seconds = calendar.timegm(value)
        datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return seconds
