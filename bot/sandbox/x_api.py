"""A local stand-in of the X (Twitter) API v2 endpoints that jobrelay uses.

It is an ``aiohttp.web`` server bound to 127.0.0.1 that serves

* ``GET /2/users`` (``ids``: up to 100 accounts by id)
* ``GET /2/users/by/username/:username``
* ``GET /2/users/:id/tweets``
* ``GET /2/tweets/search/recent``

with the JSON shapes, validation errors, rate-limit headers and error bodies documented
for X API v2, from an in-memory store of users and posts. Tests, the interactive sandbox
and benchmarks add users and posts with :meth:`XStandIn.add_user` and
:meth:`XStandIn.add_post`, inject failures with :meth:`XStandIn.fail_next` and read what
the client did from :attr:`XStandIn.requests` and :attr:`XStandIn.posts_returned`.

Posts are indexed by author (a list of ids sorted ascending, since ids only grow) and
globally, so timeline and search requests cost a binary search plus the page they return
(plus the posts their filters skip), even with hundreds of thousands of posts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import hashlib
import heapq
import json
import logging
import math
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import web

__all__ = [
    "DEFAULT_LIMITS",
    "ROUTE_SEARCH_RECENT",
    "ROUTE_USERS",
    "ROUTE_USERS_TWEETS",
    "ROUTE_USER_BY_USERNAME",
    "XRequest",
    "XStandIn",
]

log = logging.getLogger(__name__)

JSON = dict[str, Any]

ROUTE_USERS: Final = "/2/users"
ROUTE_USER_BY_USERNAME: Final = "/2/users/by/username/:username"
ROUTE_USERS_TWEETS: Final = "/2/users/:id/tweets"
ROUTE_SEARCH_RECENT: Final = "/2/tweets/search/recent"

#: Requests allowed per endpoint per 15-minute window (app-only bearer token).
DEFAULT_LIMITS: Final[Mapping[str, int]] = {
    ROUTE_USERS_TWEETS: 10_000,
    ROUTE_SEARCH_RECENT: 450,
    ROUTE_USER_BY_USERNAME: 300,
    ROUTE_USERS: 300,
}

_ROUTES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (ROUTE_SEARCH_RECENT, re.compile(r"^/2/tweets/search/recent$")),
    (ROUTE_USERS, re.compile(r"^/2/users$")),
    (ROUTE_USER_BY_USERNAME, re.compile(r"^/2/users/by/username/([^/]*)$")),
    (ROUTE_USERS_TWEETS, re.compile(r"^/2/users/([^/]+)/tweets$")),
)

_TWITTER_EPOCH_MS: Final = 1_288_834_974_657
_MIN_POST_ID: Final = 10**18  # smallest 19-digit id
_MAX_POST_ID: Final = 10**19 - 1
_FIRST_USER_ID: Final = 2_000_000_001
_TIMELINE_CAP: Final = 3200
_SEARCH_WINDOW: Final = timedelta(days=7)
_USERNAME_RE: Final = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_ID_RE: Final = re.compile(r"^[0-9]{1,19}$")
_WORD_RE: Final = re.compile(r"\w+")
_OPERATOR_RE: Final = re.compile(r"^[A-Za-z_]+$")
_HASHTAG_RE: Final = re.compile(r"(?<![\w#])#(\w+)")
_MENTION_RE: Final = re.compile(r"(?<![\w@])@(\w{1,15})")
_URL_RE: Final = re.compile(r"https?://[^\s]+")


def _wrap_links(post: _Post) -> tuple[str, list[JSON]]:
    """The post text as X serves it, every link replaced by a t.co link, and the `entities.urls`
    that give each original back (positions are in the served text, in code points)."""
    parts: list[str] = []
    urls: list[JSON] = []
    position = 0
    length = 0
    for match in _URL_RE.finditer(post.text):
        before = post.text[position : match.start()]
        parts.append(before)
        length += len(before)
        digest = hashlib.sha256(f"{post.sid} {match.group(0)}".encode()).hexdigest()[:10]
        short = f"https://t.co/{digest}"
        urls.append(
            {
                "start": length,
                "end": length + len(short),
                "url": short,
                "expanded_url": match.group(0),
                "display_url": match.group(0).split("://", 1)[1][:30],
            }
        )
        parts.append(short)
        length += len(short)
        position = match.end()
    parts.append(post.text[position:])
    return "".join(parts), urls


def _inside(position: int, urls: list[JSON]) -> bool:
    return any(url["start"] <= position < url["end"] for url in urls)


_DEFAULT_AVATAR: Final = (
    "https://abs.twimg.com/sticky/default_profile_images/default_profile_normal.png"
)

_PROBLEM_NOT_FOUND: Final = "https://api.twitter.com/2/problems/resource-not-found"
_PROBLEM_NOT_AUTHORIZED: Final = "https://api.twitter.com/2/problems/not-authorized-for-resource"
_PROBLEM_INVALID: Final = "https://api.twitter.com/2/problems/invalid-request"
_PROBLEM_USAGE_CAPPED: Final = "https://api.twitter.com/2/problems/usage-capped"

_TWEET_FIELDS: Final = frozenset(
    {
        "article",
        "attachments",
        "author_id",
        "card_uri",
        "community_id",
        "context_annotations",
        "conversation_id",
        "created_at",
        "display_text_range",
        "edit_controls",
        "edit_history_tweet_ids",
        "entities",
        "geo",
        "id",
        "in_reply_to_user_id",
        "lang",
        "media_metadata",
        "non_public_metrics",
        "note_tweet",
        "organic_metrics",
        "possibly_sensitive",
        "promoted_metrics",
        "public_metrics",
        "referenced_tweets",
        "reply_settings",
        "scopes",
        "source",
        "text",
        "withheld",
    }
)
_USER_FIELDS: Final = frozenset(
    {
        "affiliation",
        "connection_status",
        "created_at",
        "description",
        "entities",
        "id",
        "is_identity_verified",
        "location",
        "most_recent_tweet_id",
        "name",
        "parody",
        "pinned_tweet_id",
        "profile_banner_url",
        "profile_image_url",
        "protected",
        "public_metrics",
        "receives_your_dm",
        "subscription",
        "subscription_type",
        "url",
        "username",
        "verified",
        "verified_followers_count",
        "verified_type",
        "withheld",
    }
)
_TWEET_EXPANSIONS: Final = frozenset(
    {
        "article.cover_media",
        "article.media_entities",
        "attachments.media_keys",
        "attachments.media_source_tweet",
        "attachments.poll_ids",
        "author_id",
        "edit_history_tweet_ids",
        "entities.mentions.username",
        "entities.note.mentions.username",
        "geo.place_id",
        "in_reply_to_user_id",
        "referenced_tweets.id",
        "referenced_tweets.id.attachments.media_keys",
        "referenced_tweets.id.author_id",
    }
)
_USER_EXPANSIONS: Final = frozenset(
    {"affiliation.user_id", "most_recent_tweet_id", "pinned_tweet_id"}
)
_EXCLUDE_VALUES: Final = frozenset({"replies", "retweets"})
_SORT_ORDERS: Final = frozenset({"recency", "relevancy"})

_USER_PARAMS: Final = ("expansions", "tweet.fields", "user.fields")
_USERS_PARAMS: Final = ("expansions", "ids", "tweet.fields", "user.fields")
_MAX_USER_IDS: Final = 100
_TIMELINE_PARAMS: Final = (
    "end_time",
    "exclude",
    "expansions",
    "max_results",
    "media.fields",
    "pagination_token",
    "place.fields",
    "poll.fields",
    "since_id",
    "start_time",
    "tweet.fields",
    "until_id",
    "user.fields",
)
_SEARCH_PARAMS: Final = (
    "end_time",
    "expansions",
    "max_results",
    "media.fields",
    "next_token",
    "place.fields",
    "poll.fields",
    "query",
    "since_id",
    "sort_order",
    "start_time",
    "tweet.fields",
    "until_id",
    "user.fields",
)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class XRequest:
    """One request the stand-in received, with the status it answered."""

    method: str
    path: str
    params: dict[str, str]
    status: int
    at: float


@dataclass(slots=True)
class _User:
    id: str
    username: str
    name: str
    protected: bool
    created_at: datetime
    description: str = ""
    suspended: bool = False
    deleted: bool = False
    post_ids: list[int] = field(default_factory=list)

    @property
    def visible(self) -> bool:
        return not (self.suspended or self.deleted or self.protected)


@dataclass(slots=True)
class _Post:
    id: int
    sid: str
    author: _User
    text: str
    created_at: datetime
    created_ts: float
    lang: str
    conversation_id: str
    references: tuple[tuple[str, str], ...] = ()
    reply_to_user: _User | None = None
    _words: tuple[str, ...] | None = None
    _word_set: frozenset[str] | None = None
    _hashtags: frozenset[str] | None = None
    _mentions: frozenset[str] | None = None

    @property
    def is_reply(self) -> bool:
        return any(kind == "replied_to" for kind, _ in self.references)

    @property
    def is_retweet(self) -> bool:
        return any(kind == "retweeted" for kind, _ in self.references)

    @property
    def is_quote(self) -> bool:
        return any(kind == "quoted" for kind, _ in self.references)

    def words(self) -> tuple[str, ...]:
        if self._words is None:
            self._words = tuple(_WORD_RE.findall(self.text.lower()))
        return self._words

    def word_set(self) -> frozenset[str]:
        if self._word_set is None:
            self._word_set = frozenset(self.words())
        return self._word_set

    def hashtags(self) -> frozenset[str]:
        if self._hashtags is None:
            self._hashtags = frozenset(m.lower() for m in _HASHTAG_RE.findall(self.text))
        return self._hashtags

    def mentions(self) -> frozenset[str]:
        if self._mentions is None:
            self._mentions = frozenset(m.lower() for m in _MENTION_RE.findall(self.text))
        return self._mentions

    def has_phrase(self, words: tuple[str, ...]) -> bool:
        if not words:
            return True
        first = words[0]
        if first not in self.word_set():
            return False
        if len(words) == 1:
            return True
        mine = self.words()
        n = len(words)
        return any(mine[i] == first and mine[i : i + n] == words for i in range(len(mine) - n + 1))


@dataclass(slots=True)
class _Failure:
    status: int
    remaining: int
    reset_in: float | None
    usage_capped: bool
    content_type: str
    path_prefix: str
    param: str | None = None


@dataclass(slots=True)
class _Window:
    reset_at: float
    used: int = 0


# --------------------------------------------------------------------------- query language


class _QueryError(Exception):
    """A search query X would reject."""


@dataclass(frozen=True, slots=True)
class _Term:
    op: str  # word, phrase, hashtag, mention, cashtag, from, to, is, has, lang
    value: str
    words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Not:
    child: _Node


@dataclass(frozen=True, slots=True)
class _And:
    children: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Or:
    children: tuple[_Node, ...]


_Node = _Term | _Not | _And | _Or

_STANDALONE_OPS: Final = frozenset(
    {"word", "phrase", "hashtag", "mention", "cashtag", "from", "to"}
)
_IS_VALUES: Final = frozenset({"retweet", "reply", "quote"})
_HAS_VALUES: Final = frozenset(
    {"links", "hashtags", "mentions", "media", "images", "videos", "cashtags", "geo"}
)


def _tokenize(query: str) -> list[tuple[str, str, int]]:
    """Split a search query into (kind, text, position) tokens."""
    tokens: list[tuple[str, str, int]] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
            continue
        if c == "-" and i + 1 < n and not query[i + 1].isspace():
            tokens.append(("-", "-", i + 1))
            i += 1
            continue
        if c in "()":
            tokens.append((c, c, i + 1))
            i += 1
            continue
        if c == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise _QueryError(f"Unterminated quoted phrase (at position {i + 1})")
            tokens.append(("phrase", query[i + 1 : end], i + 1))
            i = end + 1
            continue
        start = i
        while i < n and not query[i].isspace() and query[i] not in '()"':
            i += 1
        text = query[start:i]
        tokens.append(("OR" if text == "OR" else "term", text, start + 1))
    return tokens


def _make_term(text: str, position: int) -> _Term:
    """Turn one bare query token into a term."""
    op, sep, value = text.partition(":")
    if sep and _OPERATOR_RE.match(op) and value and not value.startswith("//"):
        op = op.lower()
        if op in ("from", "to"):
            name = value.removeprefix("@").lower()
            if not (_USERNAME_RE.match(name) or _ID_RE.match(name)):
                raise _QueryError(
                    f"Invalid value '{value}' for operator '{op}' (at position {position})"
                )
            return _Term(op, name)
        if op == "is":
            if value.lower() not in _IS_VALUES:
                raise _QueryError(
                    f"Reference to invalid field '{value}' for operator 'is' "
                    f"(at position {position})"
                )
            return _Term("is", value.lower())
        if op == "has":
            if value.lower() not in _HAS_VALUES:
                raise _QueryError(
                    f"Reference to invalid field '{value}' for operator 'has' "
                    f"(at position {position})"
                )
            return _Term("has", value.lower())
        if op == "lang":
            return _Term("lang", value.lower())
        raise _QueryError(
            f"Reference to invalid operator '{op}'. Operator is not available in current "
            f"product or product packaging. Please refer to complete available operator list "
            f"at https://developer.twitter.com/en/docs/twitter-api/tweets/search/integrate/"
            f"build-a-query#list. (at position {position})"
        )
    if text.startswith("#") and len(text) > 1:
        return _Term("hashtag", text[1:].lower())
    if text.startswith("@") and len(text) > 1:
        return _Term("mention", text[1:].lower())
    if text.startswith("$") and len(text) > 1:
        return _Term("cashtag", text.lower())
    return _Term("word", text.lower(), tuple(_WORD_RE.findall(text.lower())))


class _Parser:
    """Recursive-descent parser: AND (juxtaposition) binds tighter than OR, as on X."""

    def __init__(self, query: str) -> None:
        self.tokens = _tokenize(query)
        self.pos = 0

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> _Node:
        if not self.tokens:
            raise _QueryError("The query is empty")
        node = self._expr()
        tok = self._peek()
        if tok is not None:
            raise _QueryError(f"Unexpected '{tok[1]}' (at position {tok[2]})")
        return node

    def _expr(self) -> _Node:
        branches = [self._and()]
        while (tok := self._peek()) is not None and tok[0] == "OR":
            self.pos += 1
            branches.append(self._and())
        return branches[0] if len(branches) == 1 else _Or(tuple(branches))

    def _and(self) -> _Node:
        parts: list[_Node] = []
        while (tok := self._peek()) is not None and tok[0] not in ("OR", ")"):
            parts.append(self._unary())
        if not parts:
            tok = self._peek()
            where = f"'{tok[1]}' (at position {tok[2]})" if tok else "end of query"
            raise _QueryError(f"Expected a term before {where}")
        return parts[0] if len(parts) == 1 else _And(tuple(parts))

    def _unary(self) -> _Node:
        tok = self.tokens[self.pos]
        if tok[0] == "-":
            self.pos += 1
            if self._peek() is None or self.tokens[self.pos][0] in ("OR", ")", "-"):
                raise _QueryError(f"Dangling negation (at position {tok[2]})")
            return _Not(self._atom())
        return self._atom()

    def _atom(self) -> _Node:
        kind, text, position = self.tokens[self.pos]
        self.pos += 1
        if kind == "(":
            node = self._expr()
            closing = self._peek()
            if closing is None or closing[0] != ")":
                raise _QueryError(f"Unbalanced parenthesis (at position {position})")
            self.pos += 1
            return node
        if kind == "phrase":
            return _Term("phrase", text.lower(), tuple(_WORD_RE.findall(text.lower())))
        if kind == "term":
            return _make_term(text, position)
        raise _QueryError(f"Unexpected '{text}' (at position {position})")


def _parse_query(query: str) -> _Node:
    """Parse a search query, rejecting one without a positive stand-alone clause."""
    node = _Parser(query).parse()
    if not _has_standalone(node):
        raise _QueryError(
            "Rules must contain a non-negation term and at least one stand-alone operator "
            "(a keyword, phrase, hashtag, mention, from: or to:) (at position 1)"
        )
    return node


def _has_standalone(node: _Node) -> bool:
    if isinstance(node, _Term):
        return node.op in _STANDALONE_OPS
    if isinstance(node, _Not):
        return False
    return any(_has_standalone(child) for child in node.children)


def _term_matches(term: _Term, post: _Post) -> bool:
    op = term.op
    if op in ("word", "phrase"):
        if term.words:
            return post.has_phrase(term.words)
        return term.value in post.text.lower()
    if op == "from":
        return term.value in (post.author.username.lower(), post.author.id)
    if op == "to":
        other = post.reply_to_user
        return other is not None and term.value in (other.username.lower(), other.id)
    if op == "is":
        if term.value == "retweet":
            return post.is_retweet
        if term.value == "reply":
            return post.is_reply
        return post.is_quote
    if op == "hashtag":
        return term.value in post.hashtags()
    if op == "mention":
        return term.value in post.mentions()
    if op == "cashtag":
        return term.value in post.text.lower()
    if op == "lang":
        return post.lang.lower() == term.value
    # op == "has"
    if term.value == "links":
        return _URL_RE.search(post.text) is not None
    if term.value == "hashtags":
        return bool(post.hashtags())
    if term.value == "mentions":
        return bool(post.mentions())
    if term.value == "cashtags":
        return re.search(r"\$[A-Za-z]", post.text) is not None
    return False  # media, images, videos, geo: the stand-in has none


def _matches(node: _Node, post: _Post) -> bool:
    if isinstance(node, _Term):
        return _term_matches(node, post)
    if isinstance(node, _Not):
        return not _matches(node.child, post)
    if isinstance(node, _And):
        return all(_matches(child, post) for child in node.children)
    return any(_matches(child, post) for child in node.children)


# --------------------------------------------------------------------------- helpers


def _iso(moment: datetime) -> str:
    """Format like X: 2024-05-01T12:00:00.000Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _token_check(kind: str, context: str) -> str:
    checksum = zlib.crc32(kind.encode() + b"\0" + context.encode())
    return f"{checksum:08x}"


def _encode_token(kind: str, context: str, bound: int) -> str:
    """An opaque pagination token: page strictly below `bound` for this request context."""
    raw = f"{kind}:{bound}:{_token_check(kind, context)}".encode()
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _decode_token(token: str, kind: str, context: str) -> int | None:
    """The bound a token encodes, or None if it was not issued for this request context."""
    padded = token.upper() + "=" * (-len(token) % 8)
    try:
        raw = base64.b32decode(padded).decode()
    except (binascii.Error, ValueError):
        return None
    parts = raw.split(":")
    if len(parts) != 3 or parts[0] != kind or not parts[1].isdigit():
        return None
    if parts[2] != _token_check(kind, context):
        return None
    return int(parts[1])


class _Params:
    """Validates query parameters and accumulates X-style invalid-request errors."""

    def __init__(self, query: Mapping[str, str], allowed: Sequence[str]) -> None:
        self.query = query
        self.errors: list[JSON] = []
        allowed_list = ",".join(allowed)
        for name, value in query.items():
            if name not in allowed:
                self.error(
                    name, value, f"The query parameter [{name}] is not one of [{allowed_list}]"
                )

    def error(self, name: str, value: str | None, message: str) -> None:
        self.errors.append(
            {"parameters": {name: [] if value is None else [value]}, "message": message}
        )

    def get(self, name: str) -> str | None:
        return self.query.get(name)

    def integer(self, name: str, low: int, high: int, default: int) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        value = int(raw) if raw.strip().isdigit() else None
        if value is None or not low <= value <= high:
            self.error(
                name,
                raw,
                f"The `{name}` query parameter value [{raw}] is not between {low} and {high}",
            )
            return default
        return value

    def snowflake(self, name: str) -> int | None:
        raw = self.query.get(name)
        if raw is None:
            return None
        if not _ID_RE.match(raw):
            self.error(
                name,
                raw,
                f"The `{name}` query parameter value [{raw}] does not match ^[0-9]{{1,19}}$",
            )
            return None
        return int(raw)

    def timestamp(self, name: str) -> datetime | None:
        raw = self.query.get(name)
        if raw is None:
            return None
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            moment = None
        if moment is None or "T" not in raw:
            self.error(
                name,
                raw,
                f"Invalid '{name}':'{raw}'. '{name}' must be a valid RFC 3339 timestamp "
                f"(YYYY-MM-DDTHH:mm:ssZ)",
            )
            return None
        return _as_utc(moment)

    def choices(self, name: str, allowed: frozenset[str]) -> list[str]:
        raw = self.query.get(name)
        if raw is None:
            return []
        values = _split(raw)
        bad = [value for value in values if value not in allowed]
        if bad or not values:
            shown = ",".join(bad) if bad else raw
            self.error(
                name,
                raw,
                f"The `{name}` query parameter value [{shown}] is not one of "
                f"[{','.join(sorted(allowed))}]",
            )
            return [value for value in values if value in allowed]
        return values

    def time_range(self) -> tuple[datetime | None, datetime | None]:
        start, end = self.timestamp("start_time"), self.timestamp("end_time")
        if start is not None and end is not None and start >= end:
            self.error(
                "end_time",
                self.query.get("end_time"),
                f"Invalid 'end_time':'{self.query.get('end_time')}'. 'end_time' must be after "
                f"'start_time':'{self.query.get('start_time')}'",
            )
        return start, end


def _invalid_request(errors: list[JSON]) -> JSON:
    return {
        "errors": errors,
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": _PROBLEM_INVALID,
    }


def _problem(status: int) -> JSON:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"title": phrase, "detail": phrase, "type": "about:blank", "status": status}


def _user_error(
    user: str, parameter: str, title: str, detail: str, problem: str, *, section: bool = False
) -> JSON:
    error: JSON = {
        "value": user,
        "detail": detail,
        "title": title,
        "resource_type": "user",
        "parameter": parameter,
        "resource_id": user,
        "type": problem,
    }
    if section:
        error["section"] = "data"
    return error


@dataclass(slots=True)
class _Reply:
    """What a handler answers: status, JSON body and the number of posts it returns."""

    status: int
    body: JSON
    posts: int = 0


# --------------------------------------------------------------------------- the server


class XStandIn:
    """An in-memory X API v2 server (users, timelines, recent search) for tests and sandboxes.

    Its methods are not thread-safe: call them from the event loop that runs the server
    (or before :meth:`start`). Injected failures (:meth:`fail_next`) are answered before
    authentication; every other request is authenticated, then rate-limited, then served.
    """

    def __init__(
        self,
        bearer_token: str = "test-bearer",  # noqa: S107 - a stand-in's well-known default
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limits: bool = True,
    ) -> None:
        """Configure the stand-in; nothing listens until :meth:`start`."""
        self.bearer_token = bearer_token
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.rate_limits = rate_limits
        #: Requests per window, keyed by route template (ROUTE_* constants); adjustable.
        self.limits: dict[str, int] = dict(DEFAULT_LIMITS)
        #: Length of a rate-limit window in seconds.
        self.rate_window: float = 15 * 60.0
        #: Longest accepted search query (512 on X's Basic tier).
        self.max_query_length: int = 512
        self.requests: list[XRequest] = []
        self.posts_returned: int = 0
        #: Requests received and not answered yet (held by `set_delay`, say).
        self.in_flight: int = 0

        self._users: dict[str, _User] = {}  # by id, deleted ones included
        self._by_name: dict[str, _User] = {}  # by lower-cased username, live ones only
        self._posts: dict[int, _Post] = {}
        self._all_ids: list[int] = []  # every post id, ascending
        self._last_post_id = _MIN_POST_ID - 1
        self._next_user_id = _FIRST_USER_ID
        self._last_created_ts = -math.inf
        self._times_monotonic = True  # created_at never decreased as ids grew
        self._windows: dict[str, _Window] = {}
        self._failures: list[_Failure] = []
        self._delay = 0.0
        self._runner: web.AppRunner | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start listening; sets :attr:`port` and :attr:`url`."""
        if self._runner is not None:
            raise RuntimeError("XStandIn is already started")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        self.url = f"http://{self.host}:{self.port}"
        log.info("X API stand-in listening on %s", self.url)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.info("X API stand-in on %s stopped", self.url)

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

    # ----------------------------------------------------------------- data

    def add_user(
        self,
        username: str,
        *,
        name: str | None = None,
        user_id: str | None = None,
        protected: bool = False,
    ) -> str:
        """Create an account and return its id."""
        if not _USERNAME_RE.match(username):
            raise ValueError(f"invalid X username: {username!r}")
        if username.lower() in self._by_name:
            raise ValueError(f"username already taken: {username!r}")
        if user_id is None:
            while str(self._next_user_id) in self._users:
                self._next_user_id += 1
            user_id = str(self._next_user_id)
            self._next_user_id += 1
        elif not _ID_RE.match(user_id):
            raise ValueError(f"invalid user id: {user_id!r}")
        elif user_id in self._users:
            raise ValueError(f"user id already taken: {user_id!r}")
        user = _User(
            id=user_id,
            username=username,
            name=username if name is None else name,
            protected=protected,
            created_at=datetime.now(UTC).replace(microsecond=0),
        )
        self._users[user_id] = user
        self._by_name[username.lower()] = user
        return user_id

    def suspend_user(self, username: str) -> None:
        """Suspend an account: lookups and timelines answer errors, search hides its posts."""
        self._live_user(username).suspended = True

    def unsuspend_user(self, username: str) -> None:
        """Lift a suspension."""
        self._live_user(username).suspended = False

    def rename_user(self, username: str, new_username: str) -> None:
        """Change an account's handle (its id and posts stay)."""
        user = self._live_user(username)
        if new_username.lower() in self._by_name:
            raise ValueError(f"@{new_username} is taken")
        del self._by_name[username.lower()]
        user.username = new_username
        self._by_name[new_username.lower()] = user

    def delete_user(self, username: str) -> None:
        """Delete an account: it is no longer found, by name or id, and its posts are hidden."""
        user = self._live_user(username)
        user.deleted = True
        del self._by_name[username.lower()]

    def add_post(
        self,
        username: str,
        text: str,
        *,
        created_at: datetime | None = None,
        reply_to: str | None = None,
        retweet_of: str | None = None,
        quote_of: str | None = None,
        lang: str = "en",
    ) -> str:
        """Publish a post (optionally a reply, repost or quote) and return its id."""
        if sum(ref is not None for ref in (reply_to, retweet_of, quote_of)) > 1:
            raise ValueError("a post is at most one of reply, repost or quote")
        author = self._live_user(username)
        moment = datetime.now(UTC) if created_at is None else _as_utc(created_at)
        references: tuple[tuple[str, str], ...] = ()
        reply_to_user: _User | None = None
        conversation_id: str | None = None
        if reply_to is not None:
            parent = self._post(reply_to)
            references = (("replied_to", parent.sid),)
            reply_to_user = parent.author
            conversation_id = parent.conversation_id
        elif retweet_of is not None:
            original = self._post(retweet_of)
            references = (("retweeted", original.sid),)
            if not text.startswith("RT @"):
                text = f"RT @{original.author.username}: {text or original.text}"
        elif quote_of is not None:
            references = (("quoted", self._post(quote_of).sid),)

        post_id = self._new_post_id(moment)
        sid = str(post_id)
        created_ts = moment.timestamp()
        post = _Post(
            id=post_id,
            sid=sid,
            author=author,
            text=text,
            created_at=moment,
            created_ts=created_ts,
            lang=lang,
            conversation_id=conversation_id or sid,
            references=references,
            reply_to_user=reply_to_user,
        )
        self._posts[post_id] = post
        self._all_ids.append(post_id)
        author.post_ids.append(post_id)
        if created_ts < self._last_created_ts:
            self._times_monotonic = False
        self._last_created_ts = max(self._last_created_ts, created_ts)
        return sid

    def _new_post_id(self, moment: datetime) -> int:
        snowflake = (int(moment.timestamp() * 1000) - _TWITTER_EPOCH_MS) << 22
        if snowflake > _MAX_POST_ID:
            snowflake = 0
        post_id = max(self._last_post_id + 1, snowflake)
        if post_id > _MAX_POST_ID:
            raise OverflowError("post ids exhausted")
        self._last_post_id = post_id
        return post_id

    def user_id(self, username: str) -> str | None:
        """The id of the live account with this username (any case), if there is one."""
        user = self._by_name.get(username.lower().lstrip("@"))
        return user.id if user is not None else None

    def _live_user(self, username: str) -> _User:
        try:
            return self._by_name[username.lower()]
        except KeyError:
            raise KeyError(f"no such user: {username!r}") from None

    def _post(self, post_id: str) -> _Post:
        post = self._posts.get(int(post_id)) if post_id.isdigit() else None
        if post is None:
            raise KeyError(f"no such post: {post_id!r}")
        return post

    # ----------------------------------------------------------------- observability and faults

    def request_count(self, path_prefix: str = "/2/") -> int:
        """Number of recorded requests whose path starts with `path_prefix`."""
        return sum(1 for request in self.requests if request.path.startswith(path_prefix))

    def clear_requests(self) -> None:
        """Forget recorded requests and reset :attr:`posts_returned`."""
        self.requests.clear()
        self.posts_returned = 0

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        reset_in: float | None = None,
        usage_capped: bool = False,
        content_type: str = "application/json",
        path_prefix: str = "/2/",
        param: str | None = None,
    ) -> None:
        """Answer the next `count` requests under `path_prefix` with HTTP `status`; with
        `param`, only requests carrying that query parameter (``param="pagination_token"``:
        a later page of a timeline or search)."""
        if not 100 <= status <= 599:
            raise ValueError(f"invalid HTTP status: {status}")
        if count < 1:
            raise ValueError("count must be at least 1")
        self._failures.append(
            _Failure(status, count, reset_in, usage_capped, content_type, path_prefix, param)
        )

    def set_delay(self, seconds: float) -> None:
        """Delay every later response by `seconds` (0 to stop)."""
        if seconds < 0:
            raise ValueError("delay must not be negative")
        self._delay = seconds

    def reset_rate_limits(self) -> None:
        """Start a fresh rate-limit window for every endpoint."""
        self._windows.clear()

    # ----------------------------------------------------------------- request pipeline

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        at = time.time()
        params = dict(request.query)
        self.in_flight += 1
        try:
            response = await self._respond(request, params)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("X stand-in failed on %s %s", request.method, request.path_qs)
            response = self._json(500, _problem(500))
        finally:
            self.in_flight -= 1
        self.requests.append(XRequest(request.method, request.path, params, response.status, at))
        log.debug(
            "%s %s %s -> %d (%.1f ms)",
            request.method,
            request.path,
            params,
            response.status,
            (time.time() - at) * 1000,
        )
        return response

    async def _respond(self, request: web.Request, params: dict[str, str]) -> web.Response:
        if self._delay > 0:
            await asyncio.sleep(self._delay)
        path = request.path
        route, arg = self._route(request.method, path)

        failure = self._take_failure(path, params)
        if failure is not None:
            return self._failure_response(failure, route)

        if request.headers.get("Authorization") != f"Bearer {self.bearer_token}":
            return self._json(401, _problem(401), self._peek_headers(route))

        if route is None:
            body = {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}
            return self._json(404, body)

        allowed, headers = self._consume_rate(route)
        if not allowed:
            return self._json(429, _problem(429), headers)

        if route == ROUTE_USER_BY_USERNAME:
            reply = self._user_by_username(arg, params)
        elif route == ROUTE_USERS:
            reply = self._users_by_ids(params)
        elif route == ROUTE_USERS_TWEETS:
            reply = self._users_tweets(arg, params)
        else:
            reply = self._search_recent(params)
        if 200 <= reply.status < 300:
            self.posts_returned += reply.posts
        return self._json(reply.status, reply.body, headers)

    @staticmethod
    def _route(method: str, path: str) -> tuple[str | None, str]:
        if method != "GET":
            return None, ""
        for route, pattern in _ROUTES:
            match = pattern.match(path)
            if match is not None:
                return route, match.group(1) if pattern.groups else ""
        return None, ""

    def _take_failure(self, path: str, params: Mapping[str, str]) -> _Failure | None:
        for index, failure in enumerate(self._failures):
            if path.startswith(failure.path_prefix) and (
                failure.param is None or failure.param in params
            ):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del self._failures[index]
                return failure
        return None

    def _failure_response(self, failure: _Failure, route: str | None) -> web.Response:
        status = failure.status
        headers = self._peek_headers(route)
        if status == 429:
            now = time.time()
            limit = self.limits.get(route, 0) if route is not None else 0
            if failure.reset_in is not None:
                reset = math.ceil(now + failure.reset_in)
            else:
                window = self._windows.get(route) if route is not None else None
                reset = math.ceil(window.reset_at if window else now + self.rate_window)
            headers = {
                "x-rate-limit-limit": str(limit),
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset),
            }
        if "json" in failure.content_type:
            body: JSON = (
                {
                    "title": "UsageCapExceeded",
                    "detail": "Usage cap exceeded: Monthly product cap",
                    "type": _PROBLEM_USAGE_CAPPED,
                    "period": "Monthly",
                    "scope": "Product",
                }
                if failure.usage_capped
                else _problem(status)
            )
            return self._json(status, body, headers, content_type=failure.content_type)
        text = str(_problem(status)["detail"])
        headers["Content-Type"] = failure.content_type
        return web.Response(status=status, body=text.encode(), headers=headers)

    def _window(self, route: str) -> _Window:
        now = time.time()
        window = self._windows.get(route)
        if window is None or now >= window.reset_at:
            window = self._windows[route] = _Window(reset_at=now + self.rate_window)
        return window

    def _peek_headers(self, route: str | None) -> dict[str, str]:
        if route is None or route not in self.limits:
            return {}
        limit = self.limits[route]
        window = self._window(route)
        remaining = max(limit - window.used, 0) if self.rate_limits else limit
        return self._rate_headers(limit, remaining, window.reset_at)

    def _consume_rate(self, route: str) -> tuple[bool, dict[str, str]]:
        if route not in self.limits:
            return True, {}
        limit = self.limits[route]
        window = self._window(route)
        if not self.rate_limits:
            return True, self._rate_headers(limit, limit, window.reset_at)
        if window.used >= limit:
            return False, self._rate_headers(limit, 0, window.reset_at)
        window.used += 1
        return True, self._rate_headers(limit, limit - window.used, window.reset_at)

    @staticmethod
    def _rate_headers(limit: int, remaining: int, reset_at: float) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(math.ceil(reset_at)),
        }

    @staticmethod
    def _json(
        status: int,
        body: JSON,
        headers: Mapping[str, str] | None = None,
        *,
        content_type: str = "application/json; charset=utf-8",
    ) -> web.Response:
        all_headers = dict(headers or {})
        all_headers["Content-Type"] = content_type
        return web.Response(status=status, body=_json_bytes(body), headers=all_headers)

    # ----------------------------------------------------------------- endpoints

    def _user_by_username(self, username: str, query: Mapping[str, str]) -> _Reply:
        params = _Params(query, _USER_PARAMS)
        if not _USERNAME_RE.match(username):
            params.error(
                "username",
                username,
                f"The `username` query parameter value [{username}] does not match "
                f"^[A-Za-z0-9_]{{1,15}}$",
            )
        user_fields = params.choices("user.fields", _USER_FIELDS)
        params.choices("tweet.fields", _TWEET_FIELDS)
        params.choices("expansions", _USER_EXPANSIONS)
        if params.errors:
            return _Reply(400, _invalid_request(params.errors))
        user = self._by_name.get(username.lower())
        if user is None:
            error = _user_error(
                username,
                "username",
                "Not Found Error",
                f"Could not find user with username: [{username}].",
                _PROBLEM_NOT_FOUND,
            )
            return _Reply(200, {"errors": [error]})
        if user.suspended:
            error = _user_error(
                username,
                "username",
                "Forbidden",
                f"User has been suspended: [{username}].",
                _PROBLEM_NOT_FOUND,
            )
            return _Reply(200, {"errors": [error]})
        return _Reply(200, {"data": self._user_json(user, user_fields)})

    def _users_by_ids(self, query: Mapping[str, str]) -> _Reply:
        """`GET /2/users?ids=`: the live accounts in `data`, the others in `errors`."""
        params = _Params(query, _USERS_PARAMS)
        raw = params.get("ids")
        ids = _split(raw or "")
        if not ids:
            params.error("ids", raw, "The `ids` query parameter can not be empty")
        elif len(ids) > _MAX_USER_IDS:
            params.error(
                "ids",
                raw,
                f"The number of values in the `ids` query parameter list "
                f"[{len(ids)}] is not between 1 and {_MAX_USER_IDS}",
            )
        else:
            for user_id in ids:
                if not user_id.isdigit():
                    params.error(
                        "ids",
                        user_id,
                        f"The `ids` query parameter value [{user_id}] is not valid",
                    )
        user_fields = params.choices("user.fields", _USER_FIELDS)
        params.choices("tweet.fields", _TWEET_FIELDS)
        params.choices("expansions", _USER_EXPANSIONS)
        if params.errors:
            return _Reply(400, _invalid_request(params.errors))
        data: list[JSON] = []
        errors: list[JSON] = []
        for user_id in ids:
            user = self._users.get(user_id)
            if user is None or user.deleted:
                errors.append(
                    _user_error(
                        user_id,
                        "ids",
                        "Not Found Error",
                        f"Could not find user with ids: [{user_id}].",
                        _PROBLEM_NOT_FOUND,
                    )
                )
            elif user.suspended:
                errors.append(
                    _user_error(
                        user_id,
                        "ids",
                        "Forbidden",
                        f"User has been suspended: [{user_id}].",
                        _PROBLEM_NOT_FOUND,
                    )
                )
            else:
                data.append(self._user_json(user, user_fields))
        body: JSON = {}
        if data:
            body["data"] = data
        if errors:
            body["errors"] = errors
        return _Reply(200, body)

    def _users_tweets(self, user_id: str, query: Mapping[str, str]) -> _Reply:
        params = _Params(query, _TIMELINE_PARAMS)
        if not _ID_RE.match(user_id):
            params.error(
                "id",
                user_id,
                f"The `id` query parameter value [{user_id}] does not match ^[0-9]{{1,19}}$",
            )
        max_results = params.integer("max_results", 5, 100, 10)
        since_id = params.snowflake("since_id")
        until_id = params.snowflake("until_id")
        exclude = set(params.choices("exclude", _EXCLUDE_VALUES))
        start, end = params.time_range()
        view = self._view_options(params)
        bound: int | None = None
        token = params.get("pagination_token")
        if token is not None:
            bound = _decode_token(token, "tl", user_id)
            if bound is None:
                params.error(
                    "pagination_token",
                    token,
                    f"The `pagination_token` query parameter value [{token}] is not valid",
                )
        if params.errors:
            return _Reply(400, _invalid_request(params.errors))

        user = self._users.get(user_id)
        if user is None or user.deleted:
            error = _user_error(
                user_id,
                "id",
                "Not Found Error",
                f"Could not find user with id: [{user_id}].",
                _PROBLEM_NOT_FOUND,
            )
            return _Reply(200, {"errors": [error]})
        if user.suspended:
            error = _user_error(
                user_id,
                "id",
                "Forbidden",
                f"User has been suspended: [{user_id}].",
                _PROBLEM_NOT_FOUND,
            )
            return _Reply(200, {"errors": [error]})
        if user.protected:
            error = _user_error(
                user_id,
                "id",
                "Authorization Error",
                f"Sorry, you are not authorized to see the user with id: [{user_id}].",
                _PROBLEM_NOT_AUTHORIZED,
                section=True,
            )
            return _Reply(200, {"errors": [error]})

        ids = user.post_ids
        low = max(len(ids) - _TIMELINE_CAP, 0)  # only the most recent 3,200 posts
        low, high = self._id_slice(ids, low, since_id, until_id, bound)

        def keep(post: _Post) -> bool:
            if "replies" in exclude and post.is_reply:
                return False
            return not ("retweets" in exclude and post.is_retweet)

        candidates = (self._posts[ids[i]] for i in range(high - 1, low - 1, -1))
        page, more = self._collect(candidates, keep, max_results, start, end)
        return self._page(page, more, view, "tl", user_id)

    def _search_recent(self, query: Mapping[str, str]) -> _Reply:
        params = _Params(query, _SEARCH_PARAMS)
        text = params.get("query")
        tree: _Node | None = None
        if text is None or not text.strip():
            params.error("query", text, "The `query` query parameter can not be empty")
        elif len(text) > self.max_query_length:
            params.error(
                "query",
                text,
                f"There were errors processing your request: Rules are limited to "
                f"{self.max_query_length} characters for the currently used product level, "
                f"current rule length is {len(text)} (at position 1)",
            )
        else:
            try:
                tree = _parse_query(text)
            except _QueryError as exc:
                params.error("query", text, f"There were errors processing your request: {exc}")
        max_results = params.integer("max_results", 10, 100, 10)
        since_id = params.snowflake("since_id")
        until_id = params.snowflake("until_id")
        start, end = params.time_range()
        params.choices("sort_order", _SORT_ORDERS)
        view = self._view_options(params)
        now = datetime.now(UTC)
        oldest_allowed = now - _SEARCH_WINDOW
        if start is not None and start < oldest_allowed - timedelta(seconds=1):
            params.error(
                "start_time",
                params.get("start_time"),
                f"Invalid 'start_time':'{params.get('start_time')}'. 'start_time' must be on or "
                f"after {oldest_allowed.strftime('%Y-%m-%dT%H:%MZ')}",
            )
        bound: int | None = None
        token = params.get("next_token")
        if token is not None:
            bound = _decode_token(token, "sr", text or "")
            if bound is None:
                params.error(
                    "next_token",
                    token,
                    f"The `next_token` query parameter value [{token}] is not valid",
                )
        if params.errors or tree is None:
            return _Reply(400, _invalid_request(params.errors))

        matcher: _Node = tree
        start = oldest_allowed if start is None else max(start, oldest_allowed)
        authors = self._query_authors(tree)
        candidates: Iterator[_Post]
        if authors is None:
            low, high = self._id_slice(self._all_ids, 0, since_id, until_id, bound)
            all_ids = self._all_ids
            candidates = (self._posts[all_ids[i]] for i in range(high - 1, low - 1, -1))
        else:
            streams: list[Iterator[int]] = []
            for user in authors:
                if user.visible:
                    low, high = self._id_slice(user.post_ids, 0, since_id, until_id, bound)
                    streams.append(reversed(user.post_ids[low:high]))
            merged = heapq.merge(*streams, reverse=True)
            candidates = (self._posts[post_id] for post_id in merged)

        def keep(post: _Post) -> bool:
            return post.author.visible and _matches(matcher, post)

        page, more = self._collect(candidates, keep, max_results, start, end)
        return self._page(page, more, view, "sr", text or "")

    # ----------------------------------------------------------------- endpoint helpers

    @staticmethod
    def _id_slice(
        ids: list[int], low: int, since_id: int | None, until_id: int | None, bound: int | None
    ) -> tuple[int, int]:
        """Index range [low, high) of ascending `ids` with since_id < id < min(until_id, bound)."""
        high = len(ids)
        if since_id is not None:
            low = max(low, bisect.bisect_right(ids, since_id))
        for upper in (until_id, bound):
            if upper is not None:
                high = min(high, bisect.bisect_left(ids, upper))
        return low, max(low, high)

    def _collect(
        self,
        candidates: Iterable[_Post],
        keep: Callable[[_Post], bool],
        max_results: int,
        start: datetime | None,
        end: datetime | None,
    ) -> tuple[list[_Post], bool]:
        """Take up to `max_results` posts (newest first) in [start, end); tell if more exist."""
        start_ts = start.timestamp() if start is not None else -math.inf
        end_ts = end.timestamp() if end is not None else math.inf
        page: list[_Post] = []
        for post in candidates:
            if post.created_ts < start_ts:
                if self._times_monotonic:
                    break  # every later candidate is older still
                continue
            if post.created_ts >= end_ts or not keep(post):
                continue
            if len(page) == max_results:
                return page, True
            page.append(post)
        return page, False

    def _query_authors(self, node: _Node) -> list[_User] | None:
        """Accounts a query restricts results to via from:, or None when unrestricted."""
        if isinstance(node, _Term):
            if node.op != "from":
                return None
            found = self._by_name.get(node.value) or self._users.get(node.value)
            return [found] if found is not None and not found.deleted else []
        if isinstance(node, _Not):
            return None
        subsets = [self._query_authors(child) for child in node.children]
        if isinstance(node, _And):
            restricted = [subset for subset in subsets if subset is not None]
            if not restricted:
                return None
            common = {user.id: user for user in restricted[0]}
            for other in restricted[1:]:
                ids = {user.id for user in other}
                common = {key: user for key, user in common.items() if key in ids}
            return list(common.values())
        if any(subset is None for subset in subsets):
            return None
        union: dict[str, _User] = {}
        for subset in subsets:
            for user in subset or ():
                union[user.id] = user
        return list(union.values())

    @staticmethod
    def _view_options(params: _Params) -> tuple[list[str], list[str], set[str]]:
        tweet_fields = params.choices("tweet.fields", _TWEET_FIELDS)
        user_fields = params.choices("user.fields", _USER_FIELDS)
        expansions = set(params.choices("expansions", _TWEET_EXPANSIONS))
        return tweet_fields, user_fields, expansions

    def _page(
        self,
        page: list[_Post],
        more: bool,
        view: tuple[list[str], list[str], set[str]],
        kind: str,
        context: str,
    ) -> _Reply:
        if not page:
            return _Reply(200, {"meta": {"result_count": 0}})
        tweet_fields, user_fields, expansions = view
        body: JSON = {"data": [self._post_json(post, tweet_fields) for post in page]}
        includes = self._includes(page, tweet_fields, user_fields, expansions)
        if includes:
            body["includes"] = includes
        meta: JSON = {
            "newest_id": page[0].sid,
            "oldest_id": page[-1].sid,
            "result_count": len(page),
        }
        if more:
            meta["next_token"] = _encode_token(kind, context, page[-1].id)
        body["meta"] = meta
        return _Reply(200, body, len(page))

    def _includes(
        self,
        page: list[_Post],
        tweet_fields: list[str],
        user_fields: list[str],
        expansions: set[str],
    ) -> JSON:
        users: dict[str, _User] = {}
        tweets: dict[str, _Post] = {}
        for post in page:
            if "author_id" in expansions:
                users.setdefault(post.author.id, post.author)
            if "in_reply_to_user_id" in expansions and post.reply_to_user is not None:
                users.setdefault(post.reply_to_user.id, post.reply_to_user)
            if "entities.mentions.username" in expansions:
                for mention in sorted(post.mentions()):
                    mentioned = self._by_name.get(mention)
                    if mentioned is not None:
                        users.setdefault(mentioned.id, mentioned)
            if expansions & {"referenced_tweets.id", "referenced_tweets.id.author_id"}:
                for _, ref_id in post.references:
                    referenced = self._posts[int(ref_id)]
                    if not referenced.author.visible:
                        continue
                    if "referenced_tweets.id" in expansions:
                        tweets.setdefault(ref_id, referenced)
                    if "referenced_tweets.id.author_id" in expansions:
                        users.setdefault(referenced.author.id, referenced.author)
        includes: JSON = {}
        visible = [user for user in users.values() if not user.deleted]
        if visible:
            includes["users"] = [self._user_json(user, user_fields) for user in visible]
        if tweets:
            includes["tweets"] = [self._post_json(post, tweet_fields) for post in tweets.values()]
        return includes

    def _user_json(self, user: _User, fields: Iterable[str]) -> JSON:
        data: JSON = {"id": user.id, "name": user.name, "username": user.username}
        for name in fields:
            if name == "created_at":
                data["created_at"] = _iso(user.created_at)
            elif name == "description":
                data["description"] = user.description
            elif name == "protected":
                data["protected"] = user.protected
            elif name == "verified":
                data["verified"] = False
            elif name == "verified_type":
                data["verified_type"] = "none"
            elif name == "profile_image_url":
                data["profile_image_url"] = _DEFAULT_AVATAR
            elif name == "url":
                data["url"] = ""
            elif name == "most_recent_tweet_id" and user.post_ids:
                data["most_recent_tweet_id"] = str(user.post_ids[-1])
            elif name == "public_metrics":
                data["public_metrics"] = {
                    "followers_count": 0,
                    "following_count": 0,
                    "tweet_count": len(user.post_ids),
                    "listed_count": 0,
                    "like_count": 0,
                    "media_count": 0,
                }
        return data

    def _post_json(self, post: _Post, fields: Iterable[str]) -> JSON:
        # Like X, links are wrapped in t.co (the originals are in entities.urls), and API v2
        # escapes &, < and > in post text (and nothing else).
        text, _ = _wrap_links(post)
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        data: JSON = {"id": post.sid, "text": text, "edit_history_tweet_ids": [post.sid]}
        for name in fields:
            if name == "author_id":
                data["author_id"] = post.author.id
            elif name == "created_at":
                data["created_at"] = _iso(post.created_at)
            elif name == "conversation_id":
                data["conversation_id"] = post.conversation_id
            elif name == "in_reply_to_user_id" and post.reply_to_user is not None:
                data["in_reply_to_user_id"] = post.reply_to_user.id
            elif name == "referenced_tweets" and post.references:
                data["referenced_tweets"] = [
                    {"type": kind, "id": ref_id} for kind, ref_id in post.references
                ]
            elif name == "lang":
                data["lang"] = post.lang
            elif name == "entities":
                entities = self._entities(post)
                if entities:
                    data["entities"] = entities
            elif name == "possibly_sensitive":
                data["possibly_sensitive"] = False
            elif name == "reply_settings":
                data["reply_settings"] = "everyone"
            elif name == "public_metrics":
                data["public_metrics"] = {
                    "retweet_count": 0,
                    "reply_count": 0,
                    "like_count": 0,
                    "quote_count": 0,
                    "bookmark_count": 0,
                    "impression_count": 0,
                }
            elif name == "edit_controls":
                data["edit_controls"] = {
                    "edits_remaining": 5,
                    "is_edit_eligible": True,
                    "editable_until": _iso(post.created_at + timedelta(hours=1)),
                }
        return data

    def _entities(self, post: _Post) -> JSON:
        entities: JSON = {}
        # Positions are in the text as served (links already wrapped in t.co).
        served, urls = _wrap_links(post)
        hashtags = [
            {"start": m.start(), "end": m.end(), "tag": m.group(1)}
            for m in _HASHTAG_RE.finditer(served)
            if not _inside(m.start(), urls)
        ]
        mentions: list[JSON] = []
        for m in _MENTION_RE.finditer(served):
            if _inside(m.start(), urls):
                continue
            mention: JSON = {"start": m.start(), "end": m.end(), "username": m.group(1)}
            known = self._by_name.get(m.group(1).lower())
            if known is not None:
                mention["username"] = known.username
                mention["id"] = known.id
            mentions.append(mention)
        if urls:
            entities["urls"] = urls
        if hashtags:
            entities["hashtags"] = hashtags
        if mentions:
            entities["mentions"] = mentions
        return entities
