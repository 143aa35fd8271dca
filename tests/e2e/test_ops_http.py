"""PORT: /healthz and /metrics of the real bot, on SQLite and PostgreSQL, and /healthz through a
PostgreSQL outage (its own server, stopped and started again)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bot.budget import month_key
from bot.sandbox.telegram_api import TelegramStandIn
from bot.sandbox.x_api import XStandIn
from storage.migrate import upgrade_async
from storage.models import Delivery, DeliveryStatus, XUsage
from tests.e2e.harness import BotProcess, Stack, bot_environment, eventually_async, x_reads
from tests.pgserver import PostgresServer, free_port, postgres_bindir, running_postgres


def serve_http(stack: Stack) -> str:
    """Give the next start of the bot a PORT on 127.0.0.1; its base URL."""
    port = free_port()
    stack.bot.env.update(PORT=str(port), HOST="127.0.0.1")
    return f"http://127.0.0.1:{port}"


async def fetch(url: str, method: str = "GET", **kwargs: object) -> tuple[int, str]:
    """One request; its status and body (status 0 when nothing answers)."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, url, **kwargs) as response,  # type: ignore[arg-type]
        ):
            return response.status, await response.text()
    except aiohttp.ClientConnectionError:
        return 0, ""


def samples(exposition: str) -> dict[str, float]:
    """Prometheus text parsed by prometheus_client's own parser: `name{label="v"}` -> value."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


async def metrics(base: str) -> dict[str, float]:
    status, body = await fetch(f"{base}/metrics")
    assert status == 200, body
    return samples(body)


async def unsent(stack: Stack) -> int:
    """Outbox rows not delivered yet, as the database says."""
    async with stack.db.engine.connect() as connection:
        query = select(func.count()).where(
            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING])
        )
        return int(await connection.scalar(query) or 0)


async def posts_read(stack: Stack) -> int:
    async with stack.db.engine.connect() as connection:
        month = month_key(datetime.now(UTC))
        return int(await connection.scalar(select(XUsage.posts).where(XUsage.month == month)) or 0)


async def test_healthz_answers_and_nothing_else_is_served(stack: Stack) -> None:
    base = serve_http(stack)
    await stack.bot.start()

    async def healthy() -> bool:
        return await fetch(f"{base}/healthz") == (200, "ok\n")

    await eventually_async(healthy, what="/healthz 200")
    assert (await fetch(f"{base}/healthz", "HEAD"))[0] == 200
    assert await fetch(f"{base}/healthz", "POST", data=b"x") == (405, "method not allowed\n")
    assert await fetch(f"{base}/") == (404, "not found\n")
    assert await fetch(f"{base}/admin/../metrics/x") == (404, "not found\n")
    # Long polling: no webhook path, nothing answers a POST as Telegram's would be.
    assert (await fetch(f"{base}/", "POST", json={"update_id": 1}))[0] == 404
    assert stack.tg.webhook is None


async def test_metrics_follow_the_bot_and_the_outbox_matches_the_database(stack: Stack) -> None:
    base = serve_http(stack)
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    before = await metrics(base)
    for name in [
        "jobrelay_updates_total",
        "jobrelay_messages_sent_total",
        "jobrelay_telegram_429_total",
        "jobrelay_outbox_pending",
        "jobrelay_outbox_oldest_pending_seconds",
        "jobrelay_x_posts_read_month",
        'jobrelay_poll_lag_seconds{kind="x"}',
        'jobrelay_poll_lag_seconds{kind="feed"}',
    ]:
        assert name in before, name
    user = await stack.follower()  # a /follow, answered
    stack.x.add_post("acme_jobs", "Hiring: data engineer in Lille")
    await user.wait_for(2)  # the offer relayed

    async def counted() -> bool:
        now = await metrics(base)
        return (
            now["jobrelay_updates_total"] >= before["jobrelay_updates_total"] + 1
            and now["jobrelay_messages_sent_total"] >= before["jobrelay_messages_sent_total"] + 2
            and now["jobrelay_x_posts_read_month"] == await posts_read(stack) >= 1
        )

    await eventually_async(counted, what="the counters to move")

    # Telegram fails every send: the offers wait in the outbox, and /metrics says so.
    stack.tg.set_outage(502)
    for n in range(3):
        stack.x.add_post("acme_jobs", f"Hiring: tester number {n} in Lille")
    await x_reads(stack.x, "acme_jobs", count=2)

    async def backlog_shown() -> bool:
        now = await metrics(base)
        return now["jobrelay_outbox_pending"] == await unsent(stack) == 3 and (
            now["jobrelay_outbox_oldest_pending_seconds"] > 0
        )

    await eventually_async(backlog_shown, what="the outbox gauges to match the database")
    stack.tg.set_outage(None)
    await user.wait_for(5)

    async def drained() -> bool:
        now = await metrics(base)
        return now["jobrelay_outbox_pending"] == 0 == await unsent(stack)

    await eventually_async(drained, what="the outbox gauges back to 0")
    assert (await metrics(base))["jobrelay_outbox_oldest_pending_seconds"] == 0


@pytest.mark.skipif(postgres_bindir() is None, reason="PostgreSQL is not installed here")
async def test_healthz_is_503_while_postgresql_is_down_and_no_offer_is_lost(
    tmp_path: Path,
) -> None:
    # Durable (fsync, synchronous_commit): what the bot committed survives the crash below.
    with running_postgres(durable=True) as server:
        assert server is not None
        admin = await asyncpg.connect(server.admin_dsn)
        await admin.execute('CREATE DATABASE "outage"')
        await admin.close()
        url = server.url("outage")
        await upgrade_async(url)
        async with (
            TelegramStandIn(token="7654321:AAH-e2e-secret-token") as tg,
            XStandIn(bearer_token="e2e-secret-bearer-token") as x,
        ):
            bot = BotProcess(env=bot_environment(tg, x, url), workdir=tmp_path, tg=tg)
            stack = Stack(tg=tg, x=x, database_url=url, workdir=tmp_path, bot=bot)
            try:
                await _through_an_outage(stack, server)
            finally:
                await bot.stop()
                await stack.db.close()
            assert tg.token not in bot.log and x.bearer_token not in bot.log


async def _through_an_outage(stack: Stack, server: PostgresServer) -> None:
    base = serve_http(stack)
    stack.x.add_user("acme_jobs")
    await stack.bot.start()

    async def answers(expected: int) -> bool:
        return (await fetch(f"{base}/healthz"))[0] == expected

    await eventually_async(lambda: answers(200), what="/healthz 200")
    user = await stack.follower()
    # An offer waits in the outbox when the database goes: Telegram fails meanwhile.
    stack.tg.set_outage(502)
    stack.x.add_post("acme_jobs", "Offer waiting when the database stops")
    await eventually_async(lambda: _equals(unsent(stack), 1), what="the offer in the outbox")
    await stack.db.close()  # the test's own connections would not survive either

    server.stop()
    await eventually_async(lambda: answers(503), what="/healthz 503")
    status, body = await fetch(f"{base}/healthz")
    assert (status, body) == (503, "the database does not answer\n")
    scraped = await metrics(base)  # still served: the process's counters, and the outage
    assert scraped["jobrelay_database_up"] == 0
    stack.tg.set_outage(None)

    server.start()
    await eventually_async(lambda: answers(200), timeout=30, what="/healthz 200 again")
    texts = await user.wait_for(2, timeout=30)
    assert "Offer waiting when the database stops" in texts[1]
    # Polling goes on. (A poll cut by the outage between its claim and its store keeps its
    # group's lease, 5 minutes: hence the long timeout, which only that rare case uses.)
    stack.x.add_post("acme_jobs", "Offer after the outage")
    texts = await user.wait_for(3, timeout=330)
    assert "Offer after the outage" in texts[2]
    await stack.quiet("acme_jobs")
    assert len(user.received()) == 3  # nothing lost, nothing doubled
    assert (await metrics(base))["jobrelay_database_up"] == 1


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
