"""What every source adapter returns and raises: plain values, no network types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Account:
    """A resolved account on a network: its stable id and its handle as the network spells it."""

    external_id: str
    handle: str
    name: str


# What one post may carry, whatever its source sends: a stranger's feed can serve a 5 MB entry,
# which would otherwise be read, stored and rendered in full.
MAX_TEXT = 4000
MAX_AUTHOR = 200
MAX_URL = 2048
ELLIPSIS = "…"


def bounded(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending with "…" when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


@dataclass(frozen=True, slots=True)
class Post:
    """One post read from a source; its text, author and link are cut to sane lengths."""

    external_id: str
    author: str
    text: str
    url: str
    posted_at: datetime | None
    author_id: str = ""  # the network's id of the author (a handle can change hands)

    def __post_init__(self) -> None:
        for name, limit in (("text", MAX_TEXT), ("author", MAX_AUTHOR), ("url", MAX_URL)):
            value = getattr(self, name)
            if len(value) > limit:
                object.__setattr__(self, name, bounded(value, limit))


@dataclass(frozen=True, slots=True)
class Batch:
    """New posts of one source, oldest first, and the cursor to store once they are saved."""

    posts: list[Post]
    cursor: str | None
    requests: int = 1  # X requests it took (pages)
    returned: int = -1  # posts X returned, each billed (-1: as many as `posts`)

    @property
    def billed(self) -> int:
        """Posts X charges for."""
        return len(self.posts) if self.returned < 0 else self.returned


@dataclass(frozen=True, slots=True)
class Lookup:
    """Accounts looked up by id: those that exist (as the network spells them now) and, for
    the others, why they are gone."""

    found: dict[str, Account]
    gone: dict[str, SourceError]


class SourceError(Exception):
    """Base of every failure a source adapter reports."""


class AccountNotFound(SourceError):
    """The account does not exist (or no longer exists)."""


class AccountSuspended(SourceError):
    """The network suspended the account or made it unreadable."""


class RateLimited(SourceError):
    """The network asks to wait until `reset_at` (a UTC datetime) before the next request."""

    def __init__(self, reset_at: datetime, *, usage_capped: bool = False) -> None:
        super().__init__(f"rate limited until {reset_at.isoformat()}")
        self.reset_at = reset_at
        self.usage_capped = usage_capped


class AuthError(SourceError):
    """The network refused our credentials (401/403): an operator problem, not a source one."""


class Unavailable(SourceError):
    """A transient failure: 5xx, timeout, connection error, malformed answer."""


class NotConfigured(SourceError):
    """The network's credentials are not set."""
