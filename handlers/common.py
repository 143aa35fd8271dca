"""What every handler shares: the caller's language, the chat record, replying in HTML."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass

from telegram import Update
from telegram.constants import ParseMode

from bot.arguments import split_arguments
from bot.context import Context
from bot.i18n import Translator, pick_language, translator


def language_of(update: Update) -> str:
    """The language to answer this update in (the user's Telegram language)."""
    user = update.effective_user
    return pick_language(user.language_code if user else None)


def translator_for(update: Update) -> Translator:
    """The translator for this update's user."""
    return translator(language_of(update))


def handles_text(handles: Iterable[str]) -> str:
    """`@a, @b` with every handle HTML-escaped."""
    return ", ".join(f"@{html.escape(h)}" for h in handles)


async def reply(update: Update, text: str) -> None:
    """Answer in the same chat (and topic), as HTML, without link previews."""
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(
        text, parse_mode=ParseMode.HTML, disable_web_page_preview=True, do_quote=False
    )


async def remember_chat(update: Update, context: Context) -> None:
    """Record every chat that sends the bot a message, and reactivate it (runs before commands)."""
    chat = update.effective_chat
    if chat is None or update.effective_message is None or chat.type == "channel":
        return
    await context.bot_data.services.follows.touch_chat(
        chat_id=chat.id,
        chat_type=chat.type,
        title=chat.title,
        language=language_of(update),
    )


@dataclass(frozen=True, slots=True)
class Invocation:
    """A command as the handlers need it: who (chat), in which language, with which words."""

    t: Translator
    chat_id: int
    words: list[str]


def invocation(update: Update, context: Context) -> Invocation | None:
    """The command's chat, translator and argument words; None for updates without a chat."""
    chat = update.effective_chat
    if chat is None:
        return None
    return Invocation(translator_for(update), chat.id, split_arguments(context.args or []))
