"""What every handler shares: the caller's language, the chat record, replying in HTML."""

from __future__ import annotations

import html
from collections.abc import Iterable

from telegram import Update
from telegram.constants import ParseMode

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
