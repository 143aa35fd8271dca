"""Parsing command arguments into plain values (pure: no Telegram, no database)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_HANDLES = 50
HANDLE_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_PROFILE_URL_RE = re.compile(
    r"^(?:https?://)?(?:www\.|mobile\.)?(?:x|twitter)\.com/([^/?#]+)/?(?:[?#].*)?$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class HandleList:
    """Handles typed by a user: the valid ones (deduplicated, in order) and the malformed ones."""

    handles: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)


def split_arguments(args: list[str]) -> list[str]:
    """Words of a command, also split on commas ("@a, @b" and "@a,@b" are two handles)."""
    return [part for arg in args for part in arg.split(",") if part.strip()]


def parse_handle(word: str) -> str | None:
    """`@acme_jobs`, `acme_jobs` or `https://x.com/acme_jobs` -> `acme_jobs`; None if malformed."""
    word = word.strip()
    match = _PROFILE_URL_RE.match(word)
    if match:
        word = match.group(1)
    word = word.removeprefix("@")
    return word if HANDLE_RE.fullmatch(word) else None


def parse_handles(args: list[str]) -> HandleList:
    """Every handle in the arguments, deduplicated case-insensitively, with the malformed ones."""
    handles: list[str] = []
    seen: set[str] = set()
    malformed: list[str] = []
    for word in split_arguments(args):
        handle = parse_handle(word)
        if handle is None:
            malformed.append(word.strip())
        elif handle.lower() not in seen:
            seen.add(handle.lower())
            handles.append(handle)
    return HandleList(handles=handles, malformed=malformed)
