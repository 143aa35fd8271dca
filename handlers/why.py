"""/why, in reply to a pushed offer: how the reader read it, and the strongest signals."""

from __future__ import annotations

import asyncio

from telegram import Update

from bot.classify import catalogue
from bot.context import Context
from bot.why import explain
from handlers.common import language_of, reply, translator_for


async def why(update: Update, context: Context) -> None:
    """/why (a reply to an offer the bot pushed in this chat)."""
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None:
        return
    t = translator_for(update)
    replied = message.reply_to_message
    if replied is None:
        await reply(
            update,
            t.gettext(
                "Send /why as a reply to an offer I pushed here, and I will tell you why I "
                "read it as an offer, in which categories."
            ),
        )
        return
    text = await context.bot_data.services.admin.offer_text(chat.id, replied.message_id)
    if text is None:
        await reply(
            update,
            t.gettext(
                "That message is not an offer I pushed to this chat (offers inside a digest "
                "and offers older than the retention period cannot be explained)."
            ),
        )
        return
    # Off the loop: a reading of a 4,000-character post is tens of milliseconds.
    answer = await asyncio.to_thread(explain, t, catalogue(), text, language_of(update))
    await reply(update, answer)
