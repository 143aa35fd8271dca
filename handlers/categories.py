"""/categories with follow buttons, and /filter."""

from __future__ import annotations

from telegram import CallbackQuery, Chat, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode

from bot.arguments import MAX_FILTER_WORDS, ArgumentError, parse_filter
from bot.classify import Catalogue, phrase_key
from bot.context import Context
from bot.i18n import Markup, Translator
from handlers.access import command, may_press
from handlers.common import pressed_message, show_pressed, thread_of, translator_for
from handlers.follow import filter_text

BUTTONS_PER_ROW = 2


def categories_keyboard(
    t: Translator, catalogue: Catalogue, followed: set[str], thread_id: int = 0
) -> InlineKeyboardMarkup:
    """One button per category, ticked when followed; a press toggles it in the forum topic
    `thread_id` (named in the button: a keyboard too old for Telegram to show the bot comes
    without its topic)."""
    buttons = [
        InlineKeyboardButton(
            ("✅ " if slug in followed else "") + category.name(t.language),
            callback_data=f"ct:{slug}:{thread_id}",
        )
        for slug, category in catalogue.categories.items()
    ]
    rows = [buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]
    return InlineKeyboardMarkup(rows)


def categories_text(t: Translator) -> Markup:
    """The text above the category buttons."""
    return t.gettext(
        "<b>Job categories</b>\n"
        "Tap a category to follow it (✅) or to stop. You get every job offer of a followed "
        "category from all the accounts jobrelay reads, never company news or events. "
        "You can also type <code>/follow software</code>."
    )


async def categories_command(update: Update, context: Context) -> None:
    """/categories: everyone may look; in a group only administrators' presses change it."""
    call = await command(update, context, changes=False)
    message = update.effective_message
    if call is None or message is None:
        return
    if call.where:  # the buttons act on the chat they are in
        await call.reply(
            update,
            call.t.gettext(
                "Buttons cannot manage another chat: use <code>/follow software in "
                "@yourchannel</code> instead."
            ),
        )
        return
    service = context.bot_data.services.categories
    followed = set(await service.followed(call.chat_id, call.thread_id))
    await message.reply_text(
        categories_text(call.t),
        parse_mode=ParseMode.HTML,
        reply_markup=categories_keyboard(call.t, service.catalogue, followed, call.thread_id),
        do_quote=False,
    )


async def category_button(update: Update, context: Context) -> None:
    """A press on a /categories button: `ct:slug:thread` (`ct:slug` from older keyboards)."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None or query.data is None:
        return
    if chat is None:  # no message to say which chat (inline mode, which the bot does not use)
        await query.answer()
        return
    if not await may_press(update, context):
        return
    t = translator_for(update)
    slug, _, named_thread = query.data.removeprefix("ct:").partition(":")
    thread_id = _pressed_thread(query, chat, named_thread)
    if thread_id is None:
        await query.answer(
            t.plain("This keyboard is too old to tell its topic: send /categories again."),
            show_alert=True,
        )
        return
    service = context.bot_data.services.categories
    category = service.catalogue.categories.get(slug)
    if category is None:  # a button from an older catalogue
        await query.answer(t.plain("This category no longer exists."))
        return
    now_followed = await service.toggle(chat.id, slug, thread_id)
    name = category.name(t.language)
    await query.answer(
        t.plain("Following %(name)s", name=name)
        if now_followed
        else t.plain("Stopped following %(name)s", name=name)
    )
    followed = set(await service.followed(chat.id, thread_id))
    await show_pressed(
        query,
        categories_text(t),
        categories_keyboard(t, service.catalogue, followed, thread_id),
        keyboard_only=True,
        thread_id=thread_id,
    )


MAX_THREAD_ID = 2**31 - 1


def _pressed_thread(query: CallbackQuery, chat: Chat, named: str) -> int | None:
    """The forum topic a category press is about: the pressed message's when Telegram shows
    it, else the one its button names; None when neither can tell (an old keyboard in a
    forum). Outside forums, 0 (no topic) whatever the button says."""
    if not chat.is_forum:
        return 0
    message = pressed_message(query)
    if message is not None:
        return thread_of(message)
    if named.isascii() and named.isdigit() and int(named) <= MAX_THREAD_ID:
        return int(named)
    return None


def _filter_usage(t: Translator) -> Markup:
    return t.gettext(
        "Give words with <b>+</b> for words an offer must contain and <b>-</b> for words it "
        "must not contain, for example <code>/filter +python +remote -stage</code> "
        "(at most %(max)d plain words; <code>/filter off</code> removes the filter). "
        "Words are matched whole, ignoring case and accents, in the text and in the tags "
        "under each offer.",
        max=MAX_FILTER_WORDS,
    )


def _filter_error(t: Translator, code: str) -> Markup:
    messages = {
        "filter_sign": t.gettext(
            "A + or - needs a word right after it, like <code>+python</code>."
        ),
        "filter_word": t.gettext(
            "Each word is letters and digits, at most 40 characters, which . - ' &amp; / may "
            "join (node.js, full-stack, R&amp;D, UX/UI). A + or # inside a word cannot be "
            "matched (c++, c#)."
        ),
        "filter_many": t.gettext("That is more than %(max)d words.", max=MAX_FILTER_WORDS),
        "filter_both": t.gettext("A word cannot be both required (+) and excluded (-)."),
    }
    return messages.get(code, Markup()) + Markup(" ") + t.gettext("Nothing was changed.")


async def filter_command(update: Update, context: Context) -> None:
    """/filter [+word -word ... | off] [in @channel]"""
    call = await command(update, context, changes=bool(context.args))
    if call is None:
        return
    t = call.t
    service = context.bot_data.services.categories
    words = call.words
    if not words:
        terms = await service.get_filter(call.chat_id)
        current = (
            t.gettext("Your filter: %(words)s", words=filter_text(terms))
            if terms
            else t.gettext("You have no filter: every offer you follow reaches you.")
        )
        await call.reply(update, current + Markup("\n\n") + _filter_usage(t))
        return
    if [w.lower() for w in words] in (["off"], ["non"], ["aucun"]):
        await service.set_filter(call.chat_id, [])
        await call.reply(update, t.gettext("Filter removed: every offer you follow reaches you."))
        return
    try:
        terms = parse_filter(words, lambda word: " ".join(phrase_key(word)))
    except ArgumentError as exc:
        await call.reply(update, _filter_error(t, exc.code) + Markup("\n\n") + _filter_usage(t))
        return
    await service.set_filter(call.chat_id, terms)
    await call.reply(
        update,
        t.gettext(
            "Filter saved: %(words)s. It applies to the offers that arrive from now on.",
            words=filter_text(terms),
        ),
    )
