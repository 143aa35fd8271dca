"""/settings and /forget with their inline buttons."""

from __future__ import annotations

import logging
from datetime import time, timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode

from bot.context import Context
from bot.i18n import Markup, Translator, html_join
from bot.keyboards import LABEL_SUFFIX
from bot.policy import ChatPolicy, is_paused
from handlers.access import GROUP_ANONYMOUS_BOT_ID, command, may_press
from handlers.common import show_pressed, translator_for
from handlers.healthy import settings_summary

log = logging.getLogger(__name__)

LIMIT_STEPS = [0, 1, 2, 3, 5, 10, 15, 20, 30, 50]
NIGHT = (time(22, 0), time(7, 0))


def _step(current: int, direction: int) -> int:
    if direction > 0:
        return next((s for s in LIMIT_STEPS if s > current), LIMIT_STEPS[-1])
    return next((s for s in reversed(LIMIT_STEPS) if s < current), LIMIT_STEPS[0])


def settings_keyboard(
    t: Translator, policy: ChatPolicy, paused: bool, *, private: bool = False
) -> InlineKeyboardMarkup:
    """Buttons for limit, mode, quiet hours and pause (and, in a private chat, ranking: a
    club's offers are merged and go in arrival order)."""

    def tick(label: str, on: bool) -> str:
        return f"✅ {label}" if on else label

    quiet_on = policy.quiet_start is not None
    night = (policy.quiet_start, policy.quiet_end) == NIGHT
    rows = [
        [
            InlineKeyboardButton("−", callback_data="st:limit:-"),
            InlineKeyboardButton(
                t.plain("Limit: %(limit)d/day", limit=policy.daily_limit),
                callback_data=f"st{LABEL_SUFFIX}",
            ),
            InlineKeyboardButton("+", callback_data="st:limit:+"),
        ],
        [
            InlineKeyboardButton(
                tick(t.plain("Instant"), not policy.digest_only), callback_data="st:mode:instant"
            ),
            InlineKeyboardButton(
                tick(t.plain("Daily digest"), policy.digest_only), callback_data="st:mode:digest"
            ),
        ],
        [
            InlineKeyboardButton(
                tick(t.plain("No quiet hours"), not quiet_on), callback_data="st:quiet:off"
            ),
            InlineKeyboardButton(
                tick(t.plain("Quiet 22:00–07:00"), night), callback_data="st:quiet:night"
            ),
        ],
        [
            InlineKeyboardButton(t.plain("▶️ Resume"), callback_data="st:resume")
            if paused
            else InlineKeyboardButton(t.plain("⏸ Pause 1 day"), callback_data="st:pause:1d")
        ],
    ]
    if private:
        rows.append(
            [
                InlineKeyboardButton(
                    tick(t.plain("Best first (learned from ⭐)"), policy.ranking),
                    callback_data="st:rank:on",
                ),
                InlineKeyboardButton(
                    tick(t.plain("In arrival order"), not policy.ranking),
                    callback_data="st:rank:off",
                ),
            ]
        )
    return InlineKeyboardMarkup(rows)


async def _settings_view(
    context: Context, chat_id: int, t: Translator
) -> tuple[Markup, InlineKeyboardMarkup] | None:
    services = context.bot_data.services
    settings = await services.healthy.settings(chat_id)
    if settings is None:
        return None
    now = services.clock.now()
    title = t.gettext("<b>Your settings</b>")
    lines = settings_summary(t, settings.policy, now, shared=chat_id < 0)
    text = html_join([title, *lines], "\n")
    return text, settings_keyboard(
        t, settings.policy, is_paused(settings.policy, now), private=chat_id > 0
    )


async def settings_command(update: Update, context: Context) -> None:
    """/settings: one message with buttons, edited in place as they are pressed (everyone may
    look; in a group only administrators' presses change anything)."""
    call = await command(update, context, changes=False)
    message = update.effective_message
    if call is None or message is None:
        return
    if call.where:  # the buttons act on the chat they are in
        await call.reply(
            update,
            call.t.gettext(
                "Buttons cannot manage another chat: use <code>/digest 18:00 in "
                "@yourchannel</code>, <code>/limit 5 in @yourchannel</code> and the like."
            ),
        )
        return
    view = await _settings_view(context, call.chat_id, call.t)
    if view is not None:
        await message.reply_text(
            view[0], parse_mode=ParseMode.HTML, reply_markup=view[1], do_quote=False
        )


async def settings_button(update: Update, context: Context) -> None:
    """A press on a /settings button."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None or query.data is None:
        return
    if chat is None:  # no message to say which chat (inline mode, which the bot does not use)
        await query.answer()
        return
    if not await may_press(update, context):
        return
    services = context.bot_data.services
    t = translator_for(update)
    settings = await services.healthy.settings(chat.id)
    if settings is None:
        await query.answer()
        return
    policy = settings.policy
    action = query.data.split(":")[1:]
    match action:
        case ["limit", "+" | "-" as sign]:
            await services.healthy.set_limit(
                chat.id, _step(policy.daily_limit, 1 if sign == "+" else -1)
            )
        case ["mode", "instant"]:
            await services.healthy.set_digest_only(chat.id, None)
        case ["mode", "digest"]:
            await services.healthy.set_digest_only(
                chat.id, policy.digest_time, weekday=policy.digest_weekday
            )
        case ["quiet", "off"]:
            await services.healthy.set_quiet(chat.id, None)
        case ["quiet", "night"]:
            await services.healthy.set_quiet(chat.id, NIGHT)
        case ["pause", "1d"]:
            await services.healthy.pause(chat.id, services.clock.now() + timedelta(days=1))
        case ["resume"]:
            await services.healthy.resume(chat.id)
        case ["rank", "on" | "off" as state] if chat.id > 0:
            await services.healthy.set_ranking(chat.id, state == "on")
        case _:
            await query.answer()
            return
    await query.answer(t.plain("Saved"))
    view = await _settings_view(context, chat.id, t)
    if view is not None:
        await show_pressed(query, view[0], view[1])


async def forget_command(update: Update, context: Context) -> None:
    """/forget: asks for confirmation first (in a group, only its administrators may)."""
    call = await command(update, context, changes=True)
    message = update.effective_message
    user = update.effective_user
    if call is None or message is None or user is None:
        return
    if call.where:
        await call.reply(
            update,
            call.t.gettext(
                "/forget only works for the chat it is sent in: send it in that group, or "
                "remove me from the channel. Nothing was changed."
            ),
        )
        return
    t = call.t
    # Only the person who asked may answer (in a group, anyone can see the buttons).
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t.plain("🗑 Yes, delete everything"), callback_data=f"fg:yes:{user.id}"
                ),
                InlineKeyboardButton(t.plain("Cancel"), callback_data=f"fg:no:{user.id}"),
            ]
        ]
    )
    await message.reply_text(
        t.plain(
            "This deletes everything jobrelay stores about this chat: the accounts you follow, "
            "your settings, the offers waiting for you and your statistics. Are you sure?"
        ),
        reply_markup=keyboard,
        do_quote=False,
    )


async def forget_button(update: Update, context: Context) -> None:
    """The answer to /forget's question (told in a new message when the question can no
    longer be edited: the chat is deleted all the same)."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None:
        return
    if chat is None:
        await query.answer()
        return
    t = translator_for(update)
    parts = (query.data or "").split(":")
    answer = parts[1] if len(parts) > 1 else ""
    asker = parts[2] if len(parts) > 2 else ""
    # An anonymous administrator's /forget carries Telegram's stand-in account: then any
    # administrator may answer.
    if asker not in (str(query.from_user.id), str(GROUP_ANONYMOUS_BOT_ID)):
        await query.answer(t.plain("Only the person who sent /forget can answer."))
        return
    if not await may_press(update, context):  # no longer an administrator
        return
    await query.answer()
    if answer == "yes":
        await context.bot_data.services.healthy.forget(chat.id)
        await show_pressed(
            query,
            t.gettext("Done: nothing about this chat is stored any more. /start to begin again."),
        )
    else:
        await show_pressed(query, t.gettext("Cancelled: nothing was deleted."))
