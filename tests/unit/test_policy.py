"""Push-or-hold decisions at midnight, across DST changes and quiet windows over midnight."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.policy import (
    ChatPolicy,
    Hold,
    day_start,
    digest_due,
    hold_reason,
    in_quiet_hours,
    latest_digest_time,
    next_digest_time,
    weekly_summary_due,
)

PARIS = ZoneInfo("Europe/Paris")


def paris(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def test_under_the_limit_pushes_and_at_the_limit_holds() -> None:
    policy = ChatPolicy(daily_limit=2)
    now = paris(2026, 11, 25, 10, 0)
    assert hold_reason(policy, now, pushed_today=1) is None
    assert hold_reason(policy, now, pushed_today=2) is Hold.LIMIT
    assert hold_reason(ChatPolicy(daily_limit=0), now, 0) is Hold.LIMIT


def test_the_day_starts_at_local_midnight() -> None:
    policy = ChatPolicy(timezone="Europe/Paris")
    assert day_start(policy, paris(2026, 11, 25, 0, 30)) == paris(2026, 11, 25, 0, 0)
    assert day_start(policy, paris(2026, 11, 24, 23, 59)) == paris(2026, 11, 24, 0, 0)
    tokyo = ChatPolicy(timezone="Asia/Tokyo")
    # 16:00 UTC is already tomorrow in Tokyo: its day started at 15:00 UTC.
    assert day_start(tokyo, datetime(2026, 11, 25, 16, 0, tzinfo=UTC)) == datetime(
        2026, 11, 25, 15, 0, tzinfo=UTC
    )


def test_days_are_23_and_25_hours_long_on_dst_change_days() -> None:
    policy = ChatPolicy(timezone="Europe/Paris")
    spring = day_start(policy, paris(2026, 3, 30, 12, 0)) - day_start(
        policy, paris(2026, 3, 29, 12, 0)
    )
    autumn = day_start(policy, paris(2026, 10, 26, 12, 0)) - day_start(
        policy, paris(2026, 10, 25, 12, 0)
    )
    assert spring == timedelta(hours=23)
    assert autumn == timedelta(hours=25)


def test_digest_time_follows_local_time_across_dst() -> None:
    policy = ChatPolicy(timezone="Europe/Paris", digest_time=time(19, 0))
    before = next_digest_time(policy, paris(2026, 3, 28, 20, 0))
    after = next_digest_time(policy, paris(2026, 3, 29, 20, 0))
    assert before.astimezone(PARIS).hour == after.astimezone(PARIS).hour == 19
    assert before == datetime(2026, 3, 29, 17, 0, tzinfo=UTC)  # CEST, UTC+2
    assert after == datetime(2026, 3, 30, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"),
    [(21, 59, False), (22, 0, True), (23, 59, True), (0, 0, True), (6, 59, True), (7, 0, False)],
)
def test_a_quiet_window_may_cross_midnight(hour: int, minute: int, quiet: bool) -> None:
    policy = ChatPolicy(quiet_start=time(22, 0), quiet_end=time(7, 0))
    assert in_quiet_hours(policy, paris(2026, 11, 25, hour, minute)) is quiet


def test_a_daytime_quiet_window() -> None:
    policy = ChatPolicy(quiet_start=time(12, 0), quiet_end=time(14, 0))
    assert in_quiet_hours(policy, paris(2026, 11, 25, 13, 0))
    assert not in_quiet_hours(policy, paris(2026, 11, 25, 14, 0))


def test_pause_beats_digest_mode_beats_quiet_beats_limit() -> None:
    now = paris(2026, 11, 25, 23, 0)
    everything = ChatPolicy(
        paused=True, quiet_start=time(22, 0), quiet_end=time(7, 0), digest_only=True, daily_limit=0
    )
    assert hold_reason(everything, now, 0) is Hold.PAUSE
    # Digest-only chats get their one daily digest, not an extra catch-up after quiet hours.
    night = (time(22, 0), time(7, 0))
    digest_and_quiet = ChatPolicy(quiet_start=night[0], quiet_end=night[1], digest_only=True)
    assert hold_reason(digest_and_quiet, now, 0) is Hold.DIGEST
    quiet_and_limit = ChatPolicy(quiet_start=night[0], quiet_end=night[1], daily_limit=0)
    assert hold_reason(quiet_and_limit, now, 0) is Hold.QUIET


def test_a_timed_pause_expires() -> None:
    until = paris(2026, 11, 26, 10, 0)
    policy = ChatPolicy(paused=True, paused_until=until)
    assert hold_reason(policy, until - timedelta(seconds=1), 0) is Hold.PAUSE
    assert hold_reason(policy, until, 0) is None


def test_catch_up_digest_comes_when_the_quiet_window_ends() -> None:
    policy = ChatPolicy(quiet_start=time(22, 0), quiet_end=time(7, 0))
    held = [(Hold.QUIET, paris(2026, 11, 25, 23, 0)), (Hold.QUIET, paris(2026, 11, 26, 3, 0))]
    assert not digest_due(policy, paris(2026, 11, 26, 6, 59), held)
    assert digest_due(policy, paris(2026, 11, 26, 7, 0), held)


def test_overflow_goes_out_at_the_digest_time() -> None:
    policy = ChatPolicy(digest_time=time(19, 0))
    held = [(Hold.LIMIT, paris(2026, 11, 25, 15, 0))]
    assert not digest_due(policy, paris(2026, 11, 25, 18, 59), held)
    assert digest_due(policy, paris(2026, 11, 25, 19, 0), held)
    late = [(Hold.LIMIT, paris(2026, 11, 25, 20, 0))]
    assert not digest_due(policy, paris(2026, 11, 25, 23, 0), late)
    assert digest_due(policy, paris(2026, 11, 26, 19, 0), late)
    assert latest_digest_time(policy, paris(2026, 11, 26, 8, 0)) == paris(2026, 11, 25, 19, 0)


def test_nothing_is_due_while_paused_even_at_digest_time() -> None:
    policy = ChatPolicy(paused=True)
    assert not digest_due(
        policy, paris(2026, 11, 25, 19, 0), [(Hold.LIMIT, paris(2026, 11, 25, 8, 0))]
    )


def test_weekly_summary_on_monday_morning_once() -> None:
    policy = ChatPolicy()
    monday_9 = paris(2026, 11, 30, 9, 0)
    since = paris(2026, 11, 20, 12, 0)
    assert not weekly_summary_due(policy, monday_9 - timedelta(minutes=1), None, since)
    assert weekly_summary_due(policy, monday_9, None, since)
    assert not weekly_summary_due(policy, monday_9 + timedelta(hours=3), monday_9, since)
    assert weekly_summary_due(policy, monday_9 + timedelta(days=7), monday_9, since)
    assert not weekly_summary_due(policy, paris(2026, 12, 2, 12, 0), monday_9, since)
    # A chat that starts on a Wednesday waits for Monday, not for its first tick...
    assert not weekly_summary_due(policy, paris(2026, 12, 2, 12, 0), None, since)
    # ...and one that started on Monday at 10:00 waits for the next Monday.
    started = monday_9 + timedelta(hours=1)
    assert not weekly_summary_due(policy, started + timedelta(minutes=5), None, started)
    assert weekly_summary_due(policy, monday_9 + timedelta(days=7), None, started)


def test_a_weekly_digest_comes_on_its_day_only() -> None:
    """2026-11-30 is a Monday; a club's digest every Monday at 09:00, Paris time."""
    policy = ChatPolicy(digest_only=True, digest_time=time(9, 0), digest_weekday=0)
    held = [(Hold.DIGEST, paris(2026, 11, 26, 15, 0))]  # a Thursday
    assert not digest_due(policy, paris(2026, 11, 27, 9, 0), held)  # Friday 09:00
    assert not digest_due(policy, paris(2026, 11, 30, 8, 59), held)
    assert digest_due(policy, paris(2026, 11, 30, 9, 0), held)
    assert next_digest_time(policy, paris(2026, 11, 30, 9, 0)) == paris(2026, 12, 7, 9, 0)
    assert latest_digest_time(policy, paris(2026, 11, 29, 23, 0)) == paris(2026, 11, 23, 9, 0)
    # Across the end of summer time (Sunday 2026-10-25), still 09:00 local.
    sunday = ChatPolicy(digest_only=True, digest_time=time(9, 0), digest_weekday=6)
    assert next_digest_time(sunday, paris(2026, 10, 24, 12, 0)) == paris(2026, 10, 25, 9, 0)
