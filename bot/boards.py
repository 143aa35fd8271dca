"""The operator's job boards (curated sources): X accounts and feeds polled for category
followers even when no chat follows them by name, and the only sources whose offers reach
category followers (BOARDS_FILE, a TOML file:
`accounts = ["@indeed_fr", "@apec"]` and `feeds = ["https://jobs.example/feed.xml"]`)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bot.arguments import parse_handle
from bot.sources.feeds import FEED_KINDS, FeedAddress, FeedAddressError, feed_address

MAX_BOARDS = 500


@dataclass(frozen=True, slots=True)
class Boards:
    """What a boards file lists."""

    accounts: list[str] = field(default_factory=list)
    feeds: list[FeedAddress] = field(default_factory=list)


def load_boards(path: Path) -> Boards:
    """The handles and feeds listed in a boards file; ValueError with a clear message when
    malformed."""
    try:
        # utf-8-sig: a file saved with a byte-order mark (as some Windows editors do) is read.
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid TOML ({exc})") from None
    accounts = data.get("accounts", [] if "feeds" in data else None)
    feeds = data.get("feeds", [])
    if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
        raise ValueError(
            f'{path} needs a list of X handles: accounts = ["@indeed_fr", "@apec"] '
            '(and/or feeds = ["https://jobs.example/feed.xml"])'
        )
    if not isinstance(feeds, list) or not all(isinstance(f, str) for f in feeds):
        raise ValueError(f'{path}: feeds must be a list of addresses: feeds = ["https://…"]')
    handles: list[str] = []
    for account in accounts:
        handle = parse_handle(account)
        if handle is None:
            raise ValueError(f"{path}: {account!r} is not an X handle (like @acme_jobs)")
        if handle.lower() not in {h.lower() for h in handles}:
            handles.append(handle)
    addresses: list[FeedAddress] = []
    for url in feeds:
        try:
            address = feed_address(url)
        except FeedAddressError:
            address = None
        if address is None or address.kind not in FEED_KINDS:
            raise ValueError(f"{path}: {url!r} is not a feed address (like https://…/feed.xml)")
        if address.key not in {a.key for a in addresses}:
            addresses.append(address)
    if len(handles) + len(addresses) > MAX_BOARDS:
        raise ValueError(
            f"{path} lists {len(handles) + len(addresses)} boards; at most {MAX_BOARDS}"
        )
    return Boards(handles, addresses)
