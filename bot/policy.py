"""Push now or hold for a digest: pure functions of a chat's settings, its counters and the clock.

Every time here is an aware datetime; local times follow the chat's IANA zone, DST included.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_DAILY_LIMIT = 50
DEFAULT_DIGEST_TIME = time(19, 0)
WEEKLY_SUMMARY_TIME = time(9, 0)
MONDAY = 0


class Hold(enum.StrEnum):
    """Why an offer waits for a digest instead of being pushed."""

    PAUSE = "pause"
    QUIET = "quiet"
    DIGEST = "digest"  # digest-only mode
    LIMIT = "limit"  # the day's instant pushes are used up
    RANK = "rank"  # below the chat's usual score (bot.ranking): the digest, best first


CATCH_UP = frozenset({Hold.PAUSE, Hold.QUIET})


@dataclass(frozen=True, slots=True)
class ChatPolicy:
    """A chat's healthy-use settings."""

    timezone: str = "Europe/Paris"
    daily_limit: int = 10
    digest_only: bool = False
    digest_time: time = DEFAULT_DIGEST_TIME
    quiet_start: time | None = None
    quiet_end: time | None = None
    paused: bool = False
    paused_until: datetime | None = None  # None with paused=True: until /resume
    digest_weekday: int | None = None  # 0 = Monday: one digest a week; None: daily
    ranking: bool = True  # the day's pushes go to the offers the chat's marks rank first

    @property
    def zone(self) -> ZoneInfo:
        """The chat's time zone."""
        return ZoneInfo(self.timezone)


def local(policy: ChatPolicy, now: datetime) -> datetime:
    """`now` on the chat's wall clock."""
    return now.astimezone(policy.zone)


def at_local(policy: ChatPolicy, day: datetime, at: time) -> datetime:
    """The UTC instant of local time `at` on the local date of `day` (DST-safe)."""
    naive = datetime.combine(day.astimezone(policy.zone).date(), at)
    return naive.replace(tzinfo=policy.zone).astimezone(UTC)


def day_start(policy: ChatPolicy, now: datetime) -> datetime:
    """Local midnight of today, as a UTC instant: daily counters reset there."""
    return at_local(policy, now, time(0, 0))


def is_paused(policy: ChatPolicy, now: datetime) -> bool:
    """Whether a pause is in force at `now`."""
    return policy.paused and (policy.paused_until is None or now < policy.paused_until)


def in_quiet_hours(policy: ChatPolicy, now: datetime) -> bool:
    """Whether local `now` falls in the quiet window (which may cross midnight)."""
    start, end = policy.quiet_start, policy.quiet_end
    if start is None or end is None or start == end:
        return False
    clock = local(policy, now).time()
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


def hold_reason(policy: ChatPolicy, now: datetime, pushed_today: int) -> Hold | None:
    """Why an offer ready at `now` must wait, or None to push it now."""
    if is_paused(policy, now):
        return Hold.PAUSE
    if policy.digest_only:  # the daily digest carries it, quiet hours or not
        return Hold.DIGEST
    if in_quiet_hours(policy, now):
        return Hold.QUIET
    if pushed_today >= policy.daily_limit:
        return Hold.LIMIT
    return None


def _digest_days(policy: ChatPolicy, now: datetime, step: int) -> list[datetime]:
    """Digest instants on the 8 local days from today going `step` (-1 back, +1 on)."""
    here = local(policy, now)
    days = [here + timedelta(days=step * n) for n in range(8)]
    return [
        at_local(policy, day, policy.digest_time)
        for day in days
        if policy.digest_weekday is None or day.weekday() == policy.digest_weekday
    ]


def latest_digest_time(policy: ChatPolicy, now: datetime) -> datetime:
    """The most recent scheduled digest instant at or before `now` (daily, or on the weekly
    digest's day)."""
    return next(at for at in _digest_days(policy, now, -1) if at <= now)


def next_digest_time(policy: ChatPolicy, now: datetime) -> datetime:
    """The next scheduled digest instant after `now`."""
    return next(at for at in _digest_days(policy, now, +1) if at > now)


def digest_due(policy: ChatPolicy, now: datetime, held: list[tuple[Hold, datetime]]) -> bool:
    """Whether the held offers (reason, held at) should go out as a digest now.

    Nothing goes out while paused or quiet. Offers held by a pause or quiet hours come as one
    catch-up digest as soon as the window is over; the others at the daily digest time.
    """
    if not held or is_paused(policy, now) or in_quiet_hours(policy, now):
        return False
    if any(reason in CATCH_UP for reason, _ in held):
        return True
    latest = latest_digest_time(policy, now)
    return any(held_at <= latest for _, held_at in held)


def weekly_summary_due(
    policy: ChatPolicy, now: datetime, last_sent: datetime | None, since: datetime
) -> bool:
    """Monday from 09:00 local, once a week, for a chat that existed (`since`) before that
    09:00; a Monday missed (bot down all day) is skipped rather than summarised on a Wednesday."""
    here = local(policy, now)
    if here.weekday() != MONDAY:
        return False
    this_week = at_local(policy, here, WEEKLY_SUMMARY_TIME)
    if now < this_week or since >= this_week:
        return False
    return last_sent is None or last_sent < this_week
