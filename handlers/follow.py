"""/follow, /unfollow and /list: parse the arguments, call the follows service, render a reply."""

from __future__ import annotations

import html

from telegram import Update

from bot.arguments import MAX_HANDLES, parse_handles, split_arguments
from bot.context import Context
from bot.follows import FollowReport
from bot.i18n import Translator
from bot.sources.base import NotConfigured
from handlers.common import handles_text, reply, translator_for


def _malformed_text(t: Translator, words: list[str]) -> str:
    quoted = ", ".join(f"<code>{html.escape(w[:40])}</code>" for w in words[:5])
    return (
        t.ngettext(
            "%(words)s is not an X handle.",
            "%(words)s are not X handles.",
            len(words),
            words=quoted,
        )
        + " "
        + t.gettext(
            "A handle has 1 to 15 letters, digits or underscores, like @acme_jobs. "
            "Nothing was changed."
        )
    )


def follow_report_text(t: Translator, report: FollowReport) -> str:
    """One line per outcome of a /follow."""
    lines: list[str] = []
    if report.followed:
        lines.append(
            t.gettext(
                "✅ Now following %(handles)s. New offers will arrive here as they are posted.",
                handles=handles_text(report.followed),
            )
        )
    if report.already:
        lines.append(
            t.gettext("You already follow %(handles)s.", handles=handles_text(report.already))
        )
    if report.not_found:
        lines.append(
            t.gettext(
                "❓ No X account is named %(handles)s: check the spelling.",
                handles=handles_text(report.not_found),
            )
        )
    if report.suspended:
        lines.append(
            t.gettext(
                "⛔ %(handles)s is suspended, private or unavailable on X, so it cannot be "
                "followed.",
                handles=handles_text(report.suspended),
            )
        )
    if report.unavailable:
        lines.append(
            t.gettext(
                "⚠️ X could not be reached to check %(handles)s; please try again in a few minutes.",
                handles=handles_text(report.unavailable),
            )
        )
    return "\n".join(lines)


async def follow(update: Update, context: Context) -> None:
    """/follow @handle [@handle ...]"""
    t = translator_for(update)
    chat = update.effective_chat
    if chat is None:
        return
    parsed = parse_handles(context.args or [])
    if not parsed.handles and not parsed.malformed:
        await reply(
            update,
            t.gettext(
                "Tell me which X account to follow, for example "
                "<code>/follow @acme_jobs</code>. You can give up to %(max)d handles at once.",
                max=MAX_HANDLES,
            ),
        )
        return
    if parsed.malformed:
        await reply(update, _malformed_text(t, parsed.malformed))
        return
    if len(parsed.handles) > MAX_HANDLES:
        await reply(
            update,
            t.gettext(
                "That is %(count)d accounts; /follow takes at most %(max)d at a time. "
                "Nothing was changed.",
                count=len(parsed.handles),
                max=MAX_HANDLES,
            ),
        )
        return
    follows = context.bot_data.services.follows
    try:
        report = await follows.follow(chat.id, parsed.handles)
    except NotConfigured:
        await reply(
            update,
            t.gettext(
                "Following X accounts is not available: this bot has no X API access "
                "configured yet. Please tell the person who runs it (X_BEARER_TOKEN)."
            ),
        )
        return
    await reply(update, follow_report_text(t, report))


async def unfollow(update: Update, context: Context) -> None:
    """/unfollow @handle [@handle ...] | all"""
    t = translator_for(update)
    chat = update.effective_chat
    if chat is None:
        return
    follows = context.bot_data.services.follows
    words = split_arguments(context.args or [])
    if not words:
        await reply(
            update,
            t.gettext(
                "Tell me which account to stop following, for example "
                "<code>/unfollow @acme_jobs</code>, or <code>/unfollow all</code>. "
                "/list shows what you follow."
            ),
        )
        return
    if [w.lower() for w in words] == ["all"]:
        removed = await follows.unfollow_all(chat.id)
        if removed:
            await reply(
                update,
                t.gettext("You no longer follow any account (%(count)d removed).", count=removed),
            )
        else:
            await reply(update, t.gettext("You were not following any account."))
        return
    parsed = parse_handles(words)
    if parsed.malformed:
        await reply(update, _malformed_text(t, parsed.malformed))
        return
    report = await follows.unfollow(chat.id, parsed.handles)
    lines: list[str] = []
    if report.removed:
        lines.append(
            t.gettext("Stopped following %(handles)s.", handles=handles_text(report.removed))
        )
    if report.not_followed:
        lines.append(
            t.gettext(
                "You were not following %(handles)s. /list shows what you follow.",
                handles=handles_text(report.not_followed),
            )
        )
    await reply(update, "\n".join(lines))


async def list_follows(update: Update, context: Context) -> None:
    """/list"""
    t = translator_for(update)
    chat = update.effective_chat
    if chat is None:
        return
    following = await context.bot_data.services.follows.following(chat.id)
    if not following:
        await reply(
            update,
            t.gettext("You follow no account yet. Try <code>/follow @acme_jobs</code>."),
        )
        return
    lines = [
        t.ngettext(
            "You follow %(count)d account:", "You follow %(count)d accounts:", len(following)
        )
    ]
    for handle, available in following:
        line = f"• @{html.escape(handle)}"
        if not available:
            line += " " + t.gettext("(no longer available on X)")
        lines.append(line)
    await reply(update, "\n".join(lines))
