"""The HTTP port as a stranger on the internet uses it: malformed requests, many connections.

A real aiohttp server (bot.web) on 127.0.0.1 over a real SQLite file, spoken to over raw
sockets, since what is tested is what a well-behaved client would never send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event

from bot.clock import SystemClock
from bot.health import Health
from bot.metrics import Metrics
from bot.single_flight import SingleFlight
from bot.web import MAX_CONNECTIONS, WebServer
from storage.db import create_engine, create_session_factory


async def _idle() -> None:
    return None


@contextlib.asynccontextmanager
async def serving(
    sqlite_template: Path,
    tmp_path: Path,
    max_connections: int = MAX_CONNECTIONS,
    statements: list[str] | None = None,
) -> AsyncIterator[WebServer]:
    """A started server with /healthz, /metrics (no webhook) over a fresh SQLite file; the
    SQL it runs is appended to `statements`, if given."""
    path = tmp_path / "jobrelay.db"
    shutil.copyfile(sqlite_template, path)
    engine = create_engine(f"sqlite:///{path}")
    if statements is not None:

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.append(statement)

    sessions = create_session_factory(engine)
    health = Health(sessions=sessions, loops=[("sender", SingleFlight("sender", _idle))])
    health.phase = None  # running
    metrics = Metrics(sessions=sessions, clock=SystemClock())
    web = WebServer(
        host="127.0.0.1",
        port=0,
        health=health,
        metrics=metrics,
        max_connections=max_connections,
    )
    await web.start()
    try:
        yield web
    finally:
        await web.stop()
        await engine.dispose()


@pytest.fixture
async def server(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[WebServer]:
    async with serving(sqlite_template, tmp_path) as web:
        yield web


async def exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes (or 64 KB)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    try:
        return await reader.read(65536)
    finally:
        writer.close()


BAD_REQUESTS = {
    "header too long": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 100_000 + b"\r\n\r\n",
    "path too long": b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "too many headers": b"GET /healthz HTTP/1.1\r\n"
    + b"".join(b"X-%d: 1\r\n" % i for i in range(100))
    + b"\r\n",
    "broken chunk": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "two lengths": b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
}


@pytest.mark.parametrize("kind", sorted(BAD_REQUESTS))
async def test_a_malformed_request_is_refused_without_a_line_in_the_log(
    server: WebServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await exchange(server.port, BAD_REQUESTS[kind])
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    # A stranger decides how many of these there are: none may cost a log line (aiohttp
    # logged each as an ERROR with its traceback).
    noisy = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert noisy == [], [r.getMessage() for r in noisy]
    # And the server still answers.
    assert b" 200 " in await exchange(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")


async def test_connections_over_the_cap_are_answered_busy_and_the_cap_frees_up(
    sqlite_template: Path, tmp_path: Path
) -> None:
    async with serving(sqlite_template, tmp_path, max_connections=4) as web:
        held = [await asyncio.open_connection("127.0.0.1", web.port) for _ in range(4)]
        for reader, writer in held:  # each is served once, and kept open (keep-alive)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await reader.readuntil(b"ok\n")).startswith(b"HTTP/1.1 200 ")
        # The next connection is turned away at once.
        answer = await exchange(web.port, b"GET /healthz HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        # One held connection goes: a newcomer is served again.
        held[0][1].close()
        await held[0][1].wait_closed()
        for _attempt in range(200):
            answer = await exchange(web.port, b"GET /healthz HTTP/1.0\r\n\r\n")
            if b" 200 " in answer.split(b"\r\n")[0]:
                break
            await asyncio.sleep(0.05)
        assert b" 200 " in answer.split(b"\r\n")[0], answer
        for _reader, writer in held[1:]:
            writer.close()


async def test_a_flood_of_scrapes_and_health_checks_costs_the_database_a_few_queries(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """/metrics reads the shared figures at most every 2 s, /healthz pings at most every 1 s,
    concurrent requests sharing one read: 400 requests at once cost a handful of queries,
    not 400."""
    statements: list[str] = []
    async with serving(sqlite_template, tmp_path, statements=statements) as web:
        requests = [
            exchange(web.port, f"GET {path} HTTP/1.0\r\n\r\n".encode())
            for path in ("/metrics", "/healthz") * 200
        ]
        answers = await asyncio.gather(*requests)
    assert all(b" 200 " in answer.split(b"\r\n")[0] for answer in answers)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert 2 <= len(selects) <= 10, selects
