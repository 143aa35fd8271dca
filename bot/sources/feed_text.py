"""HTML of feed entries reduced to plain text, and feed links found in HTML pages (stdlib
html.parser: entities are decoded once, and decoded text is never parsed again)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

SKIPPED_TAGS = frozenset({"script", "style", "template", "noscript"})
PARAGRAPH_TAGS = frozenset(
    {"p", "blockquote", "ul", "ol", "dl", "pre", "table", "h1", "h2", "h3", "h4", "h5", "h6"}
)
LINE_TAGS = frozenset({"div", "li", "tr", "dt", "dd", "section", "article", "header", "footer"})
FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})
SPACES_RE = re.compile(r"[^\S\n]+")
WHITESPACE_RE = re.compile(r"\s+")
# Block boundaries are marks until the text is assembled: marks next to each other make one
# break (a paragraph break if any of them is one), unlike <br>, whose breaks add up.
PARAGRAPH = "\x00"
LINE = "\x01"
MARKS_RE = re.compile(r"[^\S\n]*[\x00\x01][\x00\x01 \t]*")


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: list[str] = []
        self._preformatted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED_TAGS:
            self._skipping.append(tag)
            return
        if self._skipping:
            return
        if tag == "pre":
            self._preformatted += 1
        if tag == "br":
            self.parts.append("\n")
        elif tag in PARAGRAPH_TAGS:
            self.parts.append(PARAGRAPH)
        elif tag == "li":
            self.parts.append(LINE + "• ")
        elif tag in LINE_TAGS or tag == "hr":
            self.parts.append(LINE)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <p/>: a start without an end.
        self.handle_starttag(tag, attrs)
        if tag in SKIPPED_TAGS and self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED_TAGS:
            if tag in self._skipping:
                while self._skipping and self._skipping.pop() != tag:
                    pass
            return
        if self._skipping:
            return
        if tag == "pre" and self._preformatted:
            self._preformatted -= 1
        if tag in PARAGRAPH_TAGS:
            self.parts.append(PARAGRAPH)
        elif tag in LINE_TAGS and tag != "li":  # the next item starts its own line
            self.parts.append(LINE)
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            # Control characters in the data must not pass for marks; outside <pre>, a line
            # break in the source is a space, as in a browser.
            data = data.replace(PARAGRAPH, "").replace(LINE, "")
            self.parts.append(data if self._preformatted else WHITESPACE_RE.sub(" ", data))


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: scripts and styles dropped, blocks on their own lines
    (paragraphs apart by one blank line), list items as "• ", link text kept."""
    parser = _TextParser()
    parser.feed(fragment)
    parser.close()
    marked = "".join(parser.parts)
    return plain_text(
        MARKS_RE.sub(lambda run: "\n\n" if PARAGRAPH in run.group() else "\n", marked)
    )


def plain_text(text: str) -> str:
    """Text with its whitespace tidied: spaces collapsed within lines, at most one blank
    line in a row, stripped."""
    lines = [SPACES_RE.sub(" ", line).strip() for line in text.replace("\r", "").split("\n")]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip()


class _FeedLinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link":
            return
        values = {name: (value or "") for name, value in attrs}
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower().split(";")[0].strip()
        href = values.get("href", "").strip()
        if "alternate" in rels and kind in FEED_TYPES and href:
            self.hrefs.append(href)


def feed_links(page: str, page_url: str) -> list[str]:
    """The RSS/Atom feeds an HTML page announces (`<link rel="alternate" type=…>`), as
    absolute URLs, in page order."""
    parser = _FeedLinkParser()
    parser.feed(page)
    parser.close()
    return [urljoin(page_url, href) for href in parser.hrefs]
