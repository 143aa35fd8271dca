"""One Telegram send with every error python-telegram-bot raises mapped to a plain outcome."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import timedelta

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from bot.send_gate import SendHeld

log = logging.getLogger(__name__)

CHAT_GONE_MARKERS = (
    "chat not found",
    "user is deactivated",
    "bot was kicked",
    "not a member",
    # A group that took away the bot's right to write: it is told when the right comes back
    # (my_chat_member), and the chat's offers wait until then.
    "not enough rights to send",
)
# A forum topic deleted or closed: its offers go to the General topic instead.
TOPIC_GONE_MARKERS = ("thread not found", "topic_closed", "topic closed", "topic_deleted")


class Outcome(enum.Enum):
    """What became of one send."""

    SENT = "sent"
    RETRY = "retry"  # flood limit or network trouble: try again after `retry_after`
    CHAT_GONE = "chat_gone"  # blocked, kicked, deleted: stop writing to the chat
    REJECTED = "rejected"  # Telegram refuses this message for good
    MIGRATED = "migrated"  # the group became a supergroup: `new_chat_id`


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of a send and what goes with it."""

    outcome: Outcome
    message_id: int | None = None
    retry_after: timedelta = timedelta(0)
    new_chat_id: int | None = None
    error: str = ""
    # Telegram gave no answer (a timeout, a network or gateway error): it may not be
    # answering at all, and a timed-out message may still be carried out.
    unanswered: bool = False


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def send_html(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    reply_markup: InlineKeyboardMarkup | None = None,
    network_retry_after: timedelta = timedelta(seconds=1),
    thread_id: int = 0,
) -> SendResult:
    """Send an HTML message without link previews, into a forum topic when `thread_id` is set
    (the General topic if that topic was deleted); never raises for Telegram's answers."""

    async def send(thread: int) -> Message:
        return await bot.send_message(
            chat_id=chat_id,
            text=text,
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            reply_markup=reply_markup,
            message_thread_id=thread or None,
        )

    try:
        try:
            message = await send(thread_id)
        except BadRequest as exc:
            if not thread_id or not any(m in exc.message.lower() for m in TOPIC_GONE_MARKERS):
                raise
            log.info("topic %s of chat %s is gone; sending to General", thread_id, chat_id)
            message = await send(0)
    except ChatMigrated as exc:
        return SendResult(Outcome.MIGRATED, new_chat_id=exc.new_chat_id, error=str(exc))
    except RetryAfter as exc:
        return SendResult(
            Outcome.RETRY, retry_after=timedelta(seconds=_seconds(exc.retry_after)), error=str(exc)
        )
    except Forbidden as exc:
        return SendResult(Outcome.CHAT_GONE, error=exc.message)
    except BadRequest as exc:
        if any(marker in exc.message.lower() for marker in CHAT_GONE_MARKERS):
            return SendResult(Outcome.CHAT_GONE, error=exc.message)
        return SendResult(Outcome.REJECTED, error=exc.message)
    except SendHeld as exc:
        # Never left: Telegram is not answering (see bot.send_gate); due again once it does.
        return SendResult(Outcome.RETRY, error=str(exc))
    except NetworkError as exc:
        # Includes TimedOut: the message may or may not have arrived; retrying keeps
        # "never lost" at the cost of a rare duplicate.
        return SendResult(
            Outcome.RETRY, retry_after=network_retry_after, error=str(exc), unanswered=True
        )
    return SendResult(Outcome.SENT, message_id=message.message_id)
