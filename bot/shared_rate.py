"""One send rate for the whole bot, shared through PostgreSQL by every process.

Telegram's ~30 messages a second is per bot token: two processes each metering 30 a second
sent up to 58 in one second (issue #16). On PostgreSQL every request that names a chat asks
one row for its turn right before it leaves: the row grants it when `next_slot` has come and
moves `next_slot` 1/SEND_RATE_PER_SECOND later, or says how long to wait. A turn is granted
at the moment of asking, never booked ahead: a process that wakes late cannot bunch its
send with the next one's (slots booked in advance let a late sleeper and an on-time one go
together), so sends are spaced by the database's clock, one clock for every host.

A request costs one small UPDATE (about a millisecond on a local server) and never waits for
a lock longer than another's UPDATE. When the database does not answer, sends fall back on
the process's own limiter (the AIORateLimiter, at the same rate) rather than stopping: a
429 is handled, a stopped bot is not. "Does not answer" includes a database that hangs (a
stopped host, a partition, a pool that hands out no connection): an ask is given up after
ASK_SECONDS, so every send of the bot does not wait for as long as the hang lasts.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

# The row every process of the bot shares (one bot token per database).
BOT = "telegram"
# The shortest wait between two asks (a wait the database rounds to zero, asked again).
MIN_WAIT = 0.002
# After a failure the database is left alone this long (the process's limiter meters alone).
FALLBACK_SECONDS = 5.0
# An ask takes a millisecond or so; one with no answer after this long is a failure.
ASK_SECONDS = 2.0
# Added to every gap: a send reaches Telegram a few milliseconds after its grant, more on a
# loaded host, and at 29.5 a second 30 grants in a row are only 17 ms short of a second; with
# 2 ms more each, a send may be 75 ms late before a 31st falls into one second (one 429 in
# 3,000 sends of three workers without it, `make bench`).
GAP_MARGIN = 0.002

# The clock is read once: the grant and the next slot are the same instant. `granted_at`
# tells a grant apart (it is set to this instant only then); otherwise the wait is returned.
_ASK = text(
    """
    WITH clock AS (SELECT clock_timestamp() AS t)
    INSERT INTO send_pace (name, next_slot, granted_at)
    SELECT :name, clock.t + make_interval(secs => :gap), clock.t FROM clock
    ON CONFLICT (name) DO UPDATE SET
        next_slot = CASE WHEN send_pace.next_slot <= (SELECT t FROM clock)
                         THEN (SELECT t FROM clock) + make_interval(secs => :gap)
                         ELSE send_pace.next_slot END,
        granted_at = CASE WHEN send_pace.next_slot <= (SELECT t FROM clock)
                          THEN (SELECT t FROM clock)
                          ELSE send_pace.granted_at END
    RETURNING granted_at = (SELECT t FROM clock) AS granted,
              extract(epoch FROM next_slot - (SELECT t FROM clock)) AS wait
    """
)


class SharedRate:
    """Grants each send its turn at the bot's rate, across every process on the database."""

    def __init__(self, engine: AsyncEngine, *, rate_per_second: float, name: str = BOT) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._gap = 1.0 / rate_per_second + GAP_MARGIN
        self._name = name
        self._failed_at: float | None = None
        # An ask given up while it hung: left to end on its own (cancelling it would leave
        # its connection half-used), and no other is started meanwhile.
        self._hung: asyncio.Task[float | None] | None = None
        self.granted = 0

    async def turn(self) -> None:
        """Return when this process may send one request (at once, or after the others')."""
        if self._failed_at is not None:
            if time.monotonic() - self._failed_at < FALLBACK_SECONDS:
                return
            self._failed_at = None
        while True:
            try:
                wait = await self._ask_bounded()
            except Exception as exc:
                self._failed_at = time.monotonic()
                log.warning(
                    "the shared send rate could not be read (%s); this process meters its "
                    "sends alone for %.0f s",
                    exc,
                    FALLBACK_SECONDS,
                )
                return
            if wait is None:
                self.granted += 1
                return
            await asyncio.sleep(max(wait, MIN_WAIT))

    async def _ask_bounded(self) -> float | None:
        """`_ask`, given up (TimeoutError) when it has no answer within ASK_SECONDS, or while
        an earlier one that hung has not ended."""
        if self._hung is not None:
            if not self._hung.done():
                raise TimeoutError("an earlier ask has not been answered yet")
            self._hung = None
        ask = asyncio.ensure_future(self._ask())
        done, _ = await asyncio.wait({ask}, timeout=ASK_SECONDS)
        if not done:
            self._hung = ask
            ask.add_done_callback(_forget)
            raise TimeoutError(f"no answer within {ASK_SECONDS:g} s")
        return ask.result()

    async def _ask(self) -> float | None:
        """None when the turn is granted, else how long until the next slot (s)."""
        async with self._engine.connect() as connection:
            row = (await connection.execute(_ASK, {"name": self._name, "gap": self._gap})).one()
        if row.granted:
            return None
        return float(row.wait)


def _forget(ask: asyncio.Task[float | None]) -> None:
    """Retrieve a given-up ask's outcome (an error in it was reported as the time-out)."""
    if not ask.cancelled():
        ask.exception()
