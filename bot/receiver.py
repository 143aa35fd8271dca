"""Which process receives Telegram's updates when several share one PostgreSQL database.

Telegram answers 409 Conflict to a second `getUpdates` caller, so exactly one process may
receive updates; every other one polls X and sends. The receiver is whichever process holds a
PostgreSQL advisory lock on a connection it keeps open: when that process dies its connection
closes, the lock goes with it, and another process takes over within a few seconds. So the
Procfile's `worker` can be scaled like any other process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# The advisory lock key of the update receiver ("jobu").
RECEIVER_LOCK = 0x6A6F6275
# How often a waiting process tries to take over, and the holder checks its connection.
CHECK_EVERY = 5.0
FIRST_RETRY = 0.25


class UpdateReceiver:
    """Runs `start` once this process holds the receiver lock, `stop` when it loses it or stops."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
        check_every: float = CHECK_EVERY,
    ) -> None:
        self._engine = engine
        self._start = start
        self._stop = stop
        self._check_every = check_every
        self.receiving = False

    async def run(self, stopping: asyncio.Event) -> None:
        """Contend for the lock until `stopping` is set; receive updates while holding it."""
        told_waiting = False
        delay = FIRST_RETRY
        while not stopping.is_set():
            try:
                async with self._engine.connect() as connection:
                    if await self._try_lock(connection):
                        delay = FIRST_RETRY
                        told_waiting = False
                        await self._hold(connection, stopping)
                    elif not told_waiting:
                        log.info(
                            "another process receives Telegram's updates; this one polls X and "
                            "sends, and takes over if that one stops"
                        )
                        told_waiting = True
            except (DBAPIError, OSError) as exc:
                log.warning("the update receiver lost its database connection (%s)", exc)
            except Exception:
                # E.g. Telegram unreachable when polling starts: let another process (or
                # this one, a moment later) try.
                log.exception("receiving Telegram's updates failed; trying again")
            # A process just restarted may find its predecessor's lock not yet released:
            # retry soon, then every `check_every` seconds.
            await _wait(stopping, delay)
            delay = min(delay * 2, self._check_every)

    async def _try_lock(self, connection: AsyncConnection) -> bool:
        taken = await connection.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": RECEIVER_LOCK}
        )
        await connection.commit()
        return bool(taken)

    async def _hold(self, connection: AsyncConnection, stopping: asyncio.Event) -> None:
        """Receive updates while the lock's connection answers; release the lock after."""
        log.info("this process receives Telegram's updates")
        try:
            self.receiving = True
            await self._start()
            while not await _wait(stopping, self._check_every):
                await connection.execute(text("SELECT 1"))
                await connection.commit()
        finally:
            self.receiving = False
            await self._stop()
            # Closed, not returned to the pool: the lock goes with this connection, whatever
            # state it is in.
            await connection.invalidate()


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for `event`; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()
