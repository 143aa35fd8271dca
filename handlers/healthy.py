"""/limit, /digest, /quiet, /pause, /resume and /timezone: parse, call the service, reply."""

from __future__ import annotations

from datetime import datetime

from babel.dates import format_datetime
from telegram import Update

from bot.arguments import (
    WEEKLY_WORDS,
    ArgumentError,
    format_hhmm,
    parse_duration,
    parse_hhmm,
    parse_limit,
    parse_timezone,
    parse_weekly,
    parse_window,
)
from bot.context import Context
from bot.i18n import Markup, Translator
from bot.policy import MAX_DAILY_LIMIT, ChatPolicy, is_paused
from handlers.access import Call, command


def _when(t: Translator, moment: datetime, policy: ChatPolicy) -> str:
    """A date and time in the chat's zone, in the reader's language."""
    return format_datetime(moment, "EEE d MMM HH:mm", tzinfo=policy.zone, locale=t.language)


def weekday_name(t: Translator, day: int) -> Markup:
    """Monday … Sunday in the reader's language (0 = Monday)."""
    names = [
        t.gettext("Monday"),
        t.gettext("Tuesday"),
        t.gettext("Wednesday"),
        t.gettext("Thursday"),
        t.gettext("Friday"),
        t.gettext("Saturday"),
        t.gettext("Sunday"),
    ]
    return names[day % 7]


def settings_summary(
    t: Translator, policy: ChatPolicy, now: datetime, *, shared: bool = False
) -> list[Markup]:
    """The current healthy-use settings, one line each (a club's limit counts messages)."""
    lines = [
        t.ngettext(
            "Daily limit: %(count)d message of offers",
            "Daily limit: %(count)d messages of offers",
            policy.daily_limit,
        )
        if shared
        else t.ngettext(
            "Daily limit: %(count)d instant offer",
            "Daily limit: %(count)d instant offers",
            policy.daily_limit,
        )
    ]
    if policy.digest_only and policy.digest_weekday is not None:
        lines.append(
            t.gettext(
                "Mode: one digest a week, %(day)s at %(time)s",
                day=weekday_name(t, policy.digest_weekday),
                time=format_hhmm(policy.digest_time),
            )
        )
    elif policy.digest_only:
        lines.append(
            t.gettext("Mode: one digest a day at %(time)s", time=format_hhmm(policy.digest_time))
        )
    else:
        lines.append(
            t.gettext(
                "Mode: instant; offers over the limit come in a digest at %(time)s",
                time=format_hhmm(policy.digest_time),
            )
        )
    if policy.quiet_start and policy.quiet_end:
        lines.append(
            t.gettext(
                "Quiet hours: %(start)s–%(end)s",
                start=format_hhmm(policy.quiet_start),
                end=format_hhmm(policy.quiet_end),
            )
        )
    else:
        lines.append(t.gettext("Quiet hours: off"))
    if is_paused(policy, now):
        if policy.paused_until is None:
            lines.append(t.gettext("Paused until /resume"))
        else:
            lines.append(
                t.gettext("Paused until %(when)s", when=_when(t, policy.paused_until, policy))
            )
    lines.append(t.gettext("Time zone: %(zone)s", zone=policy.timezone))
    return lines


async def zone_note(call: Call, context: Context) -> Markup:
    """The first time a chat sets a time: which time zone its times are in, and how to change
    it (an empty note afterwards)."""
    zone = await context.bot_data.services.healthy.zone_to_show(call.chat_id)
    if zone is None:
        return Markup()
    return Markup("\n") + call.t.gettext(
        "🕒 Times are %(zone)s time; <code>/timezone America/Montreal</code> (or your own "
        "Area/City) changes it.",
        zone=zone,
    )


async def limit(update: Update, context: Context) -> None:
    """/limit [N]"""
    call = await command(update, context, changes=bool(context.args))
    if call is None:
        return
    t, chat_id, words = call.t, call.chat_id, call.words
    healthy = context.bot_data.services.healthy
    if not words:
        status = await healthy.limit_status(chat_id)
        if status is None:
            return
        if call.shared:
            await call.reply(
                update,
                t.ngettext(
                    "Daily limit: %(count)d message (offers that arrive together share one). "
                    "Today: %(pushed)d sent, %(held)d offers held for the digest. Change it "
                    "with <code>/limit 5</code> (0 to %(max)d).",
                    "Daily limit: %(count)d messages (offers that arrive together share one). "
                    "Today: %(pushed)d sent, %(held)d offers held for the digest. Change it "
                    "with <code>/limit 5</code> (0 to %(max)d).",
                    status.limit,
                    pushed=status.pushed_today,
                    held=status.held,
                    max=MAX_DAILY_LIMIT,
                ),
            )
            return
        await call.reply(
            update,
            t.ngettext(
                "Daily limit: %(count)d instant offer. Today: %(pushed)d sent, %(held)d held "
                "for your digest. Change it with <code>/limit 5</code> (0 to %(max)d).",
                "Daily limit: %(count)d instant offers. Today: %(pushed)d sent, %(held)d held "
                "for your digest. Change it with <code>/limit 5</code> (0 to %(max)d).",
                status.limit,
                pushed=status.pushed_today,
                held=status.held,
                max=MAX_DAILY_LIMIT,
            ),
        )
        return
    try:
        if len(words) != 1:
            raise ArgumentError("limit")
        value = parse_limit(words[0], MAX_DAILY_LIMIT)
    except ArgumentError:
        await call.reply(
            update,
            t.gettext(
                "The limit is a whole number from 0 to %(max)d, e.g. <code>/limit 5</code>. "
                "Nothing was changed.",
                max=MAX_DAILY_LIMIT,
            ),
        )
        return
    await healthy.set_limit(chat_id, value)
    if call.shared and value:
        text = t.ngettext(
            "At most %(count)d message of offers a day here (offers that arrive together "
            "share one); the rest waits for the digest.",
            "At most %(count)d messages of offers a day here (offers that arrive together "
            "share one); the rest waits for the digest.",
            value,
        )
    elif value == 0:
        text = t.gettext("No more instant offers: everything waits for your digest.")
    else:
        text = t.ngettext(
            "At most %(count)d instant offer a day; the rest waits for your digest.",
            "At most %(count)d instant offers a day; the rest waits for your digest.",
            value,
        )
    await call.reply(update, text)


async def digest(update: Update, context: Context) -> None:
    """/digest | /digest HH:MM | /digest weekly DAY [HH:MM] | /digest off [in @channel]"""
    call = await command(update, context, changes=True)
    if call is None:
        return
    t, chat_id, words = call.t, call.chat_id, call.words
    healthy = context.bot_data.services.healthy
    if not words:
        if await healthy.digest_now(chat_id):
            await call.reply(update, t.gettext("Here comes your digest."))
        else:
            await call.reply(update, t.gettext("Nothing pending: every offer has reached you."))
        return
    if len(words) == 1 and words[0].lower() == "off":
        await healthy.set_digest_only(chat_id, None)
        await call.reply(
            update,
            t.gettext(
                "Back to instant offers. Offers over your daily limit still come in a digest."
            ),
        )
        return
    if words[0].lower() in WEEKLY_WORDS:
        try:
            weekday, at = parse_weekly(words[1:])
        except ArgumentError:
            await call.reply(
                update,
                t.gettext(
                    "Give a day and a time, e.g. <code>/digest weekly mon 09:00</code> "
                    "(mon, tue, wed, thu, fri, sat, sun; or lundi … dimanche). "
                    "Nothing was changed."
                ),
            )
            return
        await healthy.set_digest_only(chat_id, at, weekday=weekday)
        text = t.gettext(
            "Weekly digest: no instant offers; one digest every %(day)s at %(time)s.",
            day=weekday_name(t, weekday),
            time=format_hhmm(at),
        )
        if call.shared:
            text += " " + t.gettext(
                "I pin it when this chat lets me pin messages (an administrator right)."
            )
        await call.reply(update, text + await zone_note(call, context))
        return
    try:
        if len(words) != 1:
            raise ArgumentError("time")
        at = parse_hhmm(words[0])
    except ArgumentError:
        await call.reply(
            update,
            t.gettext(
                "Give a time as HH:MM, e.g. <code>/digest 18:30</code> for one digest a day, "
                "<code>/digest weekly mon 09:00</code> for one a week, "
                "<code>/digest off</code> for instant offers, or <code>/digest</code> alone "
                "for your digest now. Nothing was changed."
            ),
        )
        return
    await healthy.set_digest_only(chat_id, at)
    await call.reply(
        update,
        t.gettext(
            "Digest mode: no instant offers; one digest a day at %(time)s.",
            time=format_hhmm(at),
        )
        + await zone_note(call, context),
    )


async def quiet(update: Update, context: Context) -> None:
    """/quiet HH:MM-HH:MM | /quiet off"""
    call = await command(update, context, changes=True)
    if call is None:
        return
    t, chat_id, words = call.t, call.chat_id, call.words
    healthy = context.bot_data.services.healthy
    if len(words) == 1 and words[0].lower() == "off":
        await healthy.set_quiet(chat_id, None)
        await call.reply(update, t.gettext("Quiet hours are off."))
        return
    try:
        if len(words) != 1:
            raise ArgumentError("window")
        window = parse_window(words[0])
    except ArgumentError:
        await call.reply(
            update,
            t.gettext(
                "Give the quiet hours as HH:MM-HH:MM, e.g. <code>/quiet 22:00-07:30</code> "
                "(it may cross midnight), or <code>/quiet off</code>. Nothing was changed."
            ),
        )
        return
    await healthy.set_quiet(chat_id, window)
    await call.reply(
        update,
        t.gettext(
            "Quiet hours %(start)s–%(end)s: nothing is sent then; what arrives meanwhile "
            "comes in one digest when they end.",
            start=format_hhmm(window[0]),
            end=format_hhmm(window[1]),
        )
        + await zone_note(call, context),
    )


async def pause(update: Update, context: Context) -> None:
    """/pause | /pause 3d | /pause 12h"""
    call = await command(update, context, changes=True)
    if call is None:
        return
    t, chat_id, words = call.t, call.chat_id, call.words
    services = context.bot_data.services
    if not words:
        await services.healthy.pause(chat_id, None)
        await call.reply(
            update,
            t.gettext("Paused: offers are kept, not sent. /resume brings them in one digest."),
        )
        return
    try:
        if len(words) != 1:
            raise ArgumentError("duration")
        duration = parse_duration(words[0])
    except ArgumentError:
        await call.reply(
            update,
            t.gettext(
                "Give a duration such as <code>/pause 3d</code>, <code>/pause 12h</code> or "
                "<code>/pause 90m</code> (up to 90 days), or <code>/pause</code> alone until "
                "/resume. Nothing was changed."
            ),
        )
        return
    until = services.clock.now() + duration
    await services.healthy.pause(chat_id, until)
    settings = await services.healthy.settings(chat_id)
    policy = settings.policy if settings else ChatPolicy()
    await call.reply(
        update,
        t.gettext(
            "Paused until %(when)s: offers are kept, then come in one digest.",
            when=_when(t, until, policy),
        )
        + await zone_note(call, context),
    )


async def resume(update: Update, context: Context) -> None:
    """/resume"""
    call = await command(update, context, changes=True)
    if call is None:
        return
    t = call.t
    if await context.bot_data.services.healthy.resume(call.chat_id):
        await call.reply(update, t.gettext("Welcome back: what was kept comes in one digest."))
    else:
        await call.reply(update, t.gettext("You were not paused."))


async def timezone(update: Update, context: Context) -> None:
    """/timezone [Area/City]"""
    call = await command(update, context, changes=bool(context.args))
    if call is None:
        return
    t, chat_id, words = call.t, call.chat_id, call.words
    healthy = context.bot_data.services.healthy
    if not words:
        settings = await healthy.settings(chat_id)
        zone = settings.policy.timezone if settings else "?"
        await call.reply(
            update,
            t.gettext(
                "Your time zone is %(zone)s. Change it with e.g. "
                "<code>/timezone America/Montreal</code>.",
                zone=zone,
            ),
        )
        return
    try:
        if len(words) != 1:
            raise ArgumentError("timezone")
        zone = parse_timezone(words[0])
    except ArgumentError:
        await call.reply(
            update,
            t.gettext(
                "Unknown time zone. Give an Area/City of the IANA time zone database, such "
                "as <code>Europe/Paris</code>, <code>Africa/Abidjan</code> or "
                "<code>America/Montreal</code> (or <code>UTC</code>). Nothing was changed."
            ),
        )
        return
    await healthy.set_timezone(chat_id, zone)
    await call.reply(update, t.gettext("Time zone set to %(zone)s.", zone=zone))
