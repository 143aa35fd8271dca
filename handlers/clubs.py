"""Membership changes of the bot in groups and channels, group upgrades and topic names."""

from __future__ import annotations

import contextlib
import logging

from telegram import Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.context import Context
from bot.throttle import Verdict
from handlers.access import GROUP_ANONYMOUS_BOT_ID
from handlers.common import language_of, reply, requester_id, thread_of, translator_for

log = logging.getLogger(__name__)

GONE = frozenset({ChatMemberStatus.LEFT, ChatMemberStatus.BANNED})


async def bot_membership(update: Update, context: Context) -> None:
    """`my_chat_member`: removed or blocked -> the chat becomes inactive (nothing more is
    sent, its watch is kept); added back -> its watch resumes."""
    change = update.my_chat_member
    if change is None:
        return
    chat = change.chat
    clubs = context.bot_data.services.clubs
    new = change.new_chat_member
    muted = new.status == ChatMemberStatus.RESTRICTED and not getattr(
        new, "can_send_messages", True
    )
    if new.status in GONE or muted:  # removed, or no longer allowed to write there
        await clubs.left(chat.id)
        return
    if new.status in (
        ChatMemberStatus.ADMINISTRATOR,
        ChatMemberStatus.MEMBER,
        ChatMemberStatus.RESTRICTED,  # restricted, but allowed to write
    ):
        user = change.from_user
        await clubs.joined(
            chat_id=chat.id,
            chat_type=chat.type,
            title=chat.title,
            language=language_of(update) if user and user.id != GROUP_ANONYMOUS_BOT_ID else None,
        )


async def group_upgraded(update: Update, context: Context) -> None:
    """A group became a supergroup: its watch, settings and queue move to the new id."""
    message = update.effective_message
    if message is None:
        return
    clubs = context.bot_data.services.clubs
    # Telegram sends both halves (in the old group and in the new supergroup), in no set
    # order; the second finds nothing left to move.
    if message.migrate_to_chat_id is not None:
        await clubs.migrated(message.chat.id, message.migrate_to_chat_id)
    elif message.migrate_from_chat_id is not None:
        await clubs.migrated(message.migrate_from_chat_id, message.chat.id)


async def remember_chat(update: Update, context: Context) -> None:
    """Record every chat that sends the bot a message, and reactivate it (runs before commands;
    the chat's row is written only when something about it changed).

    A group keeps the language it was set up in (by an administrator's command), whoever
    writes in it; a new group starts in the operator's DEFAULT_GROUP_MODE. In a forum, the
    name of the topic a message was written in is noted for /list.
    """
    chat = update.effective_chat
    message = update.effective_message
    if chat is None or message is None or chat.type == ChatType.CHANNEL:
        return
    if message.migrate_to_chat_id is not None:
        return  # the old group's last word: group_upgraded moves it
    if message.left_chat_member is not None:
        return  # e.g. the bot itself removed: my_chat_member decides, this must not revive it
    services = context.bot_data.services
    shared = chat.type != ChatType.PRIVATE
    await services.clubs.heard_from(
        chat_id=chat.id,
        chat_type=chat.type,
        title=chat.title,
        language=language_of(update),
        keep_language=shared,
        digest_only=shared and services.clubs.group_digest,
    )
    thread = thread_of(message)
    if not thread:
        return
    topic = message.reply_to_message
    created = topic.forum_topic_created if topic is not None else None
    edited = message.forum_topic_edited
    if edited is not None and edited.name:
        await services.clubs.remember_topic(chat.id, thread, edited.name)
    elif created is not None and topic is not None and topic.message_id == thread:
        await services.clubs.remember_topic(chat.id, thread, created.name)


def addressed(update: Update) -> bool:
    """Whether the bot answers this update: a button press, a command, anything in a private
    chat (a group's own conversation is not addressed to the bot)."""
    if update.callback_query is not None:
        return True
    chat, message = update.effective_chat, update.effective_message
    text = (message.text or message.caption or "") if message is not None else ""
    return text.startswith("/") or (chat is not None and chat.type == ChatType.PRIVATE)


async def once(update: Update, context: Context) -> None:
    """Drop an update Telegram delivers again (to a receiver that took over before the
    previous one confirmed it; after a restart): a /categories toggle or a /settings "+" must
    count once. Runs right after the throttle, before anything else; only for what the bot
    answers (a group's conversation changes nothing twice and costs no write)."""
    if update.message is None and update.callback_query is None:
        return  # edits are never acted on; membership changes and upgrades are idempotent
    if not addressed(update):
        return
    if not await context.bot_data.services.handled.first_time(update.update_id):
        raise ApplicationHandlerStop


async def throttle(update: Update, context: Context) -> None:
    """COMMANDS_PER_MINUTE per person (before anything else touches the database): past it,
    one "slow down" a minute, and the rest is ignored."""
    requester = requester_id(update)
    if requester is None or not addressed(update):
        return  # a group's own conversation is never counted
    verdict = context.bot_data.services.throttle.check(requester)
    if verdict is Verdict.SERVE:
        return
    if verdict is Verdict.WARN:
        t = translator_for(update)
        limit = context.bot_data.services.settings.commands_per_minute
        text = t.gettext(
            "Slow down: I answer at most %(limit)d messages a minute from one person. I will "
            "read you again in a minute.",
            limit=limit,
        )
        if update.callback_query is not None:
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer(text.striptags()[:200], show_alert=True)
        elif update.effective_message is not None:
            with contextlib.suppress(TelegramError):
                await reply(update, text)
    raise ApplicationHandlerStop
