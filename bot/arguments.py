"""Parsing command arguments into plain values (pure: no Telegram, no database)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.sources.feeds import FeedAddress, FeedAddressError, feed_address

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


class ArgumentError(ValueError):
    """A command argument that is not accepted; `code` picks the reply."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


_HHMM_RE = re.compile(r"^([01]?\d|2[0-3])[:hH]([0-5]\d)$")
_DURATION_RE = re.compile(r"^(\d{1,4})\s*([mhdw])$", re.IGNORECASE)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_PAUSE_SECONDS = 90 * 86400


def parse_limit(word: str, maximum: int) -> int:
    """A daily limit: a whole number from 0 to `maximum`."""
    if not (word.isascii() and word.isdigit()) or int(word) > maximum:
        raise ArgumentError("limit")
    return int(word)


def parse_hhmm(word: str) -> time:
    """`19:00`, `7:30` or `19h00` -> a time of day."""
    match = _HHMM_RE.match(word.strip())
    if not match:
        raise ArgumentError("time")
    return time(int(match.group(1)), int(match.group(2)))


WEEKLY_WORDS = frozenset({"weekly", "week", "hebdo", "hebdomadaire", "semaine"})
_WEEKDAYS = {
    name: day
    for day, names in enumerate(
        [
            "mon monday lun lundi",
            "tue tues tuesday mar mardi",
            "wed wednesday mer mercredi",
            "thu thur thurs thursday jeu jeudi",
            "fri friday ven vendredi",
            "sat saturday sam samedi",
            "sun sunday dim dimanche",
        ]
    )
    for name in names.split()
}
DEFAULT_WEEKLY_TIME = time(9, 0)


def parse_weekly(words: list[str]) -> tuple[int, time]:
    """`mon 09:00`, `lundi`, `friday 17h30` -> (weekday with 0 = Monday, time; 09:00 if none).
    Raises ArgumentError("weekly")."""
    if not 1 <= len(words) <= 2:
        raise ArgumentError("weekly")
    day = _WEEKDAYS.get(words[0].lower().rstrip("."))
    if day is None:
        raise ArgumentError("weekly")
    try:
        at = parse_hhmm(words[1]) if len(words) == 2 else DEFAULT_WEEKLY_TIME
    except ArgumentError:
        raise ArgumentError("weekly") from None
    return day, at


def format_hhmm(value: time) -> str:
    """A time of day as HH:MM."""
    return value.strftime("%H:%M")


def parse_window(word: str) -> tuple[time, time]:
    """`22:00-07:00` -> (start, end); the window may cross midnight but not be empty."""
    start, dash, end = word.replace("–", "-").partition("-")
    if not dash:
        raise ArgumentError("window")
    try:
        window = parse_hhmm(start), parse_hhmm(end)
    except ArgumentError:
        raise ArgumentError("window") from None
    if window[0] == window[1]:
        raise ArgumentError("window")
    return window


def parse_duration(word: str) -> timedelta:
    """`3d`, `12h`, `90m`, `2w` -> a positive duration of at most 90 days."""
    match = _DURATION_RE.match(word.strip())
    if not match:
        raise ArgumentError("duration")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if not 0 < seconds <= MAX_PAUSE_SECONDS:
        raise ArgumentError("duration")
    return timedelta(seconds=seconds)


# The areas of the IANA database's Area/City names. The zoneinfo directory holds other files
# too: the host's own zone (`localtime`, which may not load on another host), files that are no
# place (`posixrules`, `Factory`), copies under `posix/` and `right/`, and old aliases
# (`US/Pacific`, `Etc/GMT+5`): a chat's zone is one of these areas' places, or UTC.
ZONE_AREAS = frozenset(
    {
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
    }
)
MAX_ZONE_LENGTH = 40  # the longest, America/Argentina/ComodRivadavia, has 32 characters
_ZONE_RE = re.compile(r"^[A-Za-z]+(?:/[A-Za-z_-]+){1,2}$")


@cache
def _zones() -> dict[str, str]:
    names = {"UTC"} | {
        name
        for name in available_timezones()
        if _ZONE_RE.match(name) and name.split("/", 1)[0] in ZONE_AREAS
    }
    return {name.lower(): name for name in names}


def parse_timezone(word: str) -> str:
    """An IANA Area/City zone (`Europe/Paris`, any case) or `UTC` -> its canonical spelling;
    the zone must load on this host. Raises ArgumentError("timezone")."""
    word = word.strip()
    if len(word) > MAX_ZONE_LENGTH:  # refused before it is looked up
        raise ArgumentError("timezone")
    name = _zones().get(word.lower())
    if name is None:
        raise ArgumentError("timezone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ArgumentError("timezone") from None
    return name


@dataclass(frozen=True, slots=True)
class FollowWords:
    """The words of /follow or /unfollow: X handles, category slugs, and words that are neither."""

    handles: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # an @word or X link that is no handle
    bare_handles: list[str] = field(default_factory=list)  # no category; a handle without @?
    unknown: list[str] = field(default_factory=list)  # other plain words naming no category
    feeds: list[FeedAddress] = field(default_factory=list)  # feed URLs, Mastodon, Bluesky
    bad_feeds: list[tuple[str, str]] = field(default_factory=list)  # (word, FeedAddressError code)

    @property
    def problems(self) -> bool:
        """Whether some word was not understood (then nothing is changed)."""
        return bool(self.malformed or self.bare_handles or self.unknown or self.bad_feeds)


MAX_CATEGORY_WORDS = 3
# A web address typed without its scheme, as browsers take it: `www.…`, or `host.tld/path`.
_SCHEMELESS_RE = re.compile(
    r"^(?:www\.[^\s/]+|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,63}(?::\d+)?/\S*)$", re.IGNORECASE
)


def _with_scheme(word: str) -> str:
    """`jobs.example.com/feed.xml` -> `https://jobs.example.com/feed.xml`; other words as
    they are (X profile links stay X accounts either way)."""
    if _SCHEMELESS_RE.match(word) and not _PROFILE_URL_RE.match(word):
        return f"https://{word}"
    return word


def parse_follow_words(words: list[str], category_for: Callable[[str], str | None]) -> FollowWords:
    """Split `/follow` words into handles (`@acme_jobs`, x.com links), categories (`software`,
    `graphisme`, `service client`), @words that are no handle (`@@@`), and plain words that
    name no category: those that could be a handle if written with an @ (`acme_jobs`) and the
    others (`software$$`, `💼`). A plain word is always read as a category."""
    handles: list[str] = []
    categories: list[str] = []
    malformed: list[str] = []
    bare: list[str] = []
    unknown: list[str] = []
    seen: set[str] = set()
    feeds: list[FeedAddress] = []
    bad_feeds: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word = words[i].strip()
        try:
            address = feed_address(_with_scheme(word))
        except FeedAddressError as exc:
            bad_feeds.append((word, exc.code))
            i += 1
            continue
        if address is not None:
            if address.key not in seen:
                seen.add(address.key)
                feeds.append(address)
            i += 1
            continue
        if word.startswith("@") or _PROFILE_URL_RE.match(word):
            handle = parse_handle(word)
            if handle is None:
                malformed.append(word)
            elif handle.lower() not in seen:
                seen.add(handle.lower())
                handles.append(handle)
            i += 1
            continue
        # The longest run of plain words that names a category ("service client").
        for length in range(min(MAX_CATEGORY_WORDS, len(words) - i), 0, -1):
            run = words[i : i + length]
            if any(w.startswith("@") for w in run):
                continue
            slug = category_for(" ".join(run))
            if slug is not None:
                if slug not in categories:
                    categories.append(slug)
                i += length
                break
        else:
            # A plain word names a category; an account needs its @ ("/follow python" must not
            # follow whoever owns @python on X).
            (bare if HANDLE_RE.fullmatch(word) else unknown).append(word)
            i += 1
    return FollowWords(handles, categories, malformed, bare, unknown, feeds, bad_feeds)


MAX_FILTER_WORDS = 20
# Letters, digits and the joiners of plain words ("node.js", "full-stack", "aujourd'hui"): a
# "+" or "#" inside a word ("c++", "c#") could not be matched as typed, so it is refused.
# Inside a word: letters, digits and what joins them in job titles (node.js, full-stack, R&D,
# UX/UI, développeur·se, chargé(e), 100%); `+`, `#`, `_` and other symbols cannot be matched.
_NOT_A_PLAIN_WORD = re.compile(r"[^\w.'’&/·•()%-]|_")
# Around a word: the punctuation of a sentence or a list ("+python," "«stage»").
_EDGE_PUNCTUATION = ".,;:!?\"'’«»“”"
MAX_FILTER_WORD_LENGTH = 40
MAX_FILTER_WORD_TOKENS = 4


@dataclass(frozen=True, slots=True)
class FilterTerm:
    """One /filter word: as typed (without its sign), as matched, and which way it works."""

    word: str
    phrase: str
    include: bool


def parse_filter(words: list[str], to_phrase: Callable[[str], str]) -> list[FilterTerm]:
    """`+python +remote -stage` -> terms; a word without a sign must be in the offer.

    Only plain words: `to_phrase` reduces each to the normalised tokens offers are matched on
    (never a pattern a user could make slow). Raises ArgumentError: `filter_sign` for a sign
    alone, `filter_word` for a word with no letter or digit or too long, `filter_many` past
    MAX_FILTER_WORDS, `filter_both` for a word both required and excluded.
    """
    if len(words) > MAX_FILTER_WORDS:
        raise ArgumentError("filter_many")
    terms: dict[str, FilterTerm] = {}
    for raw in words:
        word = unicodedata.normalize("NFC", raw).strip(_EDGE_PUNCTUATION + " ")
        include = not word.startswith("-")
        bare = word[1:] if word[:1] in "+-" else word
        if not bare:
            raise ArgumentError("filter_sign")
        bare = bare.removeprefix("#").strip(_EDGE_PUNCTUATION)  # -#stage is -stage
        if len(bare) > MAX_FILTER_WORD_LENGTH:  # refused before it is read through
            raise ArgumentError("filter_word")
        phrase = to_phrase(bare)
        # Measured as stored: lowering may lengthen a word (`İ` is `i̇`, two characters).
        shown = bare.lower()
        if (
            not phrase
            or _NOT_A_PLAIN_WORD.search(bare)
            or len(phrase) > MAX_FILTER_WORD_LENGTH
            or len(shown) > MAX_FILTER_WORD_LENGTH
            or len(phrase.split()) > MAX_FILTER_WORD_TOKENS
        ):
            raise ArgumentError("filter_word")
        known = terms.get(phrase)
        if known is not None and known.include != include:
            raise ArgumentError("filter_both")
        terms.setdefault(phrase, FilterTerm(shown, phrase, include))
    return list(terms.values())
