"""The real bot as a separate process (`python -m bot run`, forked from a zygote that has
imported it) against the Telegram and X stand-ins."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from bot.sandbox.telegram_api import SentMessage, TelegramStandIn
from bot.sandbox.x_api import XStandIn
from storage.db import create_engine
from storage.models import Chat, Delivery, DeliveryKind, DeliveryStatus
from tests.e2e.zygote import ForkedBot, Zygote

ROOT = Path(__file__).resolve().parents[2]


async def eventually(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Wait until `predicate()` holds, checking often; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


async def eventually_async(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = ""
) -> None:
    """`eventually` for a predicate that has to ask something (the database)."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


def _reads_of(x: XStandIn, handle: str, since: float) -> int:
    """X reads naming @handle (a search `from:handle`, or its timeline) that reached the
    stand-in after `since` (time.time())."""
    needle = f"from:{handle.lower()}"
    user_id = x.user_id(handle)
    return sum(
        1
        for r in x.requests
        if r.at >= since
        and (
            needle in r.params.get("query", "").lower()
            or (user_id is not None and r.path == f"/2/users/{user_id}/tweets")
        )
    )


async def x_reads(x: XStandIn, *handles: str, count: int = 2, timeout: float = 15.0) -> None:
    """Wait until the bot has read each of these X accounts `count` more times from now.

    A poll group's next read starts only once its previous read is stored (offers, outbox
    rows, cursors): after two reads, everything posted before the call has been read and
    stored, and what it brought is in the outbox.
    """
    since = time.time()
    for handle in handles or ("acme_jobs",):
        done = functools.partial(lambda h: _reads_of(x, h, since) >= count, handle)
        await eventually(done, timeout, f"{count} reads of @{handle} on X")


# POLL_INTERVAL_SECONDS of the bots the end-to-end tests start (`bot_environment`).
POLL_INTERVAL = 1.0


async def polls_pass(count: int) -> None:
    """Let `count` poll intervals pass, for a check that a read does NOT happen (an account
    nobody follows, a budget spent, a cap): an absence has no event to wait for."""
    await asyncio.sleep(count * POLL_INTERVAL)


async def feed_reads(
    feeds: Any, host: str, path: str | None = None, *, count: int = 2, timeout: float = 15.0
) -> None:
    """Wait until a feed (a FeedStandIn's `host` and `path`) has been fetched `count` more
    times from now (a feed's next fetch starts only once its previous one is stored)."""
    since = time.time()

    def fetched() -> int:
        return sum(
            1
            for r in feeds.requests
            if r.at >= since and r.host == host and (path is None or r.path == path)
        )

    await eventually(lambda: fetched() >= count, timeout, f"{count} fetches of {host}{path or ''}")


class BotDatabase:
    """What the bot's database says, for tests that wait for the bot to have done something
    (or to have nothing left to do)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_engine(self.database_url)
        return self._engine

    async def busy(self, now: datetime | None = None, *, paced: bool = True) -> int:
        """Rows being sent (or digested), and rows the sender will claim without the clock
        moving past `now` (the bot's): due, of an active chat, behind no row of its chat that
        waits for a retry; with `paced`, also those of a group waiting for its next round
        (which comes by itself when the clock is real)."""
        now = now or datetime.now(UTC)
        older = aliased(Delivery)
        waits_behind_a_retry = (
            select(older.id)
            .where(
                older.chat_id == Delivery.chat_id,
                older.id < Delivery.id,
                older.kind == DeliveryKind.OFFER,
                older.status == DeliveryStatus.PENDING,
                older.next_attempt_at > now,
            )
            .exists()
        )
        claimable = and_(
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.next_attempt_at <= now,
            Chat.active.is_(True),
            ~waits_behind_a_retry,
        )
        if not paced:
            claimable &= or_(Chat.next_send_at.is_(None), Chat.next_send_at <= now)
        query = (
            select(func.count())
            .select_from(Delivery)
            .join(Chat, Chat.id == Delivery.chat_id)
            .where(
                or_(
                    Delivery.status.in_([DeliveryStatus.SENDING, DeliveryStatus.DIGESTING]),
                    claimable,
                )
            )
        )
        async with self.engine.connect() as connection:
            return int(await connection.scalar(query) or 0)

    async def chat_active(self, chat_id: int) -> bool | None:
        """Whether the bot counts this chat as active (None: it does not know the chat)."""
        async with self.engine.connect() as connection:
            return await connection.scalar(select(Chat.active).where(Chat.id == chat_id))

    async def idle(
        self,
        now: Callable[[], datetime] | None = None,
        *,
        paced: bool = True,
        timeout: float = 15.0,
    ) -> None:
        """Wait until nothing is being sent and nothing is due (see `busy`)."""

        async def done() -> bool:
            return await self.busy(now() if now else None, paced=paced) == 0

        await eventually_async(done, timeout, "the outbox to be idle")

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()


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
    db: BotDatabase = field(init=False)

    def __post_init__(self) -> None:
        self.db = BotDatabase(self.database_url)

    def boards(self, *handles: str, feeds: tuple[str, ...] = ()) -> None:
        """Make these X accounts and feeds the job boards (BOARDS_FILE) of the next start:
        the curated sources whose offers reach category followers."""
        path = self.workdir / "boards.toml"
        accounts = ", ".join(f'"@{h}"' for h in handles)
        listed = ", ".join(f'"{f}"' for f in feeds)
        path.write_text(f"accounts = [{accounts}]\nfeeds = [{listed}]\n", encoding="utf-8")
        self.bot.env["BOARDS_FILE"] = str(path)

    def user(self, language: str = "en") -> User:
        """A new Telegram user with a private chat."""
        self.next_user += 1
        return User(self, self.next_user, language)

    async def follower(self, handle: str = "acme_jobs", language: str = "en") -> User:
        """A new user who follows `handle`, once the bot's first poll of it has passed (so
        what is posted next is new)."""
        user = self.user(language)
        assert "@" in await user.ask(f"/follow @{handle}")
        await x_reads(self.x, handle, count=1)
        return user

    async def quiet(self, *handles: str, reads: int = 2) -> None:
        """Wait until the bot has nothing more to send: each X account named read `reads`
        more times (so all it posted so far is stored), then the outbox idle. What a test
        checks after this cannot still change by itself, except retries due later."""
        await x_reads(self.x, *handles, count=reads)
        await self.db.idle()

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

    def say(self, text: str, **extra: Any) -> dict[str, Any]:
        """Write in the private chat (`extra`: TelegramStandIn.send_message's options); the
        message as queued."""
        return self.stack.tg.send_message(
            self.chat_id,
            text,
            user_id=self.user_id,
            language_code=self.language,
            first_name=f"User{self.user_id}",
            **extra,
        )

    def received(self) -> list[SentMessage]:
        return self.stack.tg.messages_for(self.chat_id)

    def texts(self) -> list[str]:
        return [m.plain_text or m.text for m in self.received()]

    async def ask(self, text: str, timeout: float = 15.0, **extra: Any) -> str:
        """Send a message and return the plain text of the bot's next reply."""
        before = len(self.received())
        self.say(text, **extra)
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
        POLL_INTERVAL_SECONDS=str(POLL_INTERVAL),
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
