"""Fixtures: a real SQLite file and a real PostgreSQL 15 server started for the test session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from storage.migrate import upgrade_async
from tests.pgserver import PostgresServer, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """Start PostgreSQL with initdb + pg_ctl in a temporary directory (as `postgres` when root)."""
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer | None
) -> AsyncIterator[str]:
    """A migrated, empty database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobrelay.db'}"
        await upgrade_async(url)
        yield url
        return
    if postgres_server is None:
        pytest.skip("PostgreSQL is not installed here (no initdb/pg_ctl found); SQLite only")
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server.admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = postgres_server.url(name)
    await upgrade_async(url)
    yield url
    admin = await asyncpg.connect(postgres_server.admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
