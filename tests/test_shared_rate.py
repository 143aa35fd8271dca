"""The bot's one send rate on PostgreSQL (bot.shared_rate) when the database stops answering.

A database that is down refuses connections, and the rate falls back on the process's own
limiter at once. One that hangs (a network partition, a stopped host, a pool that never
frees a connection) answers nothing: the ask must be given up rather than hold every send
of the bot behind it. The hang is real: PostgreSQL is reached through a TCP relay that stops
relaying on demand, with the connections left open.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bot.shared_rate import SharedRate
from storage.db import create_engine


class FreezingRelay:
    """A TCP relay on 127.0.0.1 to another port; `freeze()` stops relaying both ways (bytes
    are kept, nothing is closed), as a host that stopped answering would."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; the port to connect to."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def freeze(self) -> None:
        """Stop relaying (connections stay open)."""
        self._flowing.clear()

    async def close(self) -> None:
        """Cut every connection and stop listening."""
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        self._writers += [writer, up_writer]
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while chunk := await source.read(65536):
            await self._flowing.wait()
            sink.write(chunk)
            await sink.drain()


async def test_a_database_that_stops_answering_does_not_hold_the_sends(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the rate is shared through PostgreSQL only (SQLite serves one process)")
    host_port, database = database_url.rsplit("/", 1)
    relay = FreezingRelay(int(host_port.rsplit(":", 1)[1]))
    port = await relay.start()
    engine = create_engine(f"{host_port.rsplit(':', 1)[0]}:{port}/{database}")
    rate = SharedRate(engine, rate_per_second=1000)
    try:
        await rate.turn()
        assert rate.granted == 1  # the database granted it
        relay.freeze()
        # The turn is given up and the process meters its sends alone (its own limiter):
        # the send goes. Without a bound on the ask it waited for as long as the hang lasted.
        # (60 s only tells a hang from an answer; the ask gives up within seconds.)
        await asyncio.wait_for(rate.turn(), timeout=60)
        assert rate.granted == 1  # not granted by the database: the fallback
        await rate.turn()  # and, for a while, without asking it again
    finally:
        await relay.close()
        with contextlib.suppress(Exception):
            await engine.dispose()
