"""What the watch brought a chat in the last 7 local days: /stats and the Monday summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from bot.arguments import format_hhmm
from bot.policy import ChatPolicy, at_local, local
from storage.applications import Funnel
from storage.models import DeliveryStatus
from storage.stats import DeliveryFact

DAYS = 7


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One local day."""

    day: date
    pushed: int = 0
    held: int = 0
    digested: int = 0


@dataclass(frozen=True, slots=True)
class WeekStats:
    """Counts of the last 7 local days, oldest day first."""

    days: list[DayCounts]
    top_sources: list[tuple[str, int]] = field(default_factory=list)
    # What the chat did with them (saved, applied, interviews), and how many digests it got.
    funnel: Funnel = field(default_factory=Funnel)
    digests: int = 0

    @property
    def pushed(self) -> int:
        """Offers pushed on their own."""
        return sum(d.pushed for d in self.days)

    @property
    def held(self) -> int:
        """Offers held for a digest."""
        return sum(d.held for d in self.days)

    @property
    def digested(self) -> int:
        """Offers delivered inside a digest."""
        return sum(d.digested for d in self.days)

    @property
    def received(self) -> int:
        """Offers that reached the chat, pushed or in a digest."""
        return self.pushed + self.digested

    @property
    def empty(self) -> bool:
        """Nothing happened this week."""
        return not (self.pushed or self.held or self.digested or self.funnel.saved)

    def funnel_steps(self) -> list[int]:
        """Offers received → saved → applied → interviews, over the 7 days."""
        return [
            self.received,
            self.funnel.saved,
            self.funnel.applied,
            self.funnel.interviews,
        ]


def window_start(policy: ChatPolicy, now: datetime) -> datetime:
    """Local midnight six days ago: the start of the 7-day window."""
    return at_local(policy, local(policy, now) - timedelta(days=DAYS - 1), datetime.min.time())


def week_stats(
    policy: ChatPolicy,
    now: datetime,
    facts: list[DeliveryFact],
    funnel: Funnel | None = None,
    digests: int = 0,
) -> WeekStats:
    """Aggregate a chat's deliveries per local day of the last 7 days (with the funnel and
    the digest count of the same window, counted by the caller)."""
    today = local(policy, now).date()
    first = today - timedelta(days=DAYS - 1)
    pushed: Counter[date] = Counter()
    held: Counter[date] = Counter()
    digested: Counter[date] = Counter()
    sources: Counter[str] = Counter()

    def day_of(moment: datetime | None) -> date | None:
        if moment is None:
            return None
        day = local(policy, moment).date()
        return day if first <= day <= today else None

    for fact in facts:
        held_day = day_of(fact.held_at)
        if held_day is not None:
            held[held_day] += 1
        sent_day = day_of(fact.sent_at)
        if sent_day is not None and fact.status is DeliveryStatus.SENT:
            pushed[sent_day] += 1
            sources[fact.author] += 1
        elif sent_day is not None and fact.status is DeliveryStatus.DIGESTED:
            digested[sent_day] += 1
            sources[fact.author] += 1
    days = [
        DayCounts(day=d, pushed=pushed[d], held=held[d], digested=digested[d])
        for d in (first + timedelta(days=i) for i in range(DAYS))
    ]
    return WeekStats(
        days=days,
        top_sources=sources.most_common(5),
        funnel=funnel or Funnel(),
        digests=digests,
    )


def limit_hit_every_day(stats: WeekStats, policy: ChatPolicy) -> bool:
    """True when the daily limit was used up on each of the 7 days."""
    return policy.daily_limit > 0 and all(d.pushed >= policy.daily_limit for d in stats.days)


def weekly_payload(policy: ChatPolicy, stats: WeekStats) -> dict[str, Any]:
    """The Monday summary as plain JSON, rendered in the chat's language when sent."""
    return {
        "code": "weekly",
        "received": stats.received,
        "pushed": stats.pushed,
        "digested": stats.digested,
        "quiet": (
            [format_hhmm(policy.quiet_start), format_hhmm(policy.quiet_end)]
            if policy.quiet_start and policy.quiet_end
            else None
        ),
        "digest_only": policy.digest_only,
        "digest_time": format_hhmm(policy.digest_time),
        "funnel": stats.funnel_steps(),
        "digests": stats.digests,
        "limit": policy.daily_limit,
        "limit_every_day": limit_hit_every_day(stats, policy),
    }
