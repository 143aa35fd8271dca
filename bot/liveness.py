"""Which processes are alive, so that what a dead one held is taken over within seconds.

Several `python -m bot run` processes may share one PostgreSQL database. Each registers a
`workers` row and beats in it every few seconds; every lease it takes (outbox rows, poll
groups, feeds) records its id. A process whose beat is older than WORKER_DEAD_AFTER_SECONDS
is dead: any live one releases its leases (and kicks its own sender and pollers), instead of
the rows and polls waiting a minute or five for the leases to run out.

Why a heartbeat row rather than a session-level advisory lock (which frees the instant a
connection dies): a lock belongs to a connection, so it needs one connection held open per
process for its whole life, and a pgbouncer in transaction mode hands session state to
whichever client comes next; a row updated in a short transaction works through any pooler,
and "silent for 10 s" is checked on the database's own clock, one clock for every host. The
receiver election (bot.receiver) keeps its lock: there, a held connection is the point.

A process cut off from the database for a while (the database restarting, a network
partition) stops beating like a dead one. It only releases others' leases after it has
itself beaten without a gap for WORKER_DEAD_AFTER_SECONDS, so the live processes, cut off
with it, have had the same time to beat again; one found dead while it was alive registers
again, and its rows taken over meanwhile are not sent by it (bot.delivery's lost rows).

A process that is alive but cannot beat (its database connections slow or exhausted, its
event loop held up) looks dead to the others just the same, and they send the rows it is
still sending: a copy of each. So a process fences itself: its outbox sends stop
(`fresh()` is False, checked as each request leaves, bot.send_gate) once its last
successful beat started more than half of WORKER_DEAD_AFTER_SECONDS ago, well before the
others, on the database's clock, can find its beat older than the whole period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta

from bot.clock import Clock
from storage import leases
from storage.db import Sessions

log = logging.getLogger(__name__)

# A lease's owner as the claims see it: the worker's id, or None (SQLite: one process).
Owner = Callable[[], int | None]


def no_owner() -> int | None:
    """The owner of a lease taken where only one process runs (SQLite)."""
    return None


class Liveness:
    """This process's `workers` row: registered, beaten, and the dead ones' leases released."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        clock: Clock,
        dead_after_seconds: float,
        on_takeover: Callable[[], None] = lambda: None,
    ) -> None:
        #: Called after leases of a dead process were released (serve() kicks its workers).
        self.on_takeover = on_takeover
        self._sessions = sessions
        self._clock = clock
        self._dead_after = timedelta(seconds=dead_after_seconds)
        # Four beats per period: one or two lost beats do not make a live process dead.
        self._every = dead_after_seconds / 4
        self._worker_id: int | None = None
        self._healthy_since: float | None = None  # time.monotonic() of the first beat in a row
        # time.monotonic() at the start of the last beat that succeeded (its row's beat_at,
        # set by the database during that beat, is later still).
        self._beaten_at: float | None = None

    def owner(self) -> int | None:
        """This process's worker id (None until registered)."""
        return self._worker_id

    def fresh(self) -> bool:
        """Whether this process may send: its last successful beat started less than half a
        period ago (the others find it dead only after a whole period without a beat)."""
        beaten_at = self._beaten_at
        return beaten_at is not None and (
            time.monotonic() - beaten_at < self._dead_after.total_seconds() / 2
        )

    async def start(self) -> None:
        """Register before any lease is taken (a lease without an owner waits until it runs out)."""
        await self._beat_once()

    async def run(self, stop: asyncio.Event) -> None:
        """Beat, and release the dead's leases, until `stop` (set once this process holds
        nothing any more); then leave cleanly."""
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._every)
                if not stop.is_set():
                    await self._beat_once()
        finally:
            await self._leave()

    async def _beat_once(self) -> None:
        try:
            await self._tick()
        except Exception as exc:
            self._healthy_since = None
            log.warning("the liveness beat failed (%s); trying again", exc)

    async def _tick(self) -> None:
        """One beat (a registration first, or again when the others found this one dead),
        then, once this process has beaten for a whole period, the dead's leases."""
        started = time.monotonic()
        async with self._sessions.begin() as session:
            alive = self._worker_id is not None and await leases.beat(
                session, worker_id=self._worker_id
            )
            if not alive:
                if self._worker_id is not None:
                    log.warning(
                        "the other processes found this one silent too long (worker %d) and "
                        "took its leases over; registering again",
                        self._worker_id,
                    )
                self._worker_id = await leases.register(
                    session, host=socket.gethostname(), pid=os.getpid()
                )
        self._beaten_at = started
        if self._healthy_since is None:
            self._healthy_since = time.monotonic()
        if time.monotonic() - self._healthy_since < self._dead_after.total_seconds():
            return
        async with self._sessions.begin() as session:
            released = await leases.release_dead(
                session, dead_after=self._dead_after, now=self._clock.now()
            )
        if released:
            log.info("took over %d lease(s) of a process that stopped", released)
            self.on_takeover()

    async def _leave(self) -> None:
        """Remove this process's row: what it still holds is the others' at their next check."""
        if self._worker_id is None:
            return
        try:
            async with self._sessions.begin() as session:
                await leases.unregister(session, worker_id=self._worker_id)
        except Exception as exc:
            log.warning("could not remove this process's liveness record (%s)", exc)
        self._worker_id = None
