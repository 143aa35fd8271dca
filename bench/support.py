"""What the engine benchmarks share: fresh databases on SQLite and PostgreSQL, set-based seeding,
percentiles, peak memory, and figures printed next to their targets.

PostgreSQL: the server `tests/pgserver.py` starts for the tests (initdb + pg_ctl in a temporary
directory on 127.0.0.1), here with PostgreSQL's durable defaults (fsync on). `make bench`
starts one and hands its admin DSN to every run in BENCH_POSTGRES_DSN; a benchmark run alone
starts its own. Each run gets a new database copied from a migrated template.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr
from sqlalchemy import Integer, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import serve
from bot.clock import Clock
from bot.config import load_settings
from bot.sandbox.telegram_api import TelegramStandIn
from bot.sandbox.x_api import XStandIn
from storage.db import Sessions, create_engine, create_session_factory
from storage.migrate import upgrade_async
from storage.models import Chat, Source, Subscription, UTCDateTime
from storage.sql import is_postgresql
from tests.pgserver import running_postgres

BACKENDS = ("sqlite", "postgresql")
POSTGRES_DSN_ENV = "BENCH_POSTGRES_DSN"
CHAT_BASE = 1_000_000  # private chat ids: CHAT_BASE + n
TEMPLATE = "bench_template"

# ----------------------------------------------------------------------------- databases


@contextlib.contextmanager
def _postgres_admin() -> Iterator[str]:
    """The admin DSN of a PostgreSQL server: the shared one, or one started now."""
    shared = os.environ.get(POSTGRES_DSN_ENV)
    if shared:
        yield shared
        return
    with running_postgres(durable=True) as server:
        if server is None:
            raise SystemExit("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
        yield server.admin_dsn


async def _ensure_template(admin_dsn: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", TEMPLATE)
        if exists:
            return
        building = f"{TEMPLATE}_{uuid.uuid4().hex[:8]}"
        await connection.execute(f'CREATE DATABASE "{building}"')
        await upgrade_async(_database_url(admin_dsn, building))
        with contextlib.suppress(asyncpg.DuplicateDatabaseError):
            await connection.execute(f'ALTER DATABASE "{building}" RENAME TO "{TEMPLATE}"')
    finally:
        await connection.close()


def _database_url(admin_dsn: str, name: str) -> str:
    return admin_dsn.rsplit("/", 1)[0] + "/" + name


@contextlib.asynccontextmanager
async def fresh_database(backend: str) -> AsyncIterator[str]:
    """The URL of a new, migrated, empty database (dropped or deleted afterwards)."""
    if backend == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="jobrelay-bench-"))
        try:
            url = f"sqlite:///{directory / 'bench.db'}"
            await upgrade_async(url)
            yield url
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    with _postgres_admin() as admin_dsn:
        await _ensure_template(admin_dsn)
        name = f"bench_{uuid.uuid4().hex[:12]}"
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        finally:
            await connection.close()
        try:
            yield _database_url(admin_dsn, name)
        finally:
            connection = await asyncpg.connect(admin_dsn)
            try:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await connection.close()


@dataclass
class Database:
    """An engine and its sessions on a benchmark database."""

    url: str
    engine: AsyncEngine
    sessions: Sessions

    async def analyze(self) -> None:
        """Fresh planner statistics after bulk seeding (what autovacuum would do soon)."""
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("ANALYZE")
            await connection.commit()


@contextlib.asynccontextmanager
async def open_database(backend: str) -> AsyncIterator[Database]:
    """A fresh database with an engine on it."""
    async with fresh_database(backend) as url:
        engine = create_engine(url)
        try:
            yield Database(url, engine, create_session_factory(engine))
        finally:
            await engine.dispose()


# ----------------------------------------------------------------------------- seeding


def numbers(session: AsyncSession, count: int, name: str = "seq") -> Any:
    """A row source of `n` = 0 .. count-1, built by the database (generate_series on
    PostgreSQL, a recursive CTE on SQLite): seeding is one INSERT ... SELECT."""
    if is_postgresql(session):
        return select(func.generate_series(0, count - 1).label("n")).subquery(name)
    seq = select(literal(0, Integer).label("n")).cte(name, recursive=True)
    return seq.union_all(select(seq.c.n + 1).where(seq.c.n < count - 1))


async def seed_chats(
    session: AsyncSession, count: int, now: datetime, *, start: int = 0, language: str = "en"
) -> list[int]:
    """`count` active private chats with ids CHAT_BASE + start .. ; their ids."""
    seq = numbers(session, count)
    at = literal(now, UTCDateTime())
    await session.execute(
        insert(Chat).from_select(
            [
                "id",
                "type",
                "language",
                "timezone",
                "active",
                "created_at",
                "updated_at",
                "digest_only",
                "digest_time",
                "paused",
            ],
            select(
                seq.c.n + (CHAT_BASE + start),
                literal("private"),
                literal(language),
                literal("Europe/Paris"),
                literal(True),
                at,
                at,
                literal(False),
                literal("19:00"),
                literal(False),
            ),
        )
    )
    return list(range(CHAT_BASE + start, CHAT_BASE + start + count))


async def seed_sources(
    session: AsyncSession,
    handles: Sequence[str],
    external_ids: Sequence[str],
    now: datetime,
    *,
    created_at: datetime | None = None,
) -> list[int]:
    """X sources (executemany: names come from Python); their ids in the order given."""
    rows = [
        {
            "kind": "x",
            "key": handle.lower(),
            "external_id": external_id,
            "display_name": handle,
            "cursor": None,
            "next_poll_at": now,
            "error_count": 0,
            "gone": False,
            "created_at": created_at or now,
        }
        for handle, external_id in zip(handles, external_ids, strict=True)
    ]
    ids: dict[str, int] = {}
    for start in range(0, len(rows), 5_000):
        chunk = rows[start : start + 5_000]
        await session.execute(insert(Source), chunk)
        found = await session.execute(
            select(Source.key, Source.id).where(
                Source.kind == "x", Source.key.in_([row["key"] for row in chunk])
            )
        )
        ids.update((str(key), int(source_id)) for key, source_id in found)
    return [ids[handle.lower()] for handle in handles]


async def seed_subscriptions(
    session: AsyncSession,
    *,
    chats: int,
    per_chat: int,
    sources: int,
    now: datetime,
    chat_start: int = 0,
    stride: int = 7,
    spread: int = 3_331,
) -> None:
    """Chat CHAT_BASE + chat_start + n follows the sources of rank (n*stride + k*spread) mod
    `sources`, k < per_chat (ranks: sources ordered by id), in one INSERT ... SELECT."""
    chat_seq = numbers(session, chats, "chat_seq")
    k_seq = numbers(session, per_chat, "k_seq")
    ranked = select(
        Source.id.label("id"), (func.row_number().over(order_by=Source.id) - 1).label("rank")
    ).subquery("ranked")
    rank = (chat_seq.c.n * stride + k_seq.c.n * spread) % sources
    await session.execute(
        insert(Subscription).from_select(
            ["chat_id", "source_id", "thread_id", "created_at"],
            select(
                chat_seq.c.n + (CHAT_BASE + chat_start),
                ranked.c.id,
                literal(0),
                literal(now, UTCDateTime()),
            )
            .select_from(chat_seq)
            .join(k_seq, literal(True))
            .join(ranked, ranked.c.rank == rank),
        )
    )


async def follow_all(
    session: AsyncSession, *, source_id: int, chats: int, now: datetime, chat_start: int = 0
) -> None:
    """Chats CHAT_BASE + chat_start .. follow one source, in one INSERT ... SELECT."""
    seq = numbers(session, chats)
    await session.execute(
        insert(Subscription).from_select(
            ["chat_id", "source_id", "thread_id", "created_at"],
            select(
                seq.c.n + (CHAT_BASE + chat_start),
                literal(source_id),
                literal(0),
                literal(now, UTCDateTime()),
            ),
        )
    )


# ----------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty sample."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1))
    return ordered[index]


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MB (VmHWM; ru_maxrss where /proc is absent)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verdict(ok: bool) -> str:
    """PASS, or BELOW the target."""
    return "PASS" if ok else "BELOW"


def quiet_logs() -> None:
    """Warnings only: the bot's per-message logs would cost time and drown the figures."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "telegram", "apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def backend_arguments(description: str | None) -> argparse.ArgumentParser:
    """A parser with --backend (both by default)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="default: both")
    return parser


def run_backends(args: argparse.Namespace) -> list[str]:
    """The backends asked for (both when none)."""
    return list(args.backend or BACKENDS)


def run(main: Any) -> int:
    """asyncio.run with quiet logs; an exit code."""
    quiet_logs()
    return int(asyncio.run(main) or 0)


# ----------------------------------------------------------------------------- the real app


@contextlib.asynccontextmanager
async def serving(
    tg: TelegramStandIn,
    x: XStandIn,
    database_url: str,
    *,
    clock: Clock | None = None,
    **overrides: object,
) -> AsyncIterator[asyncio.Task[None]]:
    """`bot.app.serve()` running in this event loop against the stand-ins (as in
    tests/e2e/live.py), from its command menu being registered until the block ends."""
    settings = load_settings(
        telegram_api_url=tg.base_url,
        x_api_url=x.url,
        x_bearer_token=SecretStr(x.bearer_token),
        database_url=database_url,
        **overrides,
    )
    stop = asyncio.Event()
    before = tg.stats["setMyCommands"]
    task = asyncio.create_task(serve(settings, token=tg.token, stop=stop, clock=clock))
    deadline = time.monotonic() + 60
    while tg.stats["setMyCommands"] < before + 2 and not task.done():
        if time.monotonic() > deadline:
            raise TimeoutError("the bot did not start within 60 s")
        await asyncio.sleep(0.02)
    if task.done():
        task.result()  # raises what stopped it
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:  # noqa: ASYNC109
    """Wait until `predicate()` holds (checked every 10 ms); TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:g} s")
        await asyncio.sleep(0.01)
