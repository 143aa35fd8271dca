"""OPML 2.0 export and import of a user's follows: feeds, X accounts and categories (pure)."""

from __future__ import annotations

import re

# Building documents only: every parse goes through defusedxml.
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

FEED = "feed"
X = "x"
CATEGORY = "category"
CATEGORY_TYPE = "jobrelay-category"
X_HOSTS = frozenset(
    {"x.com", "www.x.com", "mobile.x.com", "twitter.com", "www.twitter.com", "mobile.twitter.com"}
)
X_HANDLE_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
# First path segments of x.com pages that are not profiles.
X_NOT_PROFILES = frozenset(
    {"home", "i", "intent", "search", "hashtag", "explore", "share", "settings", "messages"}
    | {"notifications", "login", "signup", "tos", "privacy", "compose"}
)
SKIPPED_TEXT_LENGTH = 80


class OpmlError(ValueError):
    """An OPML file that cannot be imported; `code`: "malformed" (not XML, not OPML, no body),
    "too_many" or "empty"."""

    def __init__(self, code: str) -> None:
        super().__init__(f"OPML: {code}")
        self.code = code


@dataclass(frozen=True, slots=True)
class Outline:
    """One follow: a feed (`value` its URL), an X account (its handle without @) or a
    category (its slug)."""

    kind: str
    value: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class OpmlRead:
    """What an OPML file holds that can be followed, and the texts of the entries that looked
    like subscriptions but could not be used."""

    outlines: list[Outline]
    skipped: list[str]


def x_profile_url(handle: str) -> str:
    """The public address of an X profile."""
    return f"https://x.com/{handle}"


def write_opml(title: str, outlines: list[Outline], *, created: datetime) -> bytes:
    """An OPML 2.0 document (UTF-8) other feed readers can import: feeds as rss outlines."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(created)
    body = ET.SubElement(root, "body")
    for outline in outlines:
        if outline.kind == FEED:
            attributes = {"type": "rss", "text": outline.title or outline.value}
            if outline.title:
                attributes["title"] = outline.title
            attributes["xmlUrl"] = outline.value
        elif outline.kind == X:
            url = x_profile_url(outline.value)
            attributes = {
                "type": "link",
                "text": f"@{outline.value}",
                "title": outline.title or f"@{outline.value}",
                "url": url,
                "htmlUrl": url,
            }
        elif outline.kind == CATEGORY:
            attributes = {"type": CATEGORY_TYPE, "text": outline.value, "category": outline.value}
            if outline.title:
                attributes["title"] = outline.title
        else:
            raise ValueError(f"unknown outline kind {outline.kind!r}")
        ET.SubElement(body, "outline", attributes)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _x_handle(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    segments = [one for one in parts.path.split("/") if one]
    if parts.scheme.lower() not in ("http", "https") or host not in X_HOSTS or not segments:
        return None
    handle = segments[0].removeprefix("@")
    if handle.lower() in X_NOT_PROFILES or not X_HANDLE_RE.match(handle):
        return None
    return handle


def _outline(element: ET.Element) -> Outline | None:
    attributes = {name.lower(): value.strip() for name, value in element.attrib.items()}
    text, title = attributes.get("text", ""), attributes.get("title", "")
    if xml_url := attributes.get("xmlurl"):
        label = title or (text if text != xml_url else "")
        return Outline(FEED, xml_url, label)
    if attributes.get("type", "").lower() == CATEGORY_TYPE:
        slug = attributes.get("category") or text
        return Outline(CATEGORY, slug, title) if slug else None
    for key in ("url", "htmlurl"):
        if (handle := _x_handle(attributes.get(key, ""))) is not None:
            label = title or text
            return Outline(X, handle, "" if label in ("", f"@{handle}") else label)
    return None


def read_opml(data: bytes, *, max_outlines: int = 500) -> OpmlRead:
    """The follows of an OPML file, folders flattened, duplicates dropped; entities and
    DTDs are refused (no billion laughs, no external files)."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError):
        raise OpmlError("malformed") from None
    body = root.find("body") if root.tag == "opml" else None
    if body is None:
        raise OpmlError("malformed")
    elements = list(body.iter("outline"))
    if len(elements) > max_outlines:
        raise OpmlError("too_many")
    outlines: list[Outline] = []
    skipped: list[str] = []
    seen: set[tuple[str, str]] = set()
    for element in elements:
        outline = _outline(element)
        if outline is None:
            # A folder (or an empty one) is not a subscription; any other leaf is reported.
            is_folder = len(element) > 0 or set(element.attrib) <= {"text", "title"}
            if not is_folder:
                label = element.get("title") or element.get("text") or element.get("url") or ""
                skipped.append(label.strip()[:SKIPPED_TEXT_LENGTH])
            continue
        if (outline.kind, outline.value) not in seen:
            seen.add((outline.kind, outline.value))
            outlines.append(outline)
    if not outlines and not skipped:
        raise OpmlError("empty")
    return OpmlRead(outlines, skipped)
