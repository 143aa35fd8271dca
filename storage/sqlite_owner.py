"""One bot process per SQLite file, enforced rather than assumed.

On SQLite the bot takes every lease it finds at start as a previous run's (storage.leases
.release_all): there is no liveness record to tell a dead process from a live one. A second
`python -m bot run` on the same file (the Procfile's `web` and `worker` started together by
honcho or foreman on one host, a new container started before the old one stopped) would
free the live one's leases, send its rows a second time and long-poll Telegram beside it.
So a process holds an exclusive lock on `<database>.lock` for as long as it runs; the kernel
drops it when the process ends, kill -9 included, so a restart is never kept waiting by a
dead process. (A separate file, not the database: SQLite's own POSIX locks on the database
are dropped when any descriptor of it is closed in the process.)
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from storage.db import async_database_url

# A process being stopped finishes the sends in flight first: a successor started meanwhile
# waits this long for it before giving up.
WAIT_SECONDS = 10.0
_RETRY_SECONDS = 0.25


class SQLiteInUse(Exception):
    """Another live process runs the bot on this SQLite file."""


def lock_path(url: str) -> Path | None:
    """The lock file of an SQLite DATABASE_URL (None for an in-memory database)."""
    database = async_database_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).with_name(Path(database).name + ".lock")


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.asynccontextmanager
async def sole_process(url: str, *, wait_seconds: float = WAIT_SECONDS) -> AsyncIterator[None]:
    """Hold the SQLite file's lock for the block; SQLiteInUse if another process still holds
    it after `wait_seconds`."""
    path = lock_path(url)
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_seconds
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                raise SQLiteInUse(
                    f"another jobrelay process (pid {holder}) runs on the SQLite file "
                    f"{path.with_suffix('')}: an SQLite file serves one process (use "
                    "PostgreSQL to run several)"
                )
            await asyncio.sleep(_RETRY_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # (the lock goes with the descriptor)
