"""The real bot as a separate process (`python -m bot run`, forked from a zygote that has
imported it) against the Telegram and X stand-ins."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.sandbox.telegram_api import SentMessage, TelegramStandIn
from bot.sandbox.x_api import XStandIn
from tests.e2e.zygote import ForkedBot, Zygote

ROOT = Path(__file__).resolve().parents[2]


async def eventually(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Wait until `predicate()` holds, checking often; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


@dataclass
class BotProcess:
    """One `python -m bot` process with its environment and its log file."""

    env: dict[str, str]
    workdir: Path
    tg: TelegramStandIn
    command: str = "run"
    process: ForkedBot | None = None
    runs: int = 0
    log_files: list[Path] = field(default_factory=list)
    kill_times: list[float] = field(default_factory=list)  # time.time() of each kill -9

    async def start(self, *, wait_ready: bool = True) -> None:
        """Start the bot and wait until it polls Telegram for updates."""
        self.runs += 1
        log_file = self.workdir / f"bot-{self.runs}.log"
        self.log_files.append(log_file)
        # setMyCommands comes right before long polling starts; updates sent from then on wait
        # in the stand-in's queue for the bot's first getUpdates.
        before = self.tg.stats["setMyCommands"]
        # Forked from a process that has imported the bot already (tests/e2e/zygote.py):
        # the same `bot.__main__.main()` in a new process, without 1.2 s of imports.
        self.process = Zygote.spawn([self.command], self.env, self.workdir, log_file)
        if wait_ready:
            await eventually(
                lambda: self.tg.stats["setMyCommands"] >= before + 2 or self.exited,
                timeout=30,
                what="the bot to register its commands",
            )
            assert not self.exited, f"the bot exited at start-up:\n{self.log}"

    @property
    def exited(self) -> bool:
        return self.process is not None and self.process.returncode is not None

    async def wait(self, timeout: float = 30) -> int:
        """Wait for the process to end by itself; its exit code."""
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.process is not None and self.process.returncode is None:
            self.kill_times.append(time.time())
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        """A polite stop (SIGTERM), as a process manager does."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                await self.kill()

    @property
    def log(self) -> str:
        return "\n".join(f.read_text(errors="replace") for f in self.log_files if f.exists())


@dataclass
class Stack:
    """Stand-ins, a database and a bot wired together for one end-to-end test."""

    tg: TelegramStandIn
    x: XStandIn
    database_url: str
    workdir: Path
    bot: BotProcess
    next_user: int = 5000
    # Set by a test that checked the bot's log for tracebacks itself (the fixture then
    # leaves that check to it).
    tracebacks_checked: bool = False

    def user(self, language: str = "en") -> User:
        """A new Telegram user with a private chat."""
        self.next_user += 1
        return User(self, self.next_user, language)

    async def follower(self, handle: str = "acme_jobs", language: str = "en") -> User:
        """A new user who follows `handle`, once the bot's first poll of it has passed (so
        what is posted next is new)."""
        user = self.user(language)
        assert "@" in await user.ask(f"/follow @{handle}")
        await asyncio.sleep(1.5)
        return user

    def env(self, **overrides: str) -> dict[str, str]:
        return {**self.bot.env, **overrides}


@dataclass
class User:
    """A person talking to the bot in a private chat."""

    stack: Stack
    user_id: int
    language: str

    @property
    def chat_id(self) -> int:
        return self.user_id

    def say(self, text: str) -> None:
        self.stack.tg.send_message(
            self.chat_id,
            text,
            user_id=self.user_id,
            language_code=self.language,
            first_name=f"User{self.user_id}",
        )

    def received(self) -> list[SentMessage]:
        return self.stack.tg.messages_for(self.chat_id)

    def texts(self) -> list[str]:
        return [m.plain_text or m.text for m in self.received()]

    async def ask(self, text: str, timeout: float = 15.0) -> str:
        """Send a message and return the plain text of the bot's next reply."""
        before = len(self.received())
        self.say(text)
        await eventually(lambda: len(self.received()) > before, timeout, f"a reply to {text!r}")
        return self.texts()[before]

    def numbers_after(self, marker: str) -> list[int]:
        """The number after each `marker` in the messages received, in order (e.g. the n of
        "Offer number n" in pushes and digests)."""
        return [int(part.split()[0]) for text in self.texts() for part in text.split(marker)[1:]]

    async def ask_until(self, text: str, expected: str, timeout: float = 15.0) -> str:
        """Ask again (every 0.5 s) until the reply contains `expected`; the last reply. For
        figures the bot reaches in the background (e.g. offers held as the sender meets them)."""
        deadline = time.monotonic() + timeout
        reply = await self.ask(text)
        while expected not in reply and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            reply = await self.ask(text)
        return reply

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[str]:
        try:
            await eventually(lambda: len(self.received()) >= count, timeout)
        except AssertionError:
            tg = self.stack.tg
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {count} messages in chat "
                f"{self.chat_id}; got {self.texts()}; stand-in stats {dict(tg.stats)}; "
                f"pending updates {tg.pending_updates}; recent errors {list(tg.recent_errors)}"
            ) from None
        return self.texts()


def log_records(log: str) -> list[str]:
    """A bot log split into records (a record's first line starts with its date)."""
    records: list[str] = []
    for line in log.splitlines():
        if re.match(r"\d{4}-\d\d-\d\d ", line) or not records:
            records.append(line)
        else:
            records[-1] += "\n" + line
    return records


def bot_environment(tg: TelegramStandIn, x: XStandIn, database_url: str) -> dict[str, str]:
    """The environment of a bot wired to the stand-ins, with fast test timings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "X_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=tg.token,
        TELEGRAM_API_URL=tg.base_url,
        X_BEARER_TOKEN=x.bearer_token,
        X_API_URL=x.url,
        DATABASE_URL=database_url,
        POLL_INTERVAL_SECONDS="1",
        DELIVERY_INTERVAL_SECONDS="0.2",
        DELIVERY_LEASE_SECONDS="3",
        GROUP_PACE_SECONDS="2",  # a club's next round (60 s in production)
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


class MutedUpdates:
    """A relay in front of the Telegram stand-in that passes every Bot API call through
    except getUpdates, which it answers itself with no update after a short wait.

    A second `python -m bot run` process pointed at it (TELEGRAM_API_URL=relay.base_url)
    sends and polls X like the first but receives no update: Telegram answers a second
    getUpdates caller of one bot with 409 Conflict, and the bot has no mode that does not
    read updates.
    """

    def __init__(self, tg: TelegramStandIn, wait: float = 0.5) -> None:
        self.tg = tg
        self.wait = wait
        self.muted = 0  # getUpdates calls answered here
        self.relayed = 0
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/bot"

    async def __aenter__(self) -> MutedUpdates:
        self._client = aiohttp.ClientSession()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.lower().endswith("/getupdates"):
            self.muted += 1
            await asyncio.sleep(self.wait)
            return web.json_response({"ok": True, "result": []})
        assert self._client is not None
        self.relayed += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() == "content-type"}
        async with self._client.request(
            request.method,
            f"http://{self.tg.host}:{self.tg.port}{request.path_qs}",
            data=await request.read(),
            headers=headers,
        ) as upstream:
            body = await upstream.read()
            return web.Response(
                status=upstream.status,
                body=body,
                content_type=upstream.content_type,
            )
