"""Updates of one chat are handled in order; different chats are handled concurrently."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

log = logging.getLogger(__name__)

# Updates of one chat waiting for the previous ones (a person types a few commands ahead; a
# script sends thousands).
MAX_WAITING_PER_CHAT = 20


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """A person who sends /follow then /list gets the answers in that order, while a slow X
    lookup for one chat never holds up the others."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        # PTB's own semaphore is taken before do_process_update: make it wide, and take the
        # real slot after the chat's lock, so one chat's backlog cannot hold every slot.
        super().__init__(1_000_000)
        self._slots = asyncio.Semaphore(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the handler coroutine once earlier updates of the same chat are done."""
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            async with self._slots:
                await coroutine
            return
        key = chat.id
        if self._waiting.get(key, 0) >= MAX_WAITING_PER_CHAT:
            # A flood from one chat: beyond a short queue its updates are dropped (each one
            # waiting here is a task and memory), and no other chat waits for them.
            log.warning("chat %s sends faster than it is served; an update was dropped", key)
            if inspect.iscoroutine(coroutine):
                coroutine.close()
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock, self._slots:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if self._waiting[key] == 0:
                del self._waiting[key]
                del self._locks[key]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""
