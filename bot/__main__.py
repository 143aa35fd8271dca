"""Command line: `python -m bot [run | migrate | sandbox | up]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy.exc import DBAPIError, OperationalError

from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure_logging
from storage.db import redact_url

log = logging.getLogger("bot")


class Fatal(Exception):
    """An error that ends the program with one clear line."""


def _secrets(settings: Settings) -> list[str]:
    """What the log must never show. The webhook URL's path is among them: it is where
    Telegram POSTs, and operators often make it unguessable (or put the bot token in it,
    as python-telegram-bot's examples do); the log keeps its scheme and host."""
    values = [settings.telegram_bot_token, settings.x_bearer_token, settings.webhook_secret]
    secrets = [v.get_secret_value() for v in values if v is not None]
    if settings.webhook_url is not None:
        path = urlsplit(settings.webhook_url).path
        if path.strip("/"):
            secrets += dict.fromkeys([path, unquote(path)])  # (bot.web logs it decoded)
    return secrets


async def ensure_schema(settings: Settings) -> None:
    """SQLite is migrated on start; a PostgreSQL schema that is behind stops the bot."""
    from storage.db import is_sqlite
    from storage.migrate import current_revision, head_revision, upgrade_async

    try:
        if is_sqlite(settings.database_url):
            done = await upgrade_async(settings.database_url)
            log.info("database %s", done.describe())
            return
        current = await current_revision(settings.database_url)
    except (OperationalError, DBAPIError, OSError, TypeError) as exc:
        # TypeError: the driver refused a parameter of the URL's query string.
        raise Fatal(
            redact_url(f"cannot open DATABASE_URL: {type(exc).__name__}: {exc}".splitlines()[0])
        ) from None
    head = head_revision()
    if current != head:
        raise Fatal(
            f"the PostgreSQL schema is at revision {current or 'none'} but this version needs "
            f"{head}: run `python -m bot migrate` first"
        )


def _run_until_signal(main: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    async def runner() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main

    asyncio.run(runner())


def command_run(settings: Settings) -> None:
    """Serve Telegram for real."""
    from bot.app import StartupError, serve

    if settings.telegram_bot_token is None:
        raise Fatal(
            "TELEGRAM_BOT_TOKEN is not set: get one from @BotFather, or try the bot locally "
            "with `python -m bot sandbox` (`make run` does this when no token is set)"
        )
    token = settings.telegram_bot_token.get_secret_value()
    stop = asyncio.Event()

    async def main() -> None:
        await ensure_schema(settings)
        try:
            await serve(settings, token=token, stop=stop)
        except StartupError as exc:
            raise Fatal(str(exc)) from None

    _run_until_signal(main(), stop)


def command_migrate(settings: Settings) -> None:
    """Bring the database schema up to date."""
    from storage.migrate import upgrade

    try:
        done = upgrade(settings.database_url)
    except (OperationalError, DBAPIError, OSError, TypeError) as exc:
        raise Fatal(
            redact_url(f"cannot migrate DATABASE_URL: {type(exc).__name__}: {exc}".splitlines()[0])
        ) from None
    log.info("database %s", done.describe())


def command_up(settings: Settings) -> None:
    """`make run`: with a token, migrate the database and serve Telegram (SQLite is migrated by
    `run` itself, PostgreSQL here first); without one, the sandbox, which migrates only its own
    database (jobrelay.db is left alone)."""
    from storage.db import is_sqlite

    if settings.telegram_bot_token is None:
        command_sandbox(settings)
        return
    if not is_sqlite(settings.database_url):
        command_migrate(settings)
    command_run(settings)


def command_sandbox(settings: Settings) -> None:
    """The same bot against local stand-ins of Telegram and X, with a terminal chat."""
    from bot.sandbox.run import run_sandbox

    # The terminal is the phone screen: the bot's log goes to a file, only problems show here.
    configure_logging(_secrets(settings), level=logging.WARNING, file="sandbox.log")
    stop = asyncio.Event()

    async def main() -> None:
        await run_sandbox(settings, stop=stop)

    _run_until_signal(main(), stop)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="jobrelay Telegram bot")
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "migrate", "sandbox", "up"],
        help="run (default): serve Telegram; migrate: upgrade the database schema; "
        "sandbox: local stand-ins and a terminal chat; up (what `make run` runs): migrate and "
        "run if TELEGRAM_BOT_TOKEN is set, else sandbox",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"jobrelay: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    configure_logging(_secrets(settings))
    commands = {
        "run": command_run,
        "migrate": command_migrate,
        "sandbox": command_sandbox,
        "up": command_up,
    }
    try:
        commands[args.command](settings)
    except Fatal as exc:
        print(f"jobrelay: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
