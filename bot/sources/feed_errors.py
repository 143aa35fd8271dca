"""Why a feed could not be read: each failure carries a short `code` for user-facing replies.

SourceError
└── FeedError (code, transient)
    ├── FeedRefused       "private" | "scheme"   the address is not one we may fetch;
    │                     | "entities"           or the document declares XML entities
    ├── FeedTooLarge      "too_large"
    ├── TooManyRedirects  "redirects"
    ├── NotAFeed          "not_a_feed"           an HTML page (no feed link found)
    ├── MalformedFeed     "malformed"            XML nothing usable could be read from
    ├── FeedTooComplex    "too_complex"          reading it took longer than its budget
    ├── FeedHttpError     "http" (.status)       4xx/5xx; transient for 5xx and 429
    ├── FeedTimeout       "timeout"              also an Unavailable (transient)
    ├── FeedUnreachable   "unreachable"          DNS or connection failure; also Unavailable
    └── FeedNotSaved      "internal"             our failure (a bug, the database), not the feed's

`unreadable` is True for the failures of a feed that answered, but with something that cannot
be read as a feed (broken XML, a page, too large or too complex, entities): a feed that fails
so is not "not answering", and its followers are told which it is.
"""

from __future__ import annotations

from bot.sources.base import SourceError, Unavailable


class FeedError(SourceError):
    """Base of every feed failure; `code` names it in replies, `transient` says to retry later."""

    code = "feed"
    transient = False
    unreadable = False

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)


class FeedRefused(FeedError):
    """The address resolves to a private network or uses a scheme other than http/https."""

    def __init__(self, code: str) -> None:
        super().__init__(f"refused: {code}")
        self.code = code
        self.unreadable = code == "entities"


class FeedTooLarge(FeedError):
    """The body is larger than the fetcher accepts."""

    code = "too_large"
    unreadable = True


class TooManyRedirects(FeedError):
    """Redirects loop or go on for longer than the fetcher follows."""

    code = "redirects"


class NotAFeed(FeedError):
    """The address serves something else than a feed (an HTML page, most often)."""

    code = "not_a_feed"
    unreadable = True


class MalformedFeed(FeedError):
    """The document is broken XML nothing usable could be read from."""

    code = "malformed"
    unreadable = True


class FeedTooComplex(FeedError):
    """Reading the body (parsing it, its entries to text) took longer than `seconds`, or more
    memory than a reader has: too large or too intricate to read."""

    code = "too_complex"
    unreadable = True

    def __init__(self, message: str = "", *, seconds: float = 0.0) -> None:
        super().__init__(message)
        self.seconds = seconds


class FeedHttpError(FeedError):
    """The server answered with an HTTP error status (`status`: 404 and 410 mean gone)."""

    code = "http"

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.transient = status >= 500 or status in (408, 429)


class FeedTimeout(FeedError, Unavailable):
    """The whole fetch took longer than allowed."""

    code = "timeout"
    transient = True


class FeedUnreachable(FeedError, Unavailable):
    """The host name does not resolve or the connection failed."""

    code = "unreachable"
    transient = True


class FeedNotSaved(FeedError):
    """jobrelay failed on its side (an unexpected error while reading or saving the feed,
    logged with its traceback): the address is not to blame, and the person is told so."""

    code = "internal"
    transient = True
