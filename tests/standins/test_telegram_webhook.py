"""The Telegram stand-in's webhook: setWebhook, getWebhookInfo, 409 on getUpdates while a
webhook is set, and updates POSTed with the secret header (retried until taken)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import BadRequest, Conflict

from bot.sandbox.telegram_api import WEBHOOK_CONFLICT, WEBHOOK_SECRET_HEADER, TelegramStandIn
from tests.e2e.harness import eventually

TOKEN = "123456:TEST-TOKEN"
SECRET = "s3cret_Token-1"


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it is sent; `answers` are the
    statuses of the next requests (200 once they run out)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], str | None]] = []
        self.answers: list[int] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(
            (json.loads(await request.read()), request.headers.get(WEBHOOK_SECRET_HEADER))
        )
        return web.Response(status=self.answers.pop(0) if self.answers else 200)


@pytest.fixture
async def standin() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn(TOKEN, webhook_retry_max=0.2) as server:
        yield server


@pytest.fixture
async def bot(standin: TelegramStandIn) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=standin.base_url, base_file_url=standin.base_file_url) as b:
        yield b


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as server:
        yield server


async def test_set_webhook_is_reported_by_get_webhook_info(
    bot: Bot, standin: TelegramStandIn, receiver: Receiver
) -> None:
    info = await bot.get_webhook_info()
    assert info.url == "" and info.pending_update_count == 0
    assert await bot.set_webhook(
        receiver.url, secret_token=SECRET, allowed_updates=["message", "callback_query"]
    )
    info = await bot.get_webhook_info()
    assert info.url == receiver.url
    assert info.allowed_updates == ("callback_query", "message")
    assert info.max_connections == 40
    assert standin.webhook is not None and standin.webhook.secret_token == SECRET
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""


async def test_get_updates_is_a_conflict_while_a_webhook_is_set(
    bot: Bot, receiver: Receiver
) -> None:
    await bot.set_webhook(receiver.url, secret_token=SECRET)
    with pytest.raises(Conflict) as caught:
        await bot.get_updates(timeout=0)
    assert caught.value.message == WEBHOOK_CONFLICT
    await bot.delete_webhook()
    assert await bot.get_updates(timeout=0) == ()


async def test_a_long_poll_under_way_ends_in_a_conflict_when_a_webhook_is_set(
    bot: Bot, receiver: Receiver
) -> None:
    polling = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.1)
    async with Bot(TOKEN, base_url=bot.base_url.removesuffix(TOKEN)) as other:
        await other.set_webhook(receiver.url, secret_token=SECRET)
    with pytest.raises(Conflict, match="while webhook is active"):
        await asyncio.wait_for(polling, 5)


async def test_updates_are_posted_in_order_with_the_secret_header(
    bot: Bot, standin: TelegramStandIn, receiver: Receiver
) -> None:
    standin.send_message(42, "before the webhook")
    await bot.set_webhook(receiver.url, secret_token=SECRET)
    standin.send_message(42, "/start")
    await eventually(lambda: len(receiver.received) == 2, what="two updates posted")
    texts = [update["message"]["text"] for update, _ in receiver.received]
    assert texts == ["before the webhook", "/start"]
    assert all(secret == SECRET for _, secret in receiver.received)
    await eventually(lambda: not standin.pending_updates, what="the updates confirmed")
    assert (await bot.get_webhook_info()).pending_update_count == 0


async def test_an_update_the_webhook_does_not_take_is_posted_again_until_it_is(
    bot: Bot, standin: TelegramStandIn, receiver: Receiver
) -> None:
    receiver.answers = [500, 403]
    await bot.set_webhook(receiver.url, secret_token=SECRET)
    standin.send_message(42, "hello")
    # The stand-in records an attempt once its answer is in, after the receiver saw it.
    await eventually(lambda: len(standin.webhook_posts) == 3, what="three attempts answered")
    update_ids = {update["update_id"] for update, _ in receiver.received}
    assert len(update_ids) == 1
    assert [status for _, status in standin.webhook_posts] == [500, 403, 200]
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 403"
    assert info.pending_update_count == 0


async def test_an_unreachable_webhook_keeps_its_updates(
    bot: Bot, standin: TelegramStandIn, receiver: Receiver
) -> None:
    url = receiver.url
    await receiver.__aexit__(None, None, None)  # nothing listens there any more
    await bot.set_webhook(url, secret_token=SECRET)
    standin.send_message(42, "hello")
    await eventually(lambda: len(standin.webhook_posts) >= 2, what="two failed attempts")
    assert {status for _, status in standin.webhook_posts} == {0}
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1
    assert info.last_error_message == "Connection refused"
    await bot.delete_webhook()
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["hello"]
    await Receiver.__aenter__(receiver)  # for the fixture's exit


async def test_allowed_updates_and_drop_pending_updates_apply_to_the_webhook(
    bot: Bot, standin: TelegramStandIn, receiver: Receiver
) -> None:
    standin.send_message(42, "dropped")
    await bot.set_webhook(
        receiver.url,
        secret_token=SECRET,
        allowed_updates=["callback_query"],
        drop_pending_updates=True,
    )
    standin.add_chat(42)
    sent = await bot.send_message(42, "Pick one")
    standin.send_message(42, "a message: not asked for")
    standin.press_button(42, sent.message_id, "yes")
    await eventually(lambda: len(receiver.received) == 1, what="the button press posted")
    update, _ = receiver.received[0]
    assert update["callback_query"]["data"] == "yes"
    await eventually(lambda: not standin.pending_updates, what="the press confirmed")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://bot.example.org/hook", r"(?i)an https url must be provided"),
        ("https://bot.example.org:9000/hook", r"(?i)ports 80, 88, 443 or 8443"),
    ],
)
async def test_set_webhook_refuses_what_telegram_refuses(bot: Bot, url: str, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        await bot.set_webhook(url)


async def test_set_webhook_refuses_a_secret_telegram_would_refuse(
    bot: Bot, receiver: Receiver
) -> None:
    with pytest.raises(BadRequest, match=r"(?i)secret token contains unallowed characters"):
        await bot.set_webhook(receiver.url, secret_token="not/allowed")
    with pytest.raises(BadRequest):
        await bot.set_webhook(receiver.url, secret_token="x" * 257)
