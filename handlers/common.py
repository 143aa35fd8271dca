"""What every handler shares: the caller's language, the chat record, replying in HTML."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.i18n import Markup, Translator, html_join, pick_language, translator
from bot.render import telegram_length
from bot.sources.base import bounded

log = logging.getLogger(__name__)


def language_of(update: Update) -> str:
    """The language to answer this update in (the user's Telegram language)."""
    user = update.effective_user
    return pick_language(user.language_code if user else None)


def requester_id(update: Update) -> int | None:
    """Who the limits (COMMANDS_PER_MINUTE, X lookups) count a message against: its person, or
    the chat it was written as (an anonymous administrator, a channel): Telegram gives all of
    those one shared account, which must not share one allowance across every group."""
    message = update.effective_message
    if update.callback_query is None and message is not None and message.sender_chat:
        return message.sender_chat.id
    user = update.effective_user
    return user.id if user is not None else None


def translator_for(update: Update) -> Translator:
    """The translator for this update's user."""
    return translator(language_of(update))


def handles_text(handles: Iterable[str]) -> Markup:
    """`@a, @b` with every handle HTML-escaped."""
    return html_join(f"@{h}" for h in handles)


def shorten(text: str, limit: int = 40) -> str:
    """`text` cut to `limit` characters, ending with "…" when it was cut (what a reply quotes
    is cut as a post is)."""
    return bounded(text, limit)


def code(text: str, limit: int = 40) -> Markup:
    """What someone typed, quoted as `<code>` (escaped, shortened with "…") on one line: its
    line breaks (an OPML attribute may hold some) are spaces, so that `split_reply`, which cuts
    between lines, never cuts between `<code>` and `</code>`."""
    return Markup("<code>%s</code>") % shorten(" ".join(text.split()), limit)


def quoted_words(words: list[str], shown: int = 5, limit: int = 40) -> Markup:
    """The first `shown` words quoted, then how many more: `<code>a</code>, <code>b</code> …
    (+3)`."""
    quoted = html_join(code(word, limit) for word in words[:shown])
    return quoted + f" … (+{len(words) - shown})" if len(words) > shown else quoted


# Telegram takes 4,096 characters a message (after entity parsing), counted in UTF-16 units
# (an emoji or a 𝐛𝐨𝐥𝐝 letter is two); raw HTML is longer than what it shows, so a reply cut
# under this many raw UTF-16 units always fits.
REPLY_LIMIT = 4000


def split_reply(text: Markup, limit: int = REPLY_LIMIT) -> list[str]:
    """A reply as messages of at most `limit` UTF-16 units, cut between lines (a line carries
    whole HTML tags); a single longer line is a message of its own."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        length = telegram_length(line)
        if current and size + 1 + length > limit:
            parts.append("\n".join(current).strip("\n"))
            current, size = [], 0
        current.append(line)
        size += length + (1 if len(current) > 1 else 0)
    if current:
        parts.append("\n".join(current).strip("\n"))
    return [part for part in parts if part] or [text]


async def reply(update: Update, text: Markup) -> None:
    """Answer in the same chat (and topic), as HTML, without link previews; a long answer (a
    /list of many feeds, an /import report) as several messages."""
    message = update.effective_message
    if message is None:
        return
    for part in split_reply(text):
        await message.reply_text(
            part, parse_mode=ParseMode.HTML, disable_web_page_preview=True, do_quote=False
        )


def thread_of(message: Message | None) -> int:
    """The forum topic a message was written in (0: none, or General)."""
    if message is None or not message.is_topic_message or message.message_thread_id is None:
        return 0
    return message.message_thread_id


def pressed_message(query: CallbackQuery) -> Message | None:
    """The message whose button was pressed, while Telegram still shows it to the bot: an old
    or deleted one comes as an InaccessibleMessage (date 0, no content, no topic)."""
    message = query.message
    return message if isinstance(message, Message) and message.is_accessible else None


async def show_pressed(
    query: CallbackQuery,
    text: Markup,
    keyboard: InlineKeyboardMarkup | None = None,
    *,
    keyboard_only: bool = False,
    thread_id: int | None = None,
) -> None:
    """Show what a press changed where it was pressed: the message edited in place (only its
    keyboard with `keyboard_only`). When Telegram no longer lets the bot edit it (too old,
    deleted), `text` and `keyboard` come as a new message in the same chat and topic
    (`thread_id`, or the pressed message's), so the person still sees the outcome."""
    message = pressed_message(query)
    if message is not None:
        try:
            if keyboard_only:
                await query.edit_message_reply_markup(keyboard)
            else:
                await query.edit_message_text(
                    text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard,
                    disable_web_page_preview=True,
                )
            return
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return  # two quick presses: it shows this already
            log.info("a pressed message cannot be edited (%s); answering anew", exc.message)
    # An InaccessibleMessage still names its chat; without any (a press in inline mode, which
    # the bot does not use), the person's private chat.
    chat = query.message.chat if query.message is not None else None
    await query.get_bot().send_message(
        chat.id if chat is not None else query.from_user.id,
        text,
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard,
        message_thread_id=(thread_id if thread_id is not None else thread_of(message)) or None,
        disable_web_page_preview=True,
    )
