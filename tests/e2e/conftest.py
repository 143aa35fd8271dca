"""End-to-end fixtures: stand-ins on 127.0.0.1, a migrated database, the bot as a subprocess."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.telegram_api import TelegramStandIn
from bot.sandbox.x_api import XStandIn
from tests.e2e.harness import BotProcess, Stack, bot_environment


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """Everything an end-to-end test needs; the bot is started by the test."""
    async with (
        TelegramStandIn(token="7654321:AAH-e2e-secret-token") as tg,
        XStandIn(bearer_token="e2e-secret-bearer-token") as x,
    ):
        bot = BotProcess(env=bot_environment(tg, x, database_url), workdir=tmp_path, tg=tg)
        stack = Stack(tg=tg, x=x, database_url=database_url, workdir=tmp_path, bot=bot)
        try:
            yield stack
        finally:
            await bot.stop()
            await stack.db.close()
        log = bot.log
        # Whatever the test did, no secret may reach the bot's output.
        assert tg.token not in log
        assert x.bearer_token not in log
        if not stack.tracebacks_checked:
            assert "Traceback" not in log, log
