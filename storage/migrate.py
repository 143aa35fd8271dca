"""Schema migrations with Alembic: upgrade to head, and tell whether a database is behind."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from storage.db import create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for this checkout's migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The newest revision this code knows."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade did: the revisions it applied (oldest first) and where the schema is."""

    applied: tuple[str, ...]
    revision: str | None

    def describe(self) -> str:
        """`schema is up to date (revision X)` or `schema migrated to revision X: N migrations
        applied`."""
        if not self.applied:
            return f"schema is up to date (revision {self.revision})"
        count = len(self.applied)
        return (
            f"schema migrated to revision {self.revision}: "
            f"{count} migration{'s' if count > 1 else ''} applied"
        )


def upgrade(database_url: str) -> Upgrade:
    """Bring the database schema to the newest revision (blocking; no running event loop).
    Alembic's own lines (one per revision) are logged at INFO by `alembic`; callers report
    the returned `Upgrade` in one line instead."""
    config = alembic_config(database_url)
    command.upgrade(config, "head")
    applied = tuple(str(r) for r in config.attributes.get("applied", []))
    return Upgrade(applied=applied, revision=head_revision())


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or None for an empty database."""

    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_read)
    finally:
        await engine.dispose()


async def upgrade_async(database_url: str) -> Upgrade:
    """`upgrade` from async code: Alembic's env runs its own event loop, so use a thread."""
    return await asyncio.to_thread(upgrade, database_url)
