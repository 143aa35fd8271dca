"""The sandbox: the real bot against local stand-ins of Telegram and X, in a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from bot.app import serve
from bot.config import Settings
from bot.sandbox.feeds_api import FeedStandIn
from bot.sandbox.seed import (
    ACCOUNTS,
    BOARDS,
    FEED_ADDRESSES,
    post_random_feed_entry,
    post_random_post,
    seed,
    seed_feeds,
)
from bot.sandbox.telegram_api import TelegramStandIn
from bot.sandbox.terminal import Terminal
from bot.sandbox.x_api import XStandIn
from bot.sources.feeds import parse_host_map
from storage.db import redact_url
from storage.migrate import upgrade_async

log = logging.getLogger(__name__)

SANDBOX_DATABASE = "sqlite:///sandbox.db"
SANDBOX_FILES = Path("sandbox-files")  # copies of what the bot sends; outlive the sandbox
SANDBOX_POLL_SECONDS = 10.0
PREVIEW_CHARACTERS = 60  # of a post, in the line that announces it
USER_ID = 1001


def sandbox_settings(
    settings: Settings,
    tg: TelegramStandIn,
    x: XStandIn,
    boards_file: Path | None = None,
    feeds: FeedStandIn | None = None,
) -> Settings:
    """The user's settings, pointed at the stand-ins; a separate database unless one was given,
    and the sandbox's job board unless a BOARDS_FILE was given. Feeds' hosts are served by the
    feed stand-in on 127.0.0.1 (so private addresses are allowed)."""
    explicit = settings.model_fields_set
    feed_hosts = settings.feed_hosts
    if feeds is not None:
        feed_hosts = {**parse_host_map(feeds.hosts_setting()), **feed_hosts}
    return settings.model_copy(
        update={
            "feed_hosts": feed_hosts,
            "allow_private_feeds": True if feeds is not None else settings.allow_private_feeds,
            "boards_file": settings.boards_file if "boards_file" in explicit else boards_file,
            "telegram_api_url": tg.base_url,
            # The sandbox's stand-in is long-polled (a WEBHOOK_URL in .env is the real bot's).
            "webhook_url": None,
            "x_api_url": x.url,
            "x_bearer_token": SecretStr(x.bearer_token),
            "database_url": settings.database_url
            if "database_url" in explicit
            else SANDBOX_DATABASE,
            "poll_interval_seconds": settings.poll_interval_seconds
            if "poll_interval_seconds" in explicit
            else SANDBOX_POLL_SECONDS,
        }
    )


def poster_line(source: str, text: str, *, feed: bool = False) -> str:
    """What the sandbox says when a stand-in publishes something: who, and how it begins. Never
    whether it is an offer: the bot decides that, and what it relays shows it."""
    preview = " ".join(text.split())
    if len(preview) > PREVIEW_CHARACTERS:
        preview = preview[: PREVIEW_CHARACTERS - 1].rstrip() + "…"
    if feed:
        return f"(feed) {source} just published: “{preview}”"
    return f"(X) @{source} just posted: “{preview}”"


async def keep_posting(
    x: XStandIn,
    every: float,
    terminal: Terminal,
    stop: asyncio.Event,
    feeds: FeedStandIn | None = None,
    rng: random.Random | None = None,
) -> None:
    """Publish something about every `every` seconds (X posts, some feed entries) until `stop`,
    saying so in the terminal."""
    rng = rng or random.Random()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=rng.uniform(every * 0.5, every * 1.5))
        if stop.is_set():
            return
        if feeds is not None and rng.random() < 0.3:
            where, text = post_random_feed_entry(feeds, rng)
            terminal.note(poster_line(where, text, feed=True))
            continue
        handle, text = post_random_post(x, rng)
        terminal.note(poster_line(handle, text))


async def run_sandbox(settings: Settings, *, stop: asyncio.Event) -> None:
    """Run stand-ins, the bot and the terminal chat until `stop` or `:quit`."""
    async with TelegramStandIn() as tg, XStandIn() as x, FeedStandIn() as feeds:
        seed(x)
        seed_feeds(feeds)
        workdir = Path(tempfile.mkdtemp(prefix="jobrelay-sandbox-"))
        boards = workdir / "boards.toml"
        boards.write_text(f"accounts = {json.dumps(['@' + b for b in BOARDS])}\n", "utf-8")
        config = sandbox_settings(settings, tg, x, boards, feeds)
        schema = await upgrade_async(config.database_url)
        language = os.environ.get("SANDBOX_LANGUAGE") or (
            "fr" if os.environ.get("LANG", "").lower().startswith("fr") else "en"
        )
        terminal = Terminal(
            tg,
            user_id=USER_ID,
            language=language,
            stop=stop,
            x=x,
            zone=ZoneInfo(config.default_timezone),
            files_dir=SANDBOX_FILES,
        )
        every = float(os.environ.get("SANDBOX_POST_EVERY_SECONDS", "30"))
        terminal.banner(
            accounts=sorted(ACCOUNTS),
            feeds=FEED_ADDRESSES,
            database=redact_url(config.database_url),
            schema=schema.describe(),
            poll_seconds=config.poll_interval_seconds,
            post_every=every,
        )
        bot = asyncio.create_task(serve(config, token=tg.token, stop=stop), name="sandbox-bot")
        tasks = [
            asyncio.create_task(terminal.run(), name="sandbox-terminal"),
            asyncio.create_task(
                keep_posting(x, every, terminal, stop, feeds), name="sandbox-poster"
            ),
        ]
        try:
            await bot
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            shutil.rmtree(workdir, ignore_errors=True)
            sys.stdout.flush()
