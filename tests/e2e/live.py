"""The real bot run in the test's event loop with a clock the test moves (no sleeping to test
time): `serve()` with a ShiftedClock, against the Telegram and X stand-ins."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from bot.app import serve
from bot.clock import ShiftedClock
from bot.config import load_settings
from bot.sandbox.telegram_api import SentMessage, TelegramStandIn
from bot.sandbox.x_api import XStandIn
from tests.e2e.harness import BotDatabase, eventually, x_reads

PARIS = ZoneInfo("Europe/Paris")


def recent_paris(at: time, days_ago: int = 2) -> datetime:
    """A Paris wall-clock time a few days back (never in the future for the X stand-in)."""
    day = (datetime.now(PARIS) - timedelta(days=days_ago)).date()
    return datetime.combine(day, at, tzinfo=PARIS).astimezone(UTC)


@dataclass
class Live:
    """A running bot whose clock the test controls."""

    tg: TelegramStandIn
    x: XStandIn
    clock: ShiftedClock
    database_url: str
    next_user: int = 7000
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    db: BotDatabase = field(init=False)

    def __post_init__(self) -> None:
        self.db = BotDatabase(self.database_url)

    async def quiet(self, *handles: str, reads: int = 2) -> None:
        """Wait until the bot has nothing more to send at its clock's time: each X account
        named read `reads` more times (all it posted so far is stored), then the outbox idle
        (held rows wait for their digest, rows behind a retry for it, and a group's next
        round for the clock to reach it)."""
        await x_reads(self.x, *handles, count=reads)
        await self.db.idle(now=self.clock.now, paced=False)

    async def ticks(self, count: int = 3) -> None:
        """Let the workers that act on the clock (digests, summaries, the end of a pause or
        of quiet hours) run `count` times at its current time, for a check that nothing
        happens yet. Their runs leave no trace to wait for, so this waits their intervals."""
        await asyncio.sleep(count * max(DIGEST_INTERVAL, DELIVERY_INTERVAL))
        await self.db.idle(now=self.clock.now, paced=False)

    def advance_to(self, moment: datetime) -> None:
        """Move the bot's clock forward to `moment`."""
        self.clock.advance(max(moment - self.clock.now(), timedelta(0)))

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)

    def user(self, language: str = "en") -> LiveUser:
        self.next_user += 1
        return LiveUser(self, self.next_user, language)


@dataclass
class LiveUser:
    """A person in a private chat with the bot."""

    live: Live
    user_id: int
    language: str

    @property
    def chat_id(self) -> int:
        return self.user_id

    def received(self) -> list[SentMessage]:
        return [m for m in self.live.tg.messages_for(self.chat_id) if m.method != "editMessageText"]

    def texts(self) -> list[str]:
        return [m.plain_text or m.text for m in self.received()]

    async def ask(self, text: str) -> str:
        before = len(self.received())
        self.live.tg.send_message(
            self.chat_id, text, user_id=self.user_id, language_code=self.language
        )
        await eventually(lambda: len(self.received()) > before, 15, f"a reply to {text!r}")
        return self.texts()[before]

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[str]:
        await eventually(
            lambda: len(self.received()) >= count,
            timeout,
            f"{count} messages in chat {self.chat_id}",
        )
        return self.texts()

    async def press(self, message: SentMessage, data: str) -> None:
        before = len(self.live.tg.sent)
        self.live.tg.press_button(
            self.chat_id,
            message.message_id,
            data,
            user_id=self.user_id,
            language_code=self.language,
        )
        await eventually(
            lambda: (
                self.live.tg.stats["answerCallbackQuery"] > 0 and len(self.live.tg.sent) >= before
            ),
            15,
            f"the answer to {data}",
        )


# The intervals of the bot's clock-driven workers in these tests.
DELIVERY_INTERVAL = 0.2
DIGEST_INTERVAL = 0.3


@contextlib.asynccontextmanager
async def live_bot(database_url: str, start: datetime, **overrides: object) -> AsyncIterator[Live]:
    """Stand-ins plus the bot serving in this event loop, its clock starting at `start`."""
    async with TelegramStandIn() as tg, XStandIn() as x:
        clock = ShiftedClock(start)
        settings = load_settings(
            telegram_api_url=tg.base_url,
            x_api_url=x.url,
            x_bearer_token=SecretStr(x.bearer_token),
            database_url=database_url,
            poll_interval_seconds=1,
            delivery_interval_seconds=DELIVERY_INTERVAL,
            digest_interval_seconds=DIGEST_INTERVAL,
            delivery_lease_seconds=3,
            **overrides,
        )
        live = Live(tg=tg, x=x, clock=clock, database_url=database_url)
        before = tg.stats["setMyCommands"]
        task = asyncio.create_task(serve(settings, token=tg.token, stop=live.stop, clock=clock))
        live.task = task
        await eventually(
            lambda: tg.stats["setMyCommands"] >= before + 2 or task.done(), 20, "the bot to start"
        )
        try:
            yield live
        finally:
            live.stop.set()
            await asyncio.wait_for(task, 20)
            await live.db.close()
