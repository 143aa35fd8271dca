"""Webhook mode: the real bot takes the updates the Telegram stand-in POSTs to WEBHOOK_URL, on
the PORT that also serves /healthz and /metrics; strangers' requests go nowhere."""

from __future__ import annotations

import asyncio
import io
import time

import aiohttp
from sqlalchemy import func, select

from bot.sandbox.telegram_api import WEBHOOK_SECRET_HEADER
from storage.models import HandledUpdate
from tests.e2e.harness import Stack, eventually, eventually_async
from tests.e2e.test_ops_http import fetch, metrics
from tests.pgserver import free_port

SECRET = "e2e_webhook-Secret-0123456789"


def webhook_mode(stack: Stack) -> tuple[str, str]:
    """Configure the next start for webhook mode; (server base URL, webhook URL)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/telegram/updates"
    stack.bot.env.update(PORT=str(port), HOST="127.0.0.1", WEBHOOK_URL=url, WEBHOOK_SECRET=SECRET)
    return base, url


async def start_in_webhook_mode(stack: Stack) -> tuple[str, str]:
    base, url = webhook_mode(stack)
    await stack.bot.start()
    await eventually(lambda: stack.tg.webhook is not None, what="setWebhook")
    return base, url


def command(update_id: int, chat_id: int, text: str) -> dict[str, object]:
    """A private-chat command update as Telegram sends it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Eve"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Eve", "language_code": "en"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


async def handled(stack: Stack, *update_ids: int) -> int:
    """How many of these update ids the bot claimed in `handled_updates`."""
    async with stack.db.engine.connect() as connection:
        query = select(func.count()).where(HandledUpdate.update_id.in_(update_ids))
        return int(await connection.scalar(query) or 0)


async def test_updates_arrive_by_webhook_and_are_answered(stack: Stack) -> None:
    base, url = await start_in_webhook_mode(stack)
    hook = stack.tg.webhook
    assert hook is not None and hook.url == url and hook.secret_token == SECRET
    assert hook.allowed_updates == frozenset(
        {"message", "edited_message", "callback_query", "my_chat_member"}
    )
    user = stack.user()
    reply = await user.ask("/start")
    assert reply.startswith("Hello User")
    assert stack.tg.stats["getUpdates"] == 0  # never long-polled
    assert stack.tg.stats["webhook:200"] >= 1
    assert await fetch(f"{base}/healthz") == (200, "ok\n")
    scraped = await metrics(base)
    assert scraped["jobrelay_updates_total"] >= 1
    assert SECRET not in stack.bot.log


async def test_a_request_without_the_secret_is_refused_and_never_handled(stack: Stack) -> None:
    base, url = await start_in_webhook_mode(stack)
    user = stack.user()
    await user.ask("/start")  # the chat exists for the stand-in
    forged = command(900_001, user.chat_id, "/unfollow all")
    for headers in ({}, {WEBHOOK_SECRET_HEADER: "wrong"}, {WEBHOOK_SECRET_HEADER: SECRET + "x"}):
        status, body = await fetch(url, "POST", json=forged, headers=headers)
        assert (status, body) == (403, "forbidden\n")
    await user.ask("/help")  # answered after anything queued before it: the forgery was not
    assert len(user.received()) == 2
    assert await handled(stack, 900_001) == 0
    assert (await metrics(base))['jobrelay_webhook_refused_total{reason="secret"}'] == 3


async def test_the_same_update_posted_twice_is_handled_once(stack: Stack) -> None:
    _base, url = await start_in_webhook_mode(stack)
    user = stack.user()
    await user.ask("/start")
    update = command(900_002, user.chat_id, "/help")
    headers = {WEBHOOK_SECRET_HEADER: SECRET}
    answers = await asyncio.gather(
        *(fetch(url, "POST", json=update, headers=headers) for _ in range(2))
    )
    assert answers == [(200, ""), (200, "")]
    await user.wait_for(2)
    await user.ask("/list")  # a barrier: the chat's updates are handled in order
    assert len(user.received()) == 3
    assert await handled(stack, 900_002) == 1


async def test_oversized_bodies_and_a_wrong_secret_flood_never_reach_the_handlers(
    stack: Stack,
) -> None:
    base, url = await start_in_webhook_mode(stack)
    user = stack.user()
    await user.ask("/start")
    before = (await metrics(base))["jobrelay_updates_total"]
    headers = {WEBHOOK_SECRET_HEADER: SECRET}
    status, _ = await fetch(
        url, "POST", data=io.BytesIO(b"{" + b" " * (2 * 1024 * 1024) + b"}"), headers=headers
    )
    assert status == 413
    assert (await fetch(url, "POST", data=b"not json", headers=headers))[0] == 400
    assert (await fetch(url, "POST", json={"no": "update_id"}, headers=headers))[0] == 400
    forged = [command(910_000 + n, user.chat_id, "/unfollow all") for n in range(200)]
    connector = aiohttp.TCPConnector(limit=50)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def post(update: dict[str, object]) -> int:
            async with http.post(url, json=update, headers={WEBHOOK_SECRET_HEADER: "guess"}) as r:
                return r.status

        statuses = await asyncio.gather(*(post(update) for update in forged))
    assert set(statuses) == {403}
    await user.ask("/help")  # the bot still answers, and handled none of the flood
    assert len(user.received()) == 2
    assert await handled(stack, *(int(u["update_id"]) for u in forged)) == 0  # type: ignore[call-overload]

    async def counted() -> bool:
        # Only /help got through: the flood and the oversized body reached no handler.
        return (await metrics(base))["jobrelay_updates_total"] == before + 1

    await eventually_async(counted, what="one more update counted")
    status, body = await fetch(f"{base}/metrics")
    assert status == 200 and "Traceback" not in body and SECRET not in body


async def test_switching_back_to_long_polling_deletes_the_webhook(stack: Stack) -> None:
    await start_in_webhook_mode(stack)
    await stack.bot.stop()
    assert stack.tg.webhook is not None  # a worker stopping leaves it to the others
    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET"):
        del stack.bot.env[name]
    await stack.bot.start()
    await eventually(lambda: stack.tg.webhook is None, what="deleteWebhook")
    user = stack.user()
    assert (await user.ask("/start")).startswith("Hello User")


async def test_a_worker_without_port_leaves_the_webhook_alone(stack: Stack) -> None:
    """A platform's worker sees WEBHOOK_URL but has no PORT: it neither long-polls (which would
    delete the web processes' webhook) nor listens."""
    webhook_mode(stack)
    del stack.bot.env["PORT"]
    await stack.bot.start()
    await eventually(
        lambda: "Telegram's updates go to the web processes" in stack.bot.log, what="the log line"
    )
    for method in ("getUpdates", "setWebhook", "deleteWebhook"):
        assert stack.tg.stats[method] == 0, method


async def test_a_webhook_path_with_escapes_receives_the_updates(stack: Stack) -> None:
    """WEBHOOK_URL is an address, its path percent-encoded (a space is %20); aiohttp hands
    the server the decoded path. The two are compared decoded: otherwise every update
    Telegram POSTs is answered 404, and nothing in the bot's log says so."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/my%20bot"
    stack.bot.env.update(PORT=str(port), HOST="127.0.0.1", WEBHOOK_URL=url, WEBHOOK_SECRET=SECRET)
    await stack.bot.start()
    await eventually(lambda: stack.tg.webhook is not None, what="setWebhook")
    user = stack.user()
    assert (await user.ask("/start")).startswith("Hello User")
