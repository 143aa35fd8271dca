"""Run a coroutine in the background at most once at a time (for scheduler ticks)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class SingleFlight:
    """`kick()` starts the work unless it is running; a kick during a run asks for one more."""

    def __init__(self, name: str, work: Callable[[], Awaitable[object]]) -> None:
        self._name = name
        self._work = work
        self._task: asyncio.Task[None] | None = None
        self._again = False
        # When a run last started and ended (time.monotonic(), whatever its outcome): /healthz
        # tells a loop that stopped ticking (a hung run, a dead scheduler) from a busy one.
        self.created_at = time.monotonic()
        self.started_at: float | None = None
        self.finished_at: float | None = None

    @property
    def name(self) -> str:
        """What the flight runs (for logs and /healthz)."""
        return self._name

    @property
    def running(self) -> bool:
        """Whether a run is under way."""
        return self._task is not None and not self._task.done()

    def kick(self) -> None:
        """Ask for a run now (or right after the current one)."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self._name)

    async def _loop(self) -> None:
        while True:
            self._again = False
            self.started_at = time.monotonic()
            try:
                await self._work()
            except Exception:
                log.exception("%s failed; it will run again at the next tick", self._name)
            finally:
                self.finished_at = time.monotonic()
            if not self._again:
                return

    async def wait_idle(self) -> None:
        """Wait for the current run to finish (used at shutdown)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
