"""A delivery: outbox rows -> Telegram messages, with Telegram's errors mapped to outbox states.

Each row is claimed with a lease, sent, and settled in its own short transaction right after
Telegram answers, so a crash can at most resend the one message Telegram accepted in the
instant before it (at-least-once with the smallest window Telegram allows).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from bot.clock import Clock
from bot.i18n import translator
from bot.render import render_notice, render_offer
from storage import chats, outbox
from storage.models import DeliveryKind
from storage.outbox import ClaimedDelivery

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = timedelta(minutes=10)
CHAT_GONE_MARKERS = ("chat not found", "user is deactivated", "bot was kicked", "not a member")


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def render(row: ClaimedDelivery) -> str:
    """The HTML of one outbox row, in its chat's language."""
    t = translator(row.language)
    if row.kind is DeliveryKind.NOTICE:
        return render_notice(t, row.payload or {})
    return render_offer(
        t, author=row.offer_author or "", text=row.offer_text or "", url=row.offer_url or ""
    )


class Sender:
    """Drains the outbox within Telegram's limits (metered by the bot's AIORateLimiter)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        bot: Bot,
        lease_seconds: float,
        concurrency: int = 32,
        batch_size: int = 100,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._bot = bot
        self._lease = timedelta(seconds=lease_seconds)
        self._concurrency = asyncio.Semaphore(concurrency)
        self._batch_size = batch_size
        self._stopping = False

    def stop(self) -> None:
        """Finish the messages in flight, hand the rest back to the outbox, claim no more."""
        self._stopping = True

    async def drain(self) -> int:
        """Send every due row, batch after batch, until none is due; how many were sent."""
        sent = 0
        while not self._stopping:
            now = self._clock.now()
            async with self._sessions.begin() as session:
                rows = await outbox.claim(
                    session, now=now, lease_until=now + self._lease, limit=self._batch_size
                )
            if not rows:
                return sent
            by_chat: dict[int, list[ClaimedDelivery]] = defaultdict(list)
            for row in rows:
                by_chat[row.chat_id].append(row)
            results = await asyncio.gather(*(self._send_chat(rs) for rs in by_chat.values()))
            sent += sum(results)
        return sent

    async def _send_chat(self, rows: list[ClaimedDelivery]) -> int:
        """One chat's rows in order (oldest offer first); chats go in parallel."""
        sent = 0
        for index, row in enumerate(rows):
            if self._stopping:
                await self._release(rows[index:], "the sender stopped before this one")
                break
            async with self._concurrency:
                outcome = await self._send(row)
            if outcome == "sent":
                sent += 1
            elif outcome == "chat_gone":
                # The chat's other rows stay pending; they wait until it comes back.
                await self._release(rows[index + 1 :], "chat unreachable")
                break
            elif outcome == "retry":
                # Keep this chat's order: the rest wait for the row that must be retried.
                await self._release(rows[index + 1 :], "waiting for an earlier message")
                break
        return sent

    async def _release(self, rows: list[ClaimedDelivery], reason: str) -> None:
        if not rows:
            return
        now = self._clock.now()
        async with self._sessions.begin() as session:
            for row in rows:
                await outbox.retry_later(session, delivery_id=row.delivery_id, at=now, error=reason)

    async def _send(self, row: ClaimedDelivery) -> str:
        chat_id = row.chat_id
        text = render(row)
        attempted_at = self._clock.now()
        for _ in range(2):  # a second go only after a group moved to a supergroup
            try:
                message = await self._bot.send_message(
                    chat_id=chat_id,
                    text=text,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            except ChatMigrated as exc:
                log.info("chat %s moved to %s; moving its data", chat_id, exc.new_chat_id)
                async with self._sessions.begin() as session:
                    await chats.migrate_chat(session, chat_id, exc.new_chat_id, self._clock.now())
                chat_id = exc.new_chat_id
                continue
            except RetryAfter as exc:
                await self._retry(row, timedelta(seconds=_seconds(exc.retry_after)), str(exc))
                return "retry"
            except Forbidden as exc:
                await self._chat_gone(row, chat_id, str(exc), attempted_at)
                return "chat_gone"
            except BadRequest as exc:
                if any(marker in exc.message.lower() for marker in CHAT_GONE_MARKERS):
                    await self._chat_gone(row, chat_id, str(exc), attempted_at)
                    return "chat_gone"
                log.error("Telegram rejected delivery %s for good: %s", row.delivery_id, exc)
                async with self._sessions.begin() as session:
                    await outbox.mark_failed(
                        session, delivery_id=row.delivery_id, error=exc.message
                    )
                return "failed"
            except NetworkError as exc:
                # Includes TimedOut: the message may or may not have arrived; retrying keeps
                # "never lost" at the cost of a rare duplicate.
                delay = timedelta(
                    seconds=min(2 ** (row.attempts - 1), MAX_RETRY_DELAY.total_seconds())
                )
                log.warning(
                    "sending delivery %s failed (%s); retry in %s", row.delivery_id, exc, delay
                )
                await self._retry(row, delay, str(exc))
                return "retry"
            async with self._sessions.begin() as session:
                await outbox.mark_sent(
                    session,
                    delivery_id=row.delivery_id,
                    message_id=message.message_id,
                    now=self._clock.now(),
                )
            return "sent"
        await self._retry(row, timedelta(seconds=1), "chat migrated twice")
        return "retry"

    async def _retry(self, row: ClaimedDelivery, delay: timedelta, error: str) -> None:
        async with self._sessions.begin() as session:
            await outbox.retry_later(
                session, delivery_id=row.delivery_id, at=self._clock.now() + delay, error=error
            )

    async def _chat_gone(
        self, row: ClaimedDelivery, chat_id: int, error: str, attempted_at: datetime
    ) -> None:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            # A chat that wrote to the bot while this send was in flight is back: keep it.
            if await chats.deactivate_chat(session, chat_id, now, unless_heard_since=attempted_at):
                log.info("chat %s is unreachable (%s); it is now inactive", chat_id, error)
            await outbox.retry_later(session, delivery_id=row.delivery_id, at=now, error=error)
