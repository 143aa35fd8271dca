"""How many commands one person may send: COMMANDS_PER_MINUTE, over a sliding minute.

The bot is public: a person (or a script) sending hundreds of commands must not make the bot
write to its database, call X or answer hundreds of times. Past the limit, one "slow down" a
minute, and the rest is ignored; operators (ADMIN_USER_IDS) are exempt.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import Enum

WINDOW_SECONDS = 60.0
MAX_TRACKED = 50_000  # people remembered at once; a sweep forgets the quiet ones


class Verdict(Enum):
    """What to do with one update."""

    SERVE = "serve"
    WARN = "warn"  # over the limit: say so (at most once a minute), do nothing else
    IGNORE = "ignore"


class Throttle:
    """Counts each person's updates over the last minute."""

    def __init__(
        self,
        per_minute: int,
        exempt: frozenset[int] = frozenset(),
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = per_minute
        self._exempt = exempt
        self._now = now
        self._seen: dict[int, deque[float]] = {}
        self._warned: dict[int, float] = {}

    def check(self, user_id: int) -> Verdict:
        """Count one update of this person and say whether to serve it."""
        if user_id in self._exempt:
            return Verdict.SERVE
        now = self._now()
        if len(self._seen) >= MAX_TRACKED:
            self._sweep(now)
        times = self._seen.setdefault(user_id, deque())
        while times and now - times[0] >= WINDOW_SECONDS:
            times.popleft()
        if len(times) < self._limit:
            times.append(now)
            return Verdict.SERVE
        warned = self._warned.get(user_id)
        if warned is None or now - warned >= WINDOW_SECONDS:
            self._warned[user_id] = now
            return Verdict.WARN
        return Verdict.IGNORE

    def _sweep(self, now: float) -> None:
        for user_id in [u for u, t in self._seen.items() if not t or now - t[-1] >= WINDOW_SECONDS]:
            del self._seen[user_id]
            self._warned.pop(user_id, None)
