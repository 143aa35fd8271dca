"""/healthz: whether this process is doing its job: the database answers and the sender and
pollers keep ticking.

A load balancer or process manager asks often, and so may a stranger: one check runs at a time
and its verdict is reused for CHECK_CACHE_SECONDS, so a flood of requests costs one `SELECT 1`
a second at most. The reason given is one line with no detail an outsider could use (no
address, no driver message); the log has the detail, once per change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.single_flight import SingleFlight
from storage import figures
from storage.db import Sessions, redact_url

log = logging.getLogger(__name__)

CHECK_CACHE_SECONDS = 1.0
PING_SECONDS = 3.0
# A loop that neither started nor ended a run for this long has stopped (its ticks come every
# 0.2-5 s): a hung run or a dead scheduler. Generous, so that a slow X or a long poll never
# takes a working process out of a load balancer.
STALE_AFTER_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class LoopState:
    """What /healthz knows of one background loop (times are time.monotonic())."""

    name: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress_at: float | None = None  # e.g. the sender's last message accepted by Telegram


def stalled(loops: Sequence[LoopState], now: float, stale_after: float) -> str | None:
    """The first loop with no sign of life for `stale_after` seconds, as a reason; None when
    every loop ticked recently (a loop that never ran counts from its creation)."""
    for loop in loops:
        signs = [loop.created_at, loop.started_at, loop.finished_at, loop.progress_at]
        last = max(s for s in signs if s is not None)
        if now - last > stale_after:
            return f"the {loop.name} has not ticked for {now - last:.0f} s"
    return None


class Health:
    """The verdict /healthz gives: None when healthy, else a one-line reason."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        loops: Sequence[tuple[str, SingleFlight]],
        progress: Callable[[str], float | None] = lambda _name: None,
        stale_after: float = STALE_AFTER_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._loops = list(loops)
        self._progress = progress
        self._stale_after = stale_after
        self._lock = asyncio.Lock()
        self._verdict: str | None = "starting"
        self._checked_until = 0.0
        self._last_logged: str | None = "starting"
        # Set once the bot runs (until then, and from the stop on, the verdict is the phase).
        self.phase: str | None = "starting"

    async def verdict(self) -> str | None:
        """None when healthy, else why not (cached for CHECK_CACHE_SECONDS)."""
        if self.phase is not None:
            return self.phase
        if time.monotonic() < self._checked_until:
            return self._verdict
        async with self._lock:
            if time.monotonic() >= self._checked_until:
                self._verdict, detail = await self._check()
                self._checked_until = time.monotonic() + CHECK_CACHE_SECONDS
                self._log_change(self._verdict, detail)
            return self._verdict

    async def _check(self) -> tuple[str | None, str]:
        """The verdict, and a detail for the log only."""
        try:
            async with asyncio.timeout(PING_SECONDS), self._sessions() as session:
                await figures.ping(session)
        except TimeoutError:
            return "the database does not answer", f"no answer within {PING_SECONDS:.0f} s"
        except Exception as exc:
            detail = redact_url(f"{type(exc).__name__}: {exc}".splitlines()[0])
            return "the database does not answer", detail
        states = [
            LoopState(
                name=name,
                created_at=flight.created_at,
                started_at=flight.started_at,
                finished_at=flight.finished_at,
                progress_at=self._progress(name),
            )
            for name, flight in self._loops
        ]
        return stalled(states, time.monotonic(), self._stale_after), ""

    def _log_change(self, verdict: str | None, detail: str) -> None:
        """One line when the verdict changes (not one per request)."""
        if verdict == self._last_logged:
            return
        self._last_logged = verdict
        if verdict is None:
            log.info("healthy")
        else:
            log.warning("unhealthy: %s%s", verdict, f" ({detail})" if detail else "")
