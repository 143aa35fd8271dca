"""Each Telegram update is handled once, even when Telegram delivers it again.

Telegram gives a receiver the updates it has not confirmed yet (confirming is the offset of
the next `getUpdates`): a receiver that takes over from one that died (several processes on
PostgreSQL), or a restart, may be given updates that were already handled. A press on
/categories or /settings "+" would then count twice. The first step of handling an update
records its id in the database; an update whose id is there already is dropped.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.clock import Clock
from storage import updates
from storage.db import Sessions

log = logging.getLogger(__name__)

# Telegram keeps an update at most 24 hours: an older one never comes again.
KEEP = timedelta(days=1)
PRUNE_EVERY = timedelta(hours=1)


class HandledUpdates:
    """The updates some process began to handle, in the database (shared by processes)."""

    def __init__(self, *, sessions: Sessions, clock: Clock, keep: timedelta = KEEP) -> None:
        self._sessions = sessions
        self._clock = clock
        self._keep = keep
        self._next_prune: datetime | None = None

    async def first_time(self, update_id: int) -> bool:
        """Claim an update for handling; False when it was handled already (drop it). About
        once an hour, the claim also forgets the updates older than a day."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            new = await updates.claim(session, update_id=update_id, now=now)
            if self._next_prune is None or now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY
                forgotten = await updates.forget_before(session, now - self._keep)
                if forgotten:
                    log.debug("forgot %d handled update(s) older than %s", forgotten, self._keep)
        if not new:
            log.info("update %d was delivered again; it was handled already", update_id)
        return new
