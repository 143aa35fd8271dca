"""⭐ Save / ✅ Applied / 👎 Not for me under offers, /saved, /applied with their buttons, and
/export applications (a CSV document)."""

from __future__ import annotations

import logging
import math
from datetime import datetime

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.context import Context
from bot.i18n import Markup, Translator, html_join
from bot.keyboards import (
    MAX_DELIVERY_ID,
    MUTE_PREFIX,
    TRACKER_PREFIX,
    is_small_number,
    offer_keyboard,
    parse_feedback,
    ticked_list,
)
from bot.render import is_web_link, link, post_link_label, source_name
from bot.tracker import (
    MAX_PAGE,
    MAX_TRACKED,
    MUTE_AFTER,
    PAGE_SIZE,
    Page,
    Pressed,
    applications_csv,
    excerpt,
)
from handlers.access import command, may_press
from handlers.common import pressed_message, show_pressed, translator_for
from storage.applications import Tracked
from storage.models import ApplicationStatus

log = logging.getLogger(__name__)

LIST_EXCERPT = 160  # characters of an offer's text in /saved and /applied
# `tk:x:<application id>:<code>:<page>`: what a button under /saved or /applied does.
_STATUS_CODES: dict[str, ApplicationStatus | None] = {
    "a": ApplicationStatus.APPLIED,
    "r": None,  # removed from /saved
    "i": ApplicationStatus.INTERVIEW,
    "o": ApplicationStatus.OFFER,
    "j": ApplicationStatus.REJECTED,
}
_SAVED_BUTTONS = (("✅", "a"), ("🗑", "r"))
_APPLIED_BUTTONS = (("🗣", "i"), ("🎉", "o"), ("✖", "j"))


def _toast(t: Translator, pressed: Pressed) -> str:
    """The short answer to a press under an offer."""
    return {
        "saved": t.plain("Saved: /saved lists it."),
        "unsaved": t.plain("No longer saved."),
        "applied": t.plain("Marked as applied: /applied lists it."),
        "unapplied": t.plain("No longer marked as applied (still saved)."),
        "not_for_me": t.plain("Noted: not for you."),
        "cleared": t.plain("“Not for me” undone."),
        "advanced": t.plain("Its status (interview, offer, answer) is changed from /applied."),
        "full": t.plain(
            "You keep %(count)d offers already, the most I store: remove some from /saved "
            "(🗑) first.",
            count=MAX_TRACKED,
        ),
    }.get(
        pressed.outcome,
        t.plain("You applied to this one: press ✅ Applied first to undo it."),
    )


async def feedback_button(update: Update, context: Context) -> None:
    """⭐ / ✅ / 👎 under an offer (or ⭐ under a digest): acted on, answered with a toast, and
    the buttons edited in place to show what is on; pressing again undoes."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None or query.data is None:
        return
    if chat is None:
        await query.answer()
        return
    t = translator_for(update)
    mark = parse_feedback(query.data)
    if mark is None:
        await query.answer()
        return
    # In a group, a member's press would speak for the whole club: only its administrators'
    # presses count (may_press answers the others).
    if not await may_press(update, context):
        return
    # The delivery must be this chat's: another chat's id, forged, is "no longer stored".
    pressed = await context.bot_data.services.tracker.press(chat.id, mark.delivery_id, mark.action)
    if pressed is None:
        await query.answer(t.plain("This offer is no longer stored."))
        return
    await query.answer(_toast(t, pressed))
    if pressed.mute is not None:
        await _offer_mute(query, t, *pressed.mute)
    message = pressed_message(query)
    if message is None:
        return  # too old to edit: the answer above is the confirmation
    if mark.listed:
        if message.reply_markup is None:
            return
        keyboard = ticked_list(message.reply_markup, query.data, pressed.marks.saved)
    else:
        keyboard = offer_keyboard(
            t,
            mark.delivery_id,
            saved=pressed.marks.saved and not pressed.marks.applied,
            applied=pressed.marks.applied,
            not_for_me=pressed.marks.not_for_me,
        )
    try:
        await query.edit_message_reply_markup(keyboard)
    except BadRequest as exc:  # the answer above said it was noted
        if "not modified" not in exc.message.lower():  # (not: two quick presses)
            log.info("the buttons of an offer cannot be edited: %s", exc.message)


async def _offer_mute(query: CallbackQuery, t: Translator, source_id: int, name: str) -> None:
    """After three 👎 on one source's offers: a message with a one-tap mute."""
    chat = query.message.chat if query.message is not None else None
    if chat is None:
        return
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t.plain("🔇 Stop following %(name)s", name=name),
                    callback_data=f"{MUTE_PREFIX}:{source_id}",
                )
            ]
        ]
    )
    await query.get_bot().send_message(
        chat.id,
        t.gettext(
            "You marked %(count)d offers of %(name)s as not for you. Stop following it?",
            count=MUTE_AFTER,
            name=name,
        ),
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard,
    )


async def mute_button(update: Update, context: Context) -> None:
    """🔇 under the mute offer: stop following that source (in a group, administrators only)."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None or query.data is None:
        return
    if chat is None:
        await query.answer()
        return
    number = query.data.partition(":")[2]
    if not is_small_number(number, MAX_DELIVERY_ID):
        await query.answer()
        return
    if not await may_press(update, context):
        return
    t = translator_for(update)
    await query.answer()
    if await context.bot_data.services.tracker.mute(chat.id, int(number)):
        await show_pressed(query, t.gettext("Done: you no longer follow it. /list shows the rest."))
    else:
        await show_pressed(query, t.gettext("You no longer follow it: nothing to do."))


def _age(t: Translator, then: datetime, now: datetime) -> str:
    days = max((now - then).days, 0)
    if days == 0:
        return t.plain("today")
    return t.nplain("%(count)d day ago", "%(count)d days ago", days)


def _status_label(t: Translator, status: ApplicationStatus) -> str:
    return {
        ApplicationStatus.SAVED: t.plain("saved"),
        ApplicationStatus.APPLIED: t.plain("applied"),
        ApplicationStatus.INTERVIEW: t.plain("🗣 interview"),
        ApplicationStatus.OFFER: t.plain("🎉 offer"),
        ApplicationStatus.REJECTED: t.plain("✖ rejected"),
    }[status]


def _item(t: Translator, number: int, item: Tracked, applied: bool, now: datetime) -> Markup:
    """One offer of /saved or /applied: number, source, age (or date applied and status),
    excerpt, Apply and post links."""
    if applied and item.applied_at is not None:
        when = t.gettext(
            "applied %(date)s · %(status)s",
            date=item.applied_at.date().isoformat(),
            status=_status_label(t, item.status),
        )
    else:
        when = Markup.escape(_age(t, item.saved_at, now))
    links = []
    apply_url = (item.tags or {}).get("apply_url")
    if isinstance(apply_url, str) and is_web_link(apply_url):
        links.append(link(apply_url, f"👉 {t.plain('Apply')}"))
    links.append(link(item.url, post_link_label(t, item.author)))
    head = Markup("<b>%d.</b> %s · %s") % (number, source_name(item.author), when)
    return html_join([head, excerpt(item.text, LIST_EXCERPT), html_join(links, " · ")], "\n")


def _view(
    t: Translator, page: Page, *, applied: bool, now: datetime
) -> tuple[Markup, InlineKeyboardMarkup | None]:
    """The text and buttons of one page of /saved or /applied."""
    kind = "a" if applied else "s"
    if not page.items:
        if applied:
            return t.gettext(
                "No applications yet. Press ✅ Applied under an offer (or in /saved) once you "
                "have applied: it is listed here with its date, and "
                "<code>/export applications</code> gives it as a spreadsheet."
            ), None
        return t.gettext(
            "Nothing saved yet. Press ⭐ Save under an offer (or under a digest) to keep it "
            "here for later, even after old offers are deleted."
        ), None
    title = (
        t.gettext("<b>Your applications</b> (%(total)d)", total=page.total)
        if applied
        else t.gettext("<b>Your saved offers</b> (%(total)d)", total=page.total)
    )
    first = page.page * PAGE_SIZE
    lines = [title]
    rows: list[list[InlineKeyboardButton]] = []
    buttons = _APPLIED_BUTTONS if applied else _SAVED_BUTTONS
    for offset, item in enumerate(page.items):
        number = first + offset + 1
        lines.append(_item(t, number, item, applied, now))
        rows.append(
            [
                InlineKeyboardButton(
                    f"{icon} {number}",
                    callback_data=f"{TRACKER_PREFIX}:x:{item.application_id}:{code}:{page.page}",
                )
                for icon, code in buttons
            ]
        )
    lines.append(
        t.gettext("🗣 interview · 🎉 offer · ✖ rejected, for the application of that number.")
        if applied
        else t.gettext("✅ I applied · 🗑 remove, for the offer of that number.")
    )
    nav = []
    if page.page > 0:
        nav.append(
            InlineKeyboardButton("◀", callback_data=f"{TRACKER_PREFIX}:p:{kind}:{page.page - 1}")
        )
    if page.pages > 1:
        nav.append(
            InlineKeyboardButton(
                f"{page.page + 1}/{page.pages}", callback_data=f"{TRACKER_PREFIX}:noop"
            )
        )
    if page.page + 1 < page.pages:
        nav.append(
            InlineKeyboardButton("▶", callback_data=f"{TRACKER_PREFIX}:p:{kind}:{page.page + 1}")
        )
    if nav:
        rows.append(nav)
    return html_join(lines, "\n\n"), InlineKeyboardMarkup(rows)


async def _list_command(update: Update, context: Context, *, applied: bool) -> None:
    call = await command(update, context, changes=False)
    message = update.effective_message
    if call is None or message is None:
        return
    if call.where:  # the buttons act on the chat they are in
        await call.reply(
            update,
            call.t.gettext(
                "/saved and /applied work in the chat whose offers they list: send them there."
            ),
        )
        return
    tracker = context.bot_data.services.tracker
    page = await tracker.page(call.chat_id, applied=applied, page=0)
    text, keyboard = _view(call.t, page, applied=applied, now=tracker.now())
    await message.reply_text(
        text,
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard,
        disable_web_page_preview=True,
        do_quote=False,
    )


async def saved_command(update: Update, context: Context) -> None:
    """/saved: the offers saved with ⭐, newest first, a page at a time."""
    await _list_command(update, context, applied=False)


async def applied_command(update: Update, context: Context) -> None:
    """/applied: the applications with their date and status, newest first."""
    await _list_command(update, context, applied=True)


async def tracker_button(update: Update, context: Context) -> None:
    """◀ ▶ and the status buttons of /saved and /applied (in a group, administrators only)."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None or query.data is None:
        return
    if chat is None:
        await query.answer()
        return
    parts = query.data.split(":")
    match parts:
        case [_, "p", "s" | "a" as kind, page] if is_small_number(page, MAX_PAGE):
            applied, number = kind == "a", int(page)
        case [_, "x", app, code, page] if (
            code in _STATUS_CODES
            and is_small_number(app, MAX_DELIVERY_ID)
            and is_small_number(page, MAX_PAGE)
        ):
            applied, number = code in "ioj", int(page)
            if not await may_press(update, context):
                return
            t = translator_for(update)
            if not await context.bot_data.services.tracker.set_status(
                chat.id, int(app), _STATUS_CODES[code]
            ):
                await query.answer(t.plain("This offer is no longer stored."))
                return
            await query.answer(t.plain("Saved"))
        case _:
            await query.answer()  # a label, or forged data
            return
    tracker = context.bot_data.services.tracker
    t = translator_for(update)
    view = await tracker.page(chat.id, applied=applied, page=number)
    if query.data.startswith(f"{TRACKER_PREFIX}:p:"):
        await query.answer()
    text, keyboard = _view(t, view, applied=applied, now=tracker.now())
    await show_pressed(query, text, keyboard)


async def export_applications(update: Update, context: Context) -> None:
    """/export applications: one CSV row per application (the newest MAX_EXPORT_ROWS)."""
    call = await command(update, context, changes=False)
    message = update.effective_message
    if call is None or message is None:
        return
    t = call.t
    tracker = context.bot_data.services.tracker
    wait = tracker.export_wait(call.chat_id)
    if wait is not None:
        await call.reply(
            update,
            t.ngettext(
                "You exported your applications a moment ago: try again in %(count)d second.",
                "You exported your applications a moment ago: try again in %(count)d seconds.",
                max(1, math.ceil(wait.total_seconds())),
            ),
        )
        return
    rows, total = await tracker.export(call.chat_id)
    if not rows:
        tracker.export_not_sent(call.chat_id)
        await call.reply(
            update,
            t.gettext(
                "No applications to export yet: press ✅ Applied under an offer once you have "
                "applied."
            ),
        )
        return
    caption = t.nplain(
        "%(count)d application: date applied, source, excerpt, link and status.",
        "%(count)d applications: date applied, source, excerpt, link and status.",
        len(rows),
    )
    if total > len(rows):
        caption += " " + t.plain(
            "Only the newest %(shown)d of %(total)d are in the file.", shown=len(rows), total=total
        )
    await message.reply_document(
        applications_csv(rows),
        filename="jobrelay-applications.csv",
        caption=caption,
        do_quote=False,
    )
