"""Database engines and sessions: one async engine per process, SQLite or PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine


class DatabaseURLError(ValueError):
    """A DATABASE_URL that jobrelay cannot use."""


_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg2"}


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseURLError(
            f"DATABASE_URL {url!r} is not a database URL; use sqlite:///jobrelay.db "
            "or postgresql://user:password@host:5432/name"
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the poller write while the sender reads; busy_timeout rides out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for DATABASE_URL, with SQLite tuned for one writer and many readers."""
    async_url = async_database_url(url)
    if async_url.get_backend_name() == "sqlite":
        engine = create_async_engine(async_url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(async_url, **kwargs)


SessionFactory = async_sessionmaker


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """Sessions that keep objects usable after commit (services return plain values anyway)."""
    return async_sessionmaker(engine, expire_on_commit=False)
