"""/follow, /unfollow and /list: parse the arguments, call the follows service, render a reply."""

from __future__ import annotations

import html

from telegram import Update

from bot.arguments import MAX_HANDLES, FilterTerm, FollowWords, parse_follow_words
from bot.classify import Catalogue
from bot.context import Context
from bot.follows import FollowReport
from bot.i18n import Translator
from bot.sources.base import NotConfigured
from handlers.access import command
from handlers.common import handles_text


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


def category_names(t: Translator, catalogue: Catalogue, slugs: list[str]) -> str:
    """`Software, Design (graphisme)` in the reader's language, HTML-escaped."""
    return ", ".join(
        html.escape(catalogue.categories[s].name(t.language) if s in catalogue.categories else s)
        for s in slugs
    )


def _not_understood_text(t: Translator, words: FollowWords) -> str:
    lines: list[str] = []
    if words.bare_handles:
        quoted = ", ".join(f"<code>{html.escape(w)}</code>" for w in words.bare_handles[:5])
        accounts = ", ".join(f"@{html.escape(w)}" for w in words.bare_handles[:5])
        lines.append(
            t.ngettext(
                "%(words)s is not a job category. For an X account, write it with its @: "
                "%(accounts)s.",
                "%(words)s are not job categories. For X accounts, write them with their @: "
                "%(accounts)s.",
                len(words.bare_handles),
                words=quoted,
                accounts=accounts,
            )
        )
    if words.malformed:
        lines.append(_malformed_text(t, words.malformed))
    lines.append(t.gettext("/categories lists the categories you can follow. Nothing was changed."))
    return "\n".join(lines)


async def follow(update: Update, context: Context) -> None:
    """/follow @handle [@handle ...] and/or category [category ...] [in @channel]"""
    call = await command(update, context, changes=True)
    if call is None:
        return
    t = call.t
    services = context.bot_data.services
    words = parse_follow_words(call.words, services.categories.catalogue.category_for)
    if not (words.handles or words.categories or words.malformed or words.bare_handles):
        await call.reply(
            update,
            t.gettext(
                "Tell me what to follow: an X account, for example "
                "<code>/follow @acme_jobs</code>, or a job category, for example "
                "<code>/follow software</code> (/categories lists them). "
                "You can give up to %(max)d at once.",
                max=MAX_HANDLES,
            ),
        )
        return
    if words.malformed or words.bare_handles:
        await call.reply(update, _not_understood_text(t, words))
        return
    handles = words.handles
    if len(handles) > MAX_HANDLES:
        await call.reply(
            update,
            t.gettext(
                "That is %(count)d accounts; /follow takes at most %(max)d at a time. "
                "Nothing was changed.",
                count=len(handles),
                max=MAX_HANDLES,
            ),
        )
        return
    lines: list[str] = []
    if handles:
        try:
            report = await services.follows.follow(call.chat_id, handles, call.thread_id)
        except NotConfigured:
            lines.append(
                t.gettext(
                    "Following X accounts is not available: this bot has no X API access "
                    "configured yet. Please tell the person who runs it (X_BEARER_TOKEN)."
                )
            )
        else:
            lines.append(follow_report_text(t, report))
    if words.categories:
        catalogue = services.categories.catalogue
        done = await services.categories.follow(call.chat_id, words.categories, call.thread_id)
        if done.changed:
            lines.append(
                t.gettext(
                    "✅ Now following the category %(names)s: every job offer of that kind "
                    "from the accounts jobrelay reads will arrive here.",
                    names=category_names(t, catalogue, done.changed),
                )
                if len(done.changed) == 1
                else t.gettext(
                    "✅ Now following the categories %(names)s: every job offer of those "
                    "kinds from the accounts jobrelay reads will arrive here.",
                    names=category_names(t, catalogue, done.changed),
                )
            )
        if done.unchanged:
            lines.append(
                t.gettext(
                    "You already follow %(names)s.",
                    names=category_names(t, catalogue, done.unchanged),
                )
            )
    await call.reply(update, "\n".join(line for line in lines if line))


async def unfollow(update: Update, context: Context) -> None:
    """/unfollow @handle|category [...] | all [in @channel]"""
    call = await command(update, context, changes=True)
    if call is None:
        return
    t = call.t
    services = context.bot_data.services
    if not call.words:
        await call.reply(
            update,
            t.gettext(
                "Tell me what to stop following, for example "
                "<code>/unfollow @acme_jobs</code>, <code>/unfollow software</code> or "
                "<code>/unfollow all</code>. /list shows what you follow."
            ),
        )
        return
    if [w.lower() for w in call.words] in (["all"], ["tout"]):
        # In a forum, "all" is everything followed in this topic.
        accounts = await services.follows.unfollow_all(call.chat_id, call.thread_id)
        kinds = await services.categories.unfollow_all(call.chat_id, call.thread_id)
        if accounts or kinds:
            await call.reply(
                update,
                t.gettext(
                    "You no longer follow anything (%(accounts)s and %(categories)s removed).",
                    accounts=t.ngettext("%(count)d account", "%(count)d accounts", accounts),
                    categories=t.ngettext("%(count)d category", "%(count)d categories", kinds),
                ),
            )
        else:
            await call.reply(update, t.gettext("You were not following anything."))
        return
    words = parse_follow_words(call.words, services.categories.catalogue.category_for)
    if words.malformed or words.bare_handles:
        await call.reply(update, _not_understood_text(t, words))
        return
    lines: list[str] = []
    if words.handles:
        report = await services.follows.unfollow(call.chat_id, words.handles, call.thread_id)
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
    if words.categories:
        catalogue = services.categories.catalogue
        done = await services.categories.unfollow(call.chat_id, words.categories, call.thread_id)
        if done.changed:
            lines.append(
                t.gettext(
                    "Stopped following %(names)s.",
                    names=category_names(t, catalogue, done.changed),
                )
            )
        if done.unchanged:
            lines.append(
                t.gettext(
                    "You were not following %(names)s. /list shows what you follow.",
                    names=category_names(t, catalogue, done.unchanged),
                )
            )
    await call.reply(update, "\n".join(lines))


async def list_follows(update: Update, context: Context) -> None:
    """/list [in @channel]: accounts, categories (with their forum topics) and the filter."""
    call = await command(update, context, changes=False)
    if call is None:
        return
    t = call.t
    services = context.bot_data.services
    following = await services.follows.following(call.chat_id)
    kinds = await services.categories.followed(call.chat_id)
    terms = await services.categories.get_filter(call.chat_id)
    if not following and not kinds:
        await call.reply(
            update,
            t.gettext(
                "You follow nothing yet. Try <code>/follow @acme_jobs</code> for an account "
                "or <code>/follow software</code> for a job category (/categories)."
            ),
        )
        return
    # In a forum, each subscription names the topic its offers go to.
    account_topics = await services.follows.following_by_topic(call.chat_id)
    category_topics = await services.categories.followed_by_topic(call.chat_id)
    topics: dict[str, list[int]] = {}
    for thread, name in account_topics:
        topics.setdefault(f"@{name.lower()}", []).append(thread)
    for thread, slug in category_topics:
        topics.setdefault(slug, []).append(thread)
    forum = any(thread for threads in topics.values() for thread in threads)
    names = await services.clubs.topics(call.chat_id) if forum else {}

    def where(key: str) -> str:
        if not forum:
            return ""
        shown = [
            names.get(thread) or (t.gettext("General") if thread == 0 else f"#{thread}")
            for thread in topics.get(key, [])
        ]
        return " — 💬 " + ", ".join(html.escape(name) for name in shown) if shown else ""

    lines: list[str] = []
    if following:
        lines.append(
            t.ngettext(
                "You follow %(count)d account:", "You follow %(count)d accounts:", len(following)
            )
        )
        for handle, available in following:
            line = f"• @{html.escape(handle)}"
            if not available:
                line += " " + t.gettext("(no longer available on X)")
            lines.append(line + where(f"@{handle.lower()}"))
    if kinds:
        if lines:
            lines.append("")
        lines.append(
            t.ngettext(
                "You follow %(count)d category:", "You follow %(count)d categories:", len(kinds)
            )
        )
        catalogue = services.categories.catalogue
        lines += [f"• {category_names(t, catalogue, [slug])}{where(slug)}" for slug in kinds]
    if terms:
        lines += ["", t.gettext("Filter: %(words)s", words=filter_text(terms))]
    await call.reply(update, "\n".join(lines))


def filter_text(terms: list[FilterTerm]) -> str:
    """`+python -stage` as HTML."""
    return " ".join(
        f"<code>{'+' if term.include else '-'}{html.escape(term.word)}</code>" for term in terms
    )
