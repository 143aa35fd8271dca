"""The X read budget: how fast to poll so a month's posts stay within it (pure functions).

X bills every post it returns (and every account looked up); `X_MONTHLY_POST_READ_BUDGET` is
what the operator accepts to pay for per UTC month. Polling slows down when reads run ahead of
the month's pace, stops at the budget, and resumes on the first of the next month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

PRICE_PER_POST = 0.005  # US dollars, pay-per-use since February 2026
PRICE_PER_USER = 0.010
WARN_AT = 0.8  # the operator is told once when 80% of the budget is read
MAX_STRETCH = 24.0  # polls never get more than 24 times rarer than POLL_INTERVAL_SECONDS


def month_key(now: datetime) -> str:
    """`2026-11` for any instant of November 2026 (UTC)."""
    return now.astimezone(UTC).strftime("%Y-%m")


def month_start(now: datetime) -> datetime:
    """The first instant of `now`'s UTC month."""
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(now: datetime) -> datetime:
    """The first instant of the next UTC month."""
    start = month_start(now)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def month_elapsed(now: datetime) -> float:
    """How much of the UTC month has passed, from 0 to 1."""
    start, end = month_start(now), next_month(now)
    return (now.astimezone(UTC) - start) / (end - start)


@dataclass(frozen=True, slots=True)
class Outlook:
    """Where the month's reads stand against the budget."""

    used: int
    budget: int
    stretch: float  # multiply the poll interval by this
    projected: int  # posts read by the month's end at this pace

    @property
    def exhausted(self) -> bool:
        """No more X reads this month."""
        return self.used >= self.budget

    @property
    def near(self) -> bool:
        """Time to warn the operator."""
        return self.used >= WARN_AT * self.budget


def outlook(used: int, budget: int, now: datetime) -> Outlook:
    """How to poll with `used` posts read this month out of `budget`.

    While reads keep to the month's pace (used / budget <= share of the month elapsed), polls
    keep their interval; ahead of it, the interval stretches by how far ahead, so the budget
    lasts the month instead of running out on the 20th.
    """
    elapsed = max(month_elapsed(now), 1e-6)
    projected = int(used / elapsed)
    if budget <= 0:
        return Outlook(used, budget, MAX_STRETCH, projected)
    share = used / budget
    stretch = min(MAX_STRETCH, max(1.0, share / elapsed)) if share > elapsed else 1.0
    return Outlook(used, budget, stretch, projected)
