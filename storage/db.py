"""Database engines and sessions: one async engine per process, SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class DatabaseURLError(ValueError):
    """A DATABASE_URL that jobrelay cannot use."""


_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg2"}


# user:password@ (a password may hold '/', as SQLAlchemy reads it up to the '@'; the '//' after
# the scheme is not one), and a password given as a parameter (?password=...).
_PASSWORD_RE = re.compile(r"([^/@:\s]*):(?!//)[^@\s]*@")
_PASSWORD_PARAMETER_RE = re.compile(r"([?&]password=)[^&\s'\"]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`, fit for a message or a log."""
    return _PASSWORD_PARAMETER_RE.sub(r"\1***", _PASSWORD_RE.sub(r"\1:***@", url))


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise DatabaseURLError(
            f"DATABASE_URL {redact_url(url)!r} is not a database URL; use "
            "sqlite:///jobrelay.db or postgresql://user:password@host:5432/name"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        parsed = parsed.set(drivername="postgresql")
        backend = "postgresql"
    if backend not in _ASYNC_DRIVERS:
        raise DatabaseURLError(
            f"DATABASE_URL uses {backend!r}; jobrelay supports sqlite:// and postgresql:// URLs"
        )
    return parsed


def async_database_url(url: str) -> URL:
    """The URL with the async driver jobrelay uses for that backend (aiosqlite, asyncpg)."""
    parsed = _parse(url)
    return parsed.set(drivername=_ASYNC_DRIVERS[parsed.get_backend_name()])


def is_sqlite(url: str) -> bool:
    """True when the URL names an SQLite database."""
    return _parse(url).get_backend_name() == "sqlite"


# An execution option naming how an SQLite transaction begins (ignored on PostgreSQL).
SQLITE_BEGIN = "jobrelay_sqlite_begin"


def _sqlite_pragmas(busy_timeout: float) -> Any:
    def connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling is off: `_sqlite_begin` emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets the poller write while the sender reads; busy_timeout rides out another
        # process's write (this process's writers take turns in `Sessions.begin`).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return connect


def _sqlite_begin(connection: Connection) -> None:
    """BEGIN IMMEDIATE for a transaction that will write, plain BEGIN for one that reads.

    A deferred transaction that reads, then writes after another connection committed, gets
    "database is locked" at once: SQLite cannot upgrade its stale snapshot, and the busy
    timeout does not apply. A writer that takes the write lock first waits its turn instead.
    """
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def create_engine(url: str, *, sqlite_busy_timeout: float = 10.0, **kwargs: Any) -> AsyncEngine:
    """An async engine for DATABASE_URL, with SQLite tuned for one writer and many readers
    (`sqlite_busy_timeout`: how long a writer waits for another process's write, in s)."""
    async_url = async_database_url(url)
    if async_url.get_backend_name() == "sqlite":
        engine = create_async_engine(async_url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(sqlite_busy_timeout))
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(async_url, **kwargs)


class Sessions:
    """Sessions to read (`sessions()`) and transactions to write (`sessions.begin()`).

    A transaction opened with `begin()` is a writer. SQLite has one write lock for the whole
    file: this process's writers take turns on an asyncio lock first (a burst of 250 /follow
    commands queues here, however long, instead of outwaiting SQLite's busy timeout), then
    BEGIN IMMEDIATE takes the file's lock, waiting (up to the busy timeout) for a writer of
    another process, instead of failing as a deferred transaction that read first does.
    Sessions keep objects usable after commit (services return plain values anyway).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._reader = async_sessionmaker(engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}), expire_on_commit=False
        )
        self._engine = engine
        self._one_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._owner: asyncio.Task[object] | None = None

    def __call__(self) -> AsyncSession:
        """A session to read with (its transaction begins deferred, at the first query)."""
        return self._reader()

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed at the end of the block."""
        if self._one_writer is None:
            async with self._writer.begin() as session:
                yield session
            return
        task = asyncio.current_task()
        if self._one_writer.locked() and self._owner is task:
            raise RuntimeError("a write transaction inside another would wait for itself")
        async with self._one_writer:
            self._owner = task
            try:
                async with self._writer.begin() as session:
                    yield session
            finally:
                self._owner = None

    @contextlib.asynccontextmanager
    async def exclusive(self, key: int) -> AsyncIterator[bool]:
        """Whether this process, among all that share the database, has the work named by
        `key` for the block (False: another one has it now). On PostgreSQL a session-level
        advisory lock on a connection held for the block: a process that dies lets it go with
        its connection. An SQLite file serves one process: always True."""
        if self._one_writer is not None:
            yield True
            return
        async with self._engine.connect() as connection:
            held = bool(
                await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            )
            await connection.commit()
            try:
                yield held
            finally:
                # A connection lost meanwhile took the lock with it: nothing left to let go.
                if held and not connection.closed and not connection.invalidated:
                    with contextlib.suppress(DBAPIError):
                        await connection.execute(
                            text("SELECT pg_advisory_unlock(:key)"), {"key": key}
                        )
                        await connection.commit()


def create_session_factory(engine: AsyncEngine) -> Sessions:
    """The process's sessions on `engine`."""
    return Sessions(engine)
