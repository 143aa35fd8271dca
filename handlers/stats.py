"""/stats: what the watch brought over the last 7 days, with a chart."""

from __future__ import annotations

import asyncio

from telegram import Update

from bot.chart import week_chart_png
from bot.context import Context
from bot.i18n import Markup, Translator, html_join
from bot.render import funnel_lines, source_name
from bot.weekly import WeekStats
from handlers.access import command


def stats_text(t: Translator, stats: WeekStats) -> Markup:
    """The /stats message."""
    lines = [
        t.gettext("<b>Your last 7 days</b>"),
        t.gettext("Offers pushed: %(count)d", count=stats.pushed),
        t.gettext("Offers held for a digest: %(count)d", count=stats.held),
        t.gettext("Offers delivered in digests: %(count)d", count=stats.digested),
        *funnel_lines(t, stats.funnel_steps(), pushes=stats.pushed, digests=stats.digests),
    ]
    if stats.top_sources:
        top = html_join(f"{source_name(a)} ({n})" for a, n in stats.top_sources)
        lines.append(t.gettext("Top sources: %(sources)s", sources=top))
    return html_join(lines, "\n")


async def stats(update: Update, context: Context) -> None:
    """/stats [in @channel]"""
    call = await command(update, context, changes=False)
    message = update.effective_message
    if call is None or message is None:
        return
    t = call.t
    result = await context.bot_data.services.healthy.week(call.chat_id)
    if result is None:
        return
    week, _ = result
    if week.empty:
        await call.reply(update, t.gettext("Nothing yet this week: follow accounts with /follow."))
        return
    await call.reply(update, stats_text(t, week))
    # matplotlib is synchronous: draw off the event loop.
    png = await asyncio.to_thread(week_chart_png, t, week)
    await message.reply_photo(
        png, caption=t.plain("Offers per day: pushed and held"), do_quote=False
    )
