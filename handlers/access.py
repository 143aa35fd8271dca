"""Who may change a chat's watch, and which chat (and forum topic) a command is about.

In a private chat a person manages their own watch. In a group or supergroup only its
administrators change anything (Telegram is asked with `getChatMember` at every command; an
anonymous administrator writes as the group itself); everyone may read /list, /categories,
/stats and /help. From a private chat, a trailing `in @channel` (or `in -100…`) manages a
channel or group, only when Telegram says both the person and the bot administer it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from telegram import Bot, Chat, ChatMember, Message, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.arguments import split_arguments
from bot.context import Context
from bot.i18n import Markup, Translator
from handlers.common import language_of, reply, thread_of, translator_for

log = logging.getLogger(__name__)

ADMINS = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})
# Telegram's account that stands for an anonymous group administrator.
GROUP_ANONYMOUS_BOT_ID = 1087968824
_CHAT_NAME_RE = re.compile(
    r"^(?:@|(?:https?://)?t\.me/)(?P<name>[A-Za-z][A-Za-z0-9_]{3,31})$|^(?P<id>-100[0-9]{6,16})$"
)
IN_WORDS = frozenset({"in", "dans"})


@dataclass(frozen=True, slots=True)
class Call:
    """A command as the handlers need it: the chat (and forum topic) it is about, in which
    language to answer, with which argument words; `where` names another chat managed from
    here (`in @channel`)."""

    t: Translator
    chat_id: int
    words: list[str]
    thread_id: int = 0
    where: str | None = None
    shared: bool = False  # a group, supergroup or channel

    async def reply(self, update: Update, text: Markup) -> None:
        """Answer in the chat (and topic) of the command, naming the managed chat if another."""
        await reply(update, Markup("<b>%s</b> · %s") % (self.where, text) if self.where else text)


def _split_target(words: list[str]) -> tuple[list[str], str | None, bool]:
    """(words, the chat named after a trailing `in`, whether `in` was given at all)."""
    if len(words) >= 2 and words[-2].lower() in IN_WORDS:
        return words[:-2], words[-1], True
    if words and words[-1].lower() in IN_WORDS:
        return words[:-1], None, True
    return words, None, False


async def command(update: Update, context: Context, *, changes: bool) -> Call | None:
    """The chat a command is about, after checking the caller may do it; None when the
    command must stop (the caller was already told why)."""
    chat, message, user = update.effective_chat, update.effective_message, update.effective_user
    if chat is None or message is None:
        return None
    t = translator_for(update)
    words, named, given = _split_target(split_arguments(context.args or []))
    if given:
        if chat.type != ChatType.PRIVATE:
            await reply(
                update,
                t.gettext(
                    "<code>in @channel</code> works in a private chat with me; here, commands "
                    "are about this chat."
                )
                + _unchanged(t, changes),
            )
            return None
        if user is None:
            return None
        return await _elsewhere(update, context, t, words, named, user, changes)
    shared = chat.type != ChatType.PRIVATE
    if shared and changes and not await _may_change(update, context, t, chat, message, user):
        return None
    if shared and changes and user is not None and user.id != GROUP_ANONYMOUS_BOT_ID:
        # A club speaks the language of the administrator who last set it up.
        await context.bot_data.services.clubs.heard_from(
            chat_id=chat.id, chat_type=chat.type, title=chat.title, language=language_of(update)
        )
    return Call(t, chat.id, words, thread_of(message), None, shared)


async def _may_change(
    update: Update,
    context: Context,
    t: Translator,
    chat: Chat,
    message: Message,
    user: User | None,
) -> bool:
    sender_chat = message.sender_chat
    if sender_chat is not None:
        # An anonymous administrator writes as the group itself; a channel writing in the group
        # (a linked channel, or someone posting as a channel) manages nothing.
        if sender_chat.id == chat.id:
            return True
        await reply(update, _members_refusal(t))
        return False
    if user is None:
        return False
    try:
        member = await context.bot.get_chat_member(chat.id, user.id)
    except TelegramError as exc:
        log.warning("could not check the rights of a member of chat %s: %s", chat.id, exc)
        await reply(update, _unreachable(t))
        return False
    if member.status in ADMINS:
        return True
    await reply(update, _members_refusal(t))
    return False


def _members_refusal(t: Translator) -> Markup:
    return t.gettext(
        "Only this group's administrators can change what it follows and how it receives "
        "offers. Everyone can use /list, /categories, /stats and /help."
    )


def _unchanged(t: Translator, changes: bool) -> Markup:
    """The closing "Nothing was changed." of a refusal, for a command that changes things."""
    return Markup(" ") + t.gettext("Nothing was changed.") if changes else Markup()


def _unreachable(t: Translator, where: str | None = None, changes: bool = True) -> Markup:
    if where:
        return t.gettext(
            "Telegram could not be reached to check %(chat)s; please try again in a minute.",
            chat=where,
        ) + _unchanged(t, changes)
    return t.gettext(
        "Telegram could not be reached to check your rights here; please try again in a minute."
    ) + _unchanged(t, changes)


async def _elsewhere(
    update: Update,
    context: Context,
    t: Translator,
    words: list[str],
    named: str | None,
    user: User,
    changes: bool,
) -> Call | None:
    """`… in @channel` from a private chat: both the person and the bot must administer it."""
    match = _CHAT_NAME_RE.match(named or "")
    if match is None:
        await reply(
            update,
            t.gettext(
                "After <code>in</code>, name a channel or group by its @username or its id: "
                "<code>in @parisjobsclub</code> or <code>in -1001234567890</code>."
            )
            + _unchanged(t, changes),
        )
        return None
    key: str | int = f"@{match['name']}" if match["name"] else int(match["id"])
    shown = str(key)
    bot = context.bot
    try:
        target = await bot.get_chat(key)
    except (BadRequest, Forbidden):
        await reply(
            update,
            t.gettext(
                "I cannot find %(chat)s. Check its name, and add me to it as an administrator "
                "first.",
                chat=shown,
            )
            + _unchanged(t, changes),
        )
        return None
    except TelegramError as exc:
        log.warning("could not look up a chat for 'in': %s", exc)
        await reply(update, _unreachable(t, shown, changes))
        return None
    shown = f"@{target.username}" if target.username else (target.title or shown)
    if target.type == ChatType.PRIVATE:
        await reply(
            update,
            t.gettext(
                "%(chat)s is a person, not a channel or group.",
                chat=shown,
            )
            + _unchanged(t, changes),
        )
        return None
    # The bot's own rights first: where it is not a member, Telegram answers nothing about
    # anyone else.
    try:
        me = await _member(bot, target.id, bot.id)
        member = await _member(bot, target.id, user.id)
    except _Unreachable:
        await reply(update, _unreachable(t, shown, changes))
        return None
    if me is None or me.status != ChatMemberStatus.ADMINISTRATOR:
        await reply(
            update,
            t.gettext(
                "I am not an administrator of %(chat)s. Add me as an administrator allowed to "
                "post messages, then try again.",
                chat=shown,
            )
            + _unchanged(t, changes),
        )
        return None
    if member is None or member.status not in ADMINS:
        await reply(
            update,
            t.gettext(
                "Only administrators of %(chat)s can do that, and Telegram says you are not one.",
                chat=shown,
            )
            + _unchanged(t, changes),
        )
        return None
    await context.bot_data.services.clubs.heard_from(
        chat_id=target.id,
        chat_type=target.type,
        title=target.title,
        language=language_of(update),
        digest_only=context.bot_data.services.clubs.group_digest,
    )
    return Call(t, target.id, words, 0, shown, True)


class _Unreachable(Exception):
    """Telegram could not be asked (network trouble)."""


async def _member(bot: Bot, chat_id: int, user_id: int) -> ChatMember | None:
    """The member's record; None when Telegram refuses to say (not a member, no access)."""
    try:
        return await bot.get_chat_member(chat_id, user_id)
    except (BadRequest, Forbidden):
        return None
    except TelegramError as exc:
        log.warning("could not check the rights in chat %s: %s", chat_id, exc)
        raise _Unreachable from exc


async def may_press(update: Update, context: Context) -> bool:
    """Whether the person pressing a settings or category button in a group administers it
    (answering the press with a refusal otherwise)."""
    query, chat = update.callback_query, update.effective_chat
    if query is None or chat is None:
        return False
    if chat.type == ChatType.PRIVATE:
        return True
    t = translator_for(update)
    try:
        member = await context.bot.get_chat_member(chat.id, query.from_user.id)
    except TelegramError as exc:
        log.warning("could not check the rights of a member of chat %s: %s", chat.id, exc)
        await query.answer(_strip_tags(_unreachable(t)), show_alert=True)
        return False
    if member.status in ADMINS:
        return True
    await query.answer(_strip_tags(_members_refusal(t)), show_alert=True)
    return False


def _strip_tags(text: Markup) -> str:
    return text.striptags()[:200]
