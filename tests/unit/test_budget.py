"""The X read budget: month boundaries, pacing and the stop (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.budget import MAX_STRETCH, month_elapsed, month_key, next_month, outlook


def test_months_are_utc_and_december_rolls_over() -> None:
    assert month_key(datetime(2026, 11, 30, 23, 59, tzinfo=UTC)) == "2026-11"
    assert next_month(datetime(2026, 12, 31, 12, 0, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_month(datetime(2026, 11, 15, tzinfo=UTC)) == datetime(2026, 12, 1, tzinfo=UTC)
    assert month_elapsed(datetime(2026, 11, 16, tzinfo=UTC)) == 0.5


def test_polls_keep_their_pace_while_reads_keep_to_the_month() -> None:
    mid = datetime(2026, 11, 16, tzinfo=UTC)  # half the month gone
    assert outlook(4_000, 10_000, mid).stretch == 1.0
    assert outlook(4_000, 10_000, mid).projected == 8_000
    ahead = outlook(8_000, 10_000, mid)  # 80% read at half the month: 1.6 times slower
    assert ahead.stretch == 1.6 and ahead.near and not ahead.exhausted
    assert not outlook(7_500, 10_000, mid).near  # the operator is told from 80%
    assert outlook(10_000, 10_000, mid).exhausted
    early = outlook(9_000, 10_000, datetime(2026, 11, 1, 1, tzinfo=UTC))
    assert early.stretch == MAX_STRETCH  # never stops polling altogether before the budget
    assert outlook(0, 0, mid).exhausted  # a budget of 0 reads nothing
