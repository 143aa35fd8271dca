"""What a word a user typed means as a feed: a plain RSS/Atom URL, a Mastodon or a Bluesky
profile (pure functions, nothing is fetched)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

FEED_KIND = "feed"
MASTODON_KIND = "mastodon"
BLUESKY_KIND = "bluesky"
FEED_KINDS = frozenset({FEED_KIND, MASTODON_KIND, BLUESKY_KIND})

MAX_URL_LENGTH = 1000
DEFAULT_PORTS = {"http": 80, "https": 443}
# X profiles are followed through the X API, never as feeds.
X_HOSTS = frozenset(
    {"x.com", "www.x.com", "mobile.x.com", "twitter.com", "www.twitter.com", "mobile.twitter.com"}
)
BLUESKY_HOSTS = frozenset({"bsky.app", "www.bsky.app"})
BLUESKY_SUFFIX = ".bsky.social"
# Sites that also spell profiles `/@name` but are not Mastodon: they stay plain pages, whose
# feed link discovery can find (YouTube channels announce theirs).
NOT_MASTODON_HOSTS = frozenset(
    {"medium.com", "youtube.com", "www.youtube.com", "m.youtube.com", "tiktok.com"}
    | {"www.tiktok.com", "threads.net", "www.threads.net"}
)

SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Schemes written without `//` that are never feeds but are clearly meant as addresses.
BARE_SCHEMES = ("javascript:", "data:", "file:", "vbscript:", "mailto:")
MASTODON_USER_RE = re.compile(r"^[A-Za-z0-9_]{1,30}$")
MASTODON_PATH_RE = re.compile(r"^/@([A-Za-z0-9_]{1,30})(?:\.rss)?/?$")
BLUESKY_PATH_RE = re.compile(r"^/profile/([^/]+)(?:/rss)?/?$")
DNS_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Host names in URLs are looser: underscores exist in the wild, and a trailing dot is allowed.
URL_LABEL_RE = re.compile(r"^[a-z0-9_-]{1,63}$")
DID_RE = re.compile(r"^did:(?:plc:[a-z2-7]{24}|web:[a-z0-9.-]{1,253})$")


class FeedAddressError(ValueError):
    """A word meant as a feed address that is malformed; `code` names what is wrong:
    "scheme", "url", "mastodon" or "bluesky"."""

    def __init__(self, code: str) -> None:
        super().__init__(f"bad feed address: {code}")
        self.code = code


@dataclass(frozen=True, slots=True)
class FeedAddress:
    """A feed to follow: `key` is its canonical spelling (the source's unique key), `url`
    what is fetched."""

    kind: str
    key: str
    url: str


def mastodon_url(user: str, host: str) -> str:
    """The RSS feed of a Mastodon profile (the author's own posts, no replies nor boosts)."""
    return f"https://{host}/@{user}.rss"


def bluesky_handle_url(handle: str) -> str:
    """The RSS feed of a Bluesky profile (its 30 latest posts)."""
    return f"https://bsky.app/profile/{handle}/rss"


def is_dns_name(name: str) -> bool:
    """Whether `name` (lower-case ASCII) is a host name with at least one dot."""
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(DNS_LABEL_RE.match(one) for one in labels)


def _idna(host: str) -> str:
    """The ASCII spelling of a host name; raises UnicodeError when it has none."""
    return host.encode("idna").decode("ascii").lower()


def _split_host_port(text: str) -> tuple[str, int | None]:
    host, _, port_text = text.partition(":")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(port_text)
    return host, int(port_text)


def _bluesky_handle(handle: str) -> str:
    handle = handle.lower()
    if DID_RE.match(handle) or is_dns_name(handle):
        return handle
    raise FeedAddressError("bluesky")


def _from_url(word: str) -> FeedAddress | None:
    if len(word) > MAX_URL_LENGTH or any(char.isspace() for char in word):
        raise FeedAddressError("url")
    try:
        parts = urlsplit(word)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise FeedAddressError("url") from None
    if not host or parts.username is not None or parts.password is not None:
        raise FeedAddressError("url")
    scheme = parts.scheme.lower()
    if ":" in host:
        try:
            host = ipaddress.IPv6Address(host).compressed
        except ValueError:
            raise FeedAddressError("url") from None
        netloc_host = f"[{host}]"
    else:
        try:
            host = _idna(host)
        except UnicodeError:
            raise FeedAddressError("url") from None
        labels = host.removesuffix(".").split(".")
        if not all(URL_LABEL_RE.match(one) for one in labels):
            raise FeedAddressError("url")
        netloc_host = host
    if host in X_HOSTS:
        return None
    netloc = netloc_host if port in (None, DEFAULT_PORTS[scheme]) else f"{netloc_host}:{port}"
    path = parts.path or "/"
    mastodon = MASTODON_PATH_RE.match(path)
    if mastodon and host not in NOT_MASTODON_HOSTS:
        user = mastodon.group(1).lower()
        return FeedAddress(MASTODON_KIND, f"@{user}@{netloc}", mastodon_url(user, netloc))
    if host in BLUESKY_HOSTS and (bluesky := BLUESKY_PATH_RE.match(path)):
        handle = _bluesky_handle(bluesky.group(1))
        return FeedAddress(BLUESKY_KIND, handle, bluesky_handle_url(handle))
    url = urlunsplit((scheme, netloc, path, parts.query, ""))
    return FeedAddress(FEED_KIND, url, url)


def _from_mastodon_handle(word: str) -> FeedAddress:
    user, _, instance = word[1:].partition("@")
    if not MASTODON_USER_RE.match(user):
        raise FeedAddressError("mastodon")
    try:
        host, port = _split_host_port(instance)
        host = _idna(host)
    except (ValueError, UnicodeError):
        raise FeedAddressError("mastodon") from None
    if not is_dns_name(host):
        raise FeedAddressError("mastodon")
    netloc = host if port in (None, 443) else f"{host}:{port}"
    user = user.lower()
    return FeedAddress(MASTODON_KIND, f"@{user}@{netloc}", mastodon_url(user, netloc))


def feed_address(word: str) -> FeedAddress | None:
    """The feed a word names, None when it is not meant as one (an X handle, a keyword, an X
    URL); raises FeedAddressError when it is meant as a feed but malformed."""
    word = word.strip()
    lowered = word.lower()
    if lowered.startswith(("http://", "https://")):
        return _from_url(word)
    if SCHEME_RE.match(word) or lowered.startswith(BARE_SCHEMES):
        raise FeedAddressError("scheme")
    if word.startswith("@") and word.count("@") == 2:
        return _from_mastodon_handle(word)
    handle = lowered.removeprefix("@")
    if handle.endswith(BLUESKY_SUFFIX) and len(handle) > len(BLUESKY_SUFFIX):
        handle = _bluesky_handle(handle)
        return FeedAddress(BLUESKY_KIND, handle, bluesky_handle_url(handle))
    return None
