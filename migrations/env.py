"""Alembic environment: runs every revision on the async engine jobrelay itself uses."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy.engine import Connection

from storage.db import create_engine
from storage.models import Base

target_metadata = Base.metadata


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    return url or "sqlite:///jobrelay.db"


def _note_applied(
    ctx: MigrationContext,
    step: MigrationInfo,
    heads: Collection[Any],
    run_args: Mapping[str, Any],
) -> None:
    """Tell storage.migrate which revisions this run applied (it reports them in one line)."""
    context.config.attributes.setdefault("applied", []).append(step.up_revision_id)


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # Batch migrations rebuild SQLite tables (DROP + copy); with foreign keys on, dropping
        # a parent table would cascade-delete its children's rows. SQLite ignores this pragma
        # inside a transaction, so it goes to the driver before the migration's BEGIN.
        cursor = connection.connection.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things in place
        compare_type=True,
        on_version_apply=_note_applied,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
