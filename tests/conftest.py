"""Fixtures: a real SQLite file and a real PostgreSQL 15 server, shared by every test worker.

`make test` runs the suite in parallel (pytest-xdist). The controlling process starts one
PostgreSQL server for the whole run and migrates two template databases once: a PostgreSQL
database that each test clones with `CREATE DATABASE … TEMPLATE` and an SQLite file that each
test copies. A test's database is therefore exactly what `alembic upgrade head` makes, for the
price of a file copy instead of eight migrations. Each worker has its own temporary
directories (pytest's `tmp_path` is per worker) and every server binds port 0, so nothing two
workers do can collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from storage.migrate import upgrade_async
from tests.pgserver import PostgresServer, running_postgres

TEMPLATE_DATABASE = "jobrelay_template"
SQLITE_TEMPLATE = "template.db"


class SharedDatabases:
    """The run's PostgreSQL server and migrated templates, owned by the controlling process."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.server: PostgresServer | None = None
        self.directory = Path(tempfile.mkdtemp(prefix="jobrelay-templates-"))
        self.timings: dict[str, float] = {}

    def start(self) -> None:
        started = time.monotonic()
        self.server = self._stack.enter_context(running_postgres())
        self.timings["postgresql start"] = time.monotonic() - started
        started = time.monotonic()
        asyncio.run(self._migrate_templates())
        self.timings["template migrations"] = time.monotonic() - started

    async def _migrate_templates(self) -> None:
        # One after the other: Alembic's `context` is a module-level proxy, not thread-safe.
        await upgrade_async(f"sqlite:///{self.directory / SQLITE_TEMPLATE}")
        if self.server is not None:
            admin = await asyncpg.connect(self.server.admin_dsn)
            try:
                await admin.execute(f'CREATE DATABASE "{TEMPLATE_DATABASE}"')
            finally:
                await admin.close()
            await upgrade_async(self.server.url(TEMPLATE_DATABASE))
        # The engine is disposed after migrating: SQLite has folded its WAL into the file.
        assert not (self.directory / f"{SQLITE_TEMPLATE}-wal").exists()

    def stop(self) -> None:
        self._stack.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def as_worker_input(self) -> dict[str, Any]:
        return {
            "jobrelay_pg_port": self.server.port if self.server else None,
            "jobrelay_templates": str(self.directory),
        }


class _XdistHooks:
    """Hands the shared databases to every xdist worker (registered only with xdist)."""

    def __init__(self, shared: SharedDatabases) -> None:
        self.shared = shared

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput.update(self.shared.as_worker_input())


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller has started everything
    if config.option.collectonly:
        return
    shared = SharedDatabases()
    shared.start()
    config.stash[_SHARED] = shared
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(shared), "jobrelay-shared-databases")


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(_SHARED, None)
    if shared is not None:
        shared.stop()


def pytest_report_header(config: pytest.Config) -> list[str]:
    shared = config.stash.get(_SHARED, None)
    if shared is None:
        return []
    timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in shared.timings.items())
    where = f"PostgreSQL on 127.0.0.1:{shared.server.port}" if shared.server else "no PostgreSQL"
    return [f"jobrelay: {where}; {timings}"]


_SHARED = pytest.StashKey[SharedDatabases]()


def _worker_input(config: pytest.Config) -> dict[str, Any]:
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None:
        return dict(worker_input)
    shared = config.stash.get(_SHARED, None)
    if shared is None:  # --collect-only, or pytest_configure did not run
        shared = SharedDatabases()
        shared.start()
        config.stash[_SHARED] = shared
    return shared.as_worker_input()


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> PostgresServer | None:
    """The run's PostgreSQL server on 127.0.0.1 (None when PostgreSQL is not installed)."""
    port = _worker_input(pytestconfig)["jobrelay_pg_port"]
    return PostgresServer(port=port) if port is not None else None


@pytest.fixture(scope="session")
def sqlite_template(pytestconfig: pytest.Config) -> Path:
    """An SQLite file migrated to head once for the run; tests work on copies."""
    return Path(_worker_input(pytestconfig)["jobrelay_templates"]) / SQLITE_TEMPLATE


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    postgres_server: PostgresServer | None,
    sqlite_template: Path,
) -> AsyncIterator[str]:
    """A migrated, empty database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "jobrelay.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if postgres_server is None:
        pytest.skip("PostgreSQL is not installed here (no initdb/pg_ctl found); SQLite only")
    name = f"test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_server.admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DATABASE}"')
    finally:
        await admin.close()
    yield postgres_server.url(name)
    admin = await asyncpg.connect(postgres_server.admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


# The slowest files first, so that the parallel run does not end waiting on one long test
# that started last (pytest-xdist hands tests out in collection order).
_FIRST = ("tests/e2e/test_faults.py", "tests/e2e/", "tests/test_")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return next((i for i, prefix in enumerate(_FIRST) if path.startswith(prefix)), len(_FIRST))

    items.sort(key=rank)  # stable: the order within each rank is kept
