"""/follow, /unfollow and /list: parse the arguments, call the follows service, render a reply."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.arguments import MAX_HANDLES, FilterTerm, FollowWords, parse_follow_words
from bot.categories import CategoryReport
from bot.classify import Catalogue
from bot.context import Context
from bot.follows import X_KIND, FeedReport, FollowReport
from bot.i18n import Markup, Translator, html_join
from bot.sources.base import NotConfigured, SourceError
from bot.sources.feeds import FeedAddress
from handlers.access import command
from handlers.common import (
    code,
    handles_text,
    quoted_words,
    requester_id,
    shorten,
    translator_for,
)

log = logging.getLogger(__name__)


def follow_report_text(t: Translator, report: FollowReport, max_lookups: int = 50) -> Markup:
    """One line per outcome of a /follow (an /import), each naming at most MAX_NAMES
    accounts and counting the rest."""
    lines: list[str] = []
    if report.followed:
        lines.append(
            t.gettext(
                "✅ Now following %(handles)s. New offers will arrive here as they are posted.",
                handles=some_handles(report.followed),
            )
        )
    if report.already:
        lines.append(
            t.gettext("You already follow %(handles)s.", handles=some_handles(report.already))
        )
    if report.not_found:
        lines.append(
            t.gettext(
                "❓ No X account is named %(handles)s: check the spelling.",
                handles=some_handles(report.not_found),
            )
        )
    if report.suspended:
        lines.append(
            t.gettext(
                "⛔ %(handles)s is suspended, private or unavailable on X, so it cannot be "
                "followed.",
                handles=some_handles(report.suspended),
            )
        )
    if report.over_quota:
        lines.append(
            t.gettext(
                "⏳ %(handles)s not checked: one person may have at most %(max)d new X accounts "
                "looked up a day (each lookup is billed to whoever runs this bot). Try again "
                "tomorrow.",
                handles=some_handles(report.over_quota),
                max=max_lookups,
            )
        )
    if report.over_budget:
        lines.append(
            t.gettext(
                "⛔ %(handles)s not checked: this month's X budget is spent, so no new X account "
                "can be looked up before next month.",
                handles=some_handles(report.over_budget),
            )
        )
    if report.unavailable:
        lines.append(
            t.gettext(
                "⚠️ X could not be reached to check %(handles)s; please try again in a few minutes.",
                handles=some_handles(report.unavailable),
            )
        )
    return html_join(lines, "\n")


def feed_address_problem(t: Translator, word: str, problem: str) -> Markup:
    """Why a word meant as a feed address is not one, and what is accepted."""
    quoted = code(word, 80)
    if problem == "scheme":
        return t.gettext("%(word)s: only http:// and https:// feeds can be followed.", word=quoted)
    if problem == "mastodon":
        return t.gettext(
            "%(word)s is not a Mastodon address: write it as @user@instance, for example "
            "<code>@jobs@mastodon.social</code>.",
            word=quoted,
        )
    if problem == "bluesky":
        return t.gettext(
            "%(word)s is not a Bluesky handle: write it like <code>acme.bsky.social</code>.",
            word=quoted,
        )
    return t.gettext(
        "%(word)s is not a valid web address. A feed is followed by its full address, for "
        "example <code>https://jobs.example.com/feed.xml</code>.",
        word=quoted,
    )


def feed_failure_text(t: Translator, address: str, error: SourceError) -> Markup:
    """Why a feed could not be followed (it was fetched and failed), in one line."""
    shown = code(address, 200)
    problem = getattr(error, "code", "")
    if problem == "private":
        return t.gettext(
            "⛔ %(feed)s points to a private or local network address; jobrelay only reads "
            "public feeds.",
            feed=shown,
        )
    if problem == "scheme":
        return t.gettext(
            "⛔ %(feed)s leads to an address that is not http:// or https://.", feed=shown
        )
    if problem == "entities":
        return t.gettext(
            "⛔ %(feed)s declares XML entities, which jobrelay does not read (a feed never needs "
            "them, and they can make a document grow without bound).",
            feed=shown,
        )
    if problem == "not_a_feed":
        return t.gettext(
            "❓ %(feed)s is a web page that announces no RSS or Atom feed. Give the feed's own "
            "address (often ending in /feed, /rss or .xml).",
            feed=shown,
        )
    if problem == "malformed":
        return t.gettext(
            "❓ %(feed)s is not a readable RSS or Atom feed (its XML is broken).", feed=shown
        )
    if problem == "too_large":
        return t.gettext(
            "⛔ %(feed)s is larger than 5 MB; jobrelay reads feeds up to 5 MB.", feed=shown
        )
    if problem == "too_complex":
        return t.gettext(
            "⛔ %(feed)s takes too long to read (over %(seconds)s s): it is too large or too "
            "complex. jobrelay reads a feed's first 500 entries; a feed of its latest entries "
            "is read in a moment.",
            feed=shown,
            seconds=f"{getattr(error, 'seconds', 0):g}",
        )
    if problem == "timeout":
        return t.gettext(
            "⚠️ %(feed)s did not answer within 15 seconds; please try again later.", feed=shown
        )
    if problem == "redirects":
        return t.gettext(
            "⛔ %(feed)s redirects too many times (more than 5, or in a loop).", feed=shown
        )
    if problem == "internal":
        return t.gettext(
            "⚠️ %(feed)s was not followed: something went wrong on our side; please try again "
            "in a minute.",
            feed=shown,
        )
    if problem == "http":
        status = getattr(error, "status", 0)
        if status in (404, 410):
            return t.gettext(
                "❓ %(feed)s does not exist (the server answered %(status)d): check the address.",
                feed=shown,
                status=status,
            )
        return t.gettext(
            "⚠️ %(feed)s answered with an error (HTTP %(status)d); please try again later.",
            feed=shown,
            status=status,
        )
    return t.gettext(
        "⚠️ %(feed)s could not be reached; check the address or try again later.", feed=shown
    )


def feed_report_text(t: Translator, report: FeedReport) -> Markup:
    """One line per outcome of following feeds; at most MAX_FEED_PROBLEMS feeds that could not
    be followed are explained, the rest counted."""
    lines: list[str] = []
    if report.followed:
        lines.append(
            t.gettext(
                "✅ Now following %(feeds)s. Its new entries will arrive here as they are "
                "published.",
                feeds=names_text(report.followed),
            )
            if len(report.followed) == 1
            else t.gettext(
                "✅ Now following %(feeds)s. Their new entries will arrive here as they are "
                "published.",
                feeds=names_text(report.followed),
            )
        )
    if report.already:
        lines.append(
            t.gettext("You already follow %(handles)s.", handles=names_text(report.already))
        )
    if report.paused:
        lines.append(
            t.gettext(
                "⏸ %(feeds)s is not answering at the moment; its new entries will arrive once "
                "it answers again.",
                feeds=names_text(report.paused),
            )
        )
    lines += [
        feed_failure_text(t, address, error) for address, error in report.failed[:MAX_FEED_PROBLEMS]
    ]
    if len(report.failed) > MAX_FEED_PROBLEMS:
        lines.append(Markup("… (+%d)") % (len(report.failed) - MAX_FEED_PROBLEMS))
    if report.failed and not (report.followed or report.already):
        lines.append(t.gettext("Nothing was changed."))
    return html_join(lines, "\n")


MAX_NAMES = 20  # names listed in one line of a report; the rest are counted
MAX_FEED_PROBLEMS = 5  # bad or failing addresses explained one a line; the rest are counted


def names_text(names: list[str]) -> Markup:
    """Feed names, HTML-escaped, comma-separated: at most MAX_NAMES, then how many more."""
    return some_of([shorten(name, 100) for name in names])


def some_of(items: list[str] | list[str | Markup]) -> Markup:
    """Items, HTML-escaped unless Markup, comma-separated: at most MAX_NAMES, then how many
    more (a list as long as what a stranger typed would not fit in one message)."""
    shown = html_join(items[:MAX_NAMES])
    return shown + f" … (+{len(items) - MAX_NAMES})" if len(items) > MAX_NAMES else shown


def some_handles(handles: list[str]) -> Markup:
    """`@a, @b` HTML-escaped: at most MAX_NAMES, then how many more."""
    return some_of([f"@{handle}" for handle in handles])


def category_names(t: Translator, catalogue: Catalogue, slugs: list[str]) -> Markup:
    """`Software, Design (graphisme)` in the reader's language, HTML-escaped."""
    return html_join(
        catalogue.categories[s].name(t.language) if s in catalogue.categories else s for s in slugs
    )


def _not_understood_text(t: Translator, words: FollowWords) -> Markup:
    """One line per kind of word that was not understood, what it looks like to the bot and
    what is accepted; then, once, that nothing was changed."""
    lines: list[Markup] = []
    if words.bare_handles:
        lines.append(
            t.ngettext(
                "%(words)s is not a job category. For an X account, write it with its @: "
                "%(accounts)s.",
                "%(words)s are not job categories. For X accounts, write them with their @: "
                "%(accounts)s.",
                len(words.bare_handles),
                words=quoted_words(words.bare_handles),
                accounts=handles_text(words.bare_handles[:5]),
            )
        )
    if words.unknown:
        lines.append(
            t.ngettext(
                "%(words)s is not a job category.",
                "%(words)s are not job categories.",
                len(words.unknown),
                words=quoted_words(words.unknown),
            )
        )
    if words.bare_handles or words.unknown:
        lines[-1] += Markup(" ") + t.gettext("/categories lists the categories you can follow.")
    if words.malformed:
        lines.append(
            t.ngettext(
                "%(words)s is not an X handle: a handle has 1 to 15 letters, digits or "
                "underscores, like @acme_jobs.",
                "%(words)s are not X handles: a handle has 1 to 15 letters, digits or "
                "underscores, like @acme_jobs.",
                len(words.malformed),
                words=quoted_words(words.malformed),
            )
        )
    lines += [
        feed_address_problem(t, word, problem)
        for word, problem in words.bad_feeds[:MAX_FEED_PROBLEMS]
    ]
    if len(words.bad_feeds) > MAX_FEED_PROBLEMS:
        lines.append(Markup("… (+%d)") % (len(words.bad_feeds) - MAX_FEED_PROBLEMS))
    lines.append(t.gettext("Nothing was changed."))
    return html_join(lines, "\n")


async def follow(update: Update, context: Context) -> None:
    """/follow @handle [@handle ...] and/or category [category ...] [in @channel]"""
    call = await command(update, context, changes=True)
    if call is None:
        return
    t = call.t
    services = context.bot_data.services
    words = parse_follow_words(call.words, services.categories.catalogue.category_for)
    if not (words.handles or words.categories or words.feeds or words.problems):
        await call.reply(
            update,
            t.gettext(
                "Tell me what to follow: an X account (<code>/follow @acme_jobs</code>), a job "
                "category (<code>/follow software</code>; /categories lists them), a feed "
                "(<code>/follow https://jobs.example.com/feed.xml</code>), a Mastodon account "
                "(<code>/follow @jobs@mastodon.social</code>) or a Bluesky account "
                "(<code>/follow acme.bsky.social</code>). You can give up to %(max)d at once.",
                max=MAX_HANDLES,
            ),
        )
        return
    if words.problems:
        await call.reply(update, _not_understood_text(t, words))
        return
    handles = words.handles
    if len(handles) + len(words.feeds) > MAX_HANDLES:
        await call.reply(
            update,
            t.gettext(
                "That is %(count)d accounts; /follow takes at most %(max)d at a time. "
                "Nothing was changed.",
                count=len(handles) + len(words.feeds),
                max=MAX_HANDLES,
            ),
        )
        return
    over = await beyond_follow_cap(update, context, call.chat_id, handles, words.feeds)
    if over is not None:
        await call.reply(update, over)
        return
    lines: list[Markup] = []
    if words.feeds:
        await show_typing(update)  # a first fetch may take a few seconds
        feeds = await services.follows.follow_feeds(call.chat_id, words.feeds, call.thread_id)
        lines.append(feed_report_text(t, feeds))
    if handles:
        try:
            report = await services.follows.follow(
                call.chat_id, handles, call.thread_id, user_id=quota_holder(update, context)
            )
        except NotConfigured:
            lines.append(
                t.gettext(
                    "Following X accounts is not available: this bot has no X API access "
                    "configured yet. Please tell the person who runs it (X_BEARER_TOKEN)."
                )
            )
        else:
            lines.append(
                follow_report_text(t, report, services.settings.x_lookups_per_user_per_day)
            )
    if words.categories:
        done = await services.categories.follow(call.chat_id, words.categories, call.thread_id)
        lines.append(categories_followed_text(t, services.categories.catalogue, done))
    await call.reply(update, html_join((line for line in lines if line), "\n"))


def quota_holder(update: Update, context: Context) -> int | None:
    """Whose X_LOOKUPS_PER_USER_PER_DAY a command counts against (None: an operator's)."""
    user = update.effective_user
    if user is None or context.bot_data.services.admin.is_admin(user.id):
        return None
    return requester_id(update)


async def follow_room(
    update: Update, context: Context, chat_id: int, handles: list[str], feeds: list[FeedAddress]
) -> tuple[int, int, int] | None:
    """(how many of these would be new, how many the chat follows, its cap), or None when an
    operator asks (operators are exempt from MAX_FOLLOWS_PER_CHAT)."""
    services = context.bot_data.services
    user = update.effective_user
    if services.admin.is_admin(user.id if user else None):
        return None
    followed = await services.follows.following(chat_id)
    # X keys are lower-case; a feed's key is its canonical spelling, whose path and query
    # are case-sensitive (/jobs.xml and /JOBS.xml are two feeds).
    known = {f.address for f in followed}
    new = {h.lower() for h in handles} | {a.key for a in feeds}
    return len(new - known), len(followed), services.settings.max_follows_per_chat


async def beyond_follow_cap(
    update: Update, context: Context, chat_id: int, handles: list[str], feeds: list[FeedAddress]
) -> Markup | None:
    """The refusal when following these would pass MAX_FOLLOWS_PER_CHAT; None when it fits."""
    room = await follow_room(update, context, chat_id, handles, feeds)
    if room is None:
        return None
    new, current, cap = room
    if current + new <= cap:
        return None
    t = translator_for(update)
    return t.gettext(
        "A chat follows at most %(cap)d X accounts and feeds; this one follows %(current)d, "
        "and these would add %(new)d. /unfollow some first (/list shows them). Nothing was "
        "changed.",
        cap=cap,
        current=current,
        new=new,
    )


def categories_followed_text(t: Translator, catalogue: Catalogue, done: CategoryReport) -> Markup:
    """What following some categories changed, in a line or two."""
    lines: list[Markup] = []
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
    return html_join(lines, "\n")


async def show_typing(update: Update) -> None:
    """Show "typing…" while a slow answer is prepared (a hint only: failures are ignored)."""
    message = update.effective_message
    if message is None:
        return
    try:
        await message.reply_chat_action(ChatAction.TYPING)
    except TelegramError as exc:
        log.info("could not show typing: %s", exc)


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
                    "You no longer follow anything (removed: %(accounts)s, %(categories)s).",
                    accounts=t.ngettext(
                        "%(count)d account or feed", "%(count)d accounts or feeds", accounts
                    ),
                    categories=t.ngettext("%(count)d category", "%(count)d categories", kinds),
                ),
            )
        else:
            await call.reply(update, t.gettext("You were not following anything."))
        return
    words = parse_follow_words(call.words, services.categories.catalogue.category_for)
    if words.problems:
        await call.reply(update, _not_understood_text(t, words))
        return
    lines: list[Markup] = []
    if words.handles or words.feeds:
        report = await services.follows.unfollow(
            call.chat_id, words.handles, call.thread_id, words.feeds
        )
        removed = [f"@{h}" for h in report.removed]
        removed += [shorten(name, 100) for name in report.removed_feeds]
        missing: list[str | Markup] = [f"@{h}" for h in report.not_followed]
        missing += [code(address, 200) for address in report.not_followed_feeds]
        if removed:
            lines.append(t.gettext("Stopped following %(handles)s.", handles=some_of(removed)))
        if missing:
            lines.append(
                t.gettext(
                    "You were not following %(handles)s. /list shows what you follow.",
                    handles=some_of(missing),
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
    await call.reply(update, html_join(lines, "\n"))


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
    for thread, key in account_topics:
        topics.setdefault(f"source:{key}", []).append(thread)
    for thread, slug in category_topics:
        topics.setdefault(f"category:{slug}", []).append(thread)
    forum = any(thread for threads in topics.values() for thread in threads)
    names = await services.clubs.topics(call.chat_id) if forum else {}

    def where(key: str) -> Markup:
        if not forum:
            return Markup()
        shown = [
            names.get(thread) or (t.gettext("General") if thread == 0 else f"#{thread}")
            for thread in topics.get(key, [])
        ]
        return Markup(" — 💬 ") + html_join(shown) if shown else Markup()

    lines: list[Markup] = []
    accounts = [f for f in following if f.kind == X_KIND]
    feeds = [f for f in following if f.kind != X_KIND]
    if accounts:
        lines.append(
            t.ngettext(
                "You follow %(count)d account:", "You follow %(count)d accounts:", len(accounts)
            )
        )
        for account in accounts:
            line = Markup("• @%s") % account.name
            if not account.available:
                line += " " + t.gettext("(no longer available on X)")
            lines.append(line + where(f"source:{account.address}"))
    if feeds:
        if lines:
            lines.append(Markup())
        lines.append(
            t.ngettext("You follow %(count)d feed:", "You follow %(count)d feeds:", len(feeds))
        )
        for feed in feeds:
            line = Markup("• %s — %s") % (shorten(feed.name, 100), code(feed.address, 300))
            if not feed.available:
                line += " " + t.gettext("(paused: not answering)")
            lines.append(line + where(f"source:{feed.address}"))
    if kinds:
        if lines:
            lines.append(Markup())
        lines.append(
            t.ngettext(
                "You follow %(count)d category:", "You follow %(count)d categories:", len(kinds)
            )
        )
        catalogue = services.categories.catalogue
        lines += [
            Markup("• ") + category_names(t, catalogue, [slug]) + where(f"category:{slug}")
            for slug in kinds
        ]
    if terms:
        lines += [Markup(), t.gettext("Filter: %(words)s", words=filter_text(terms))]
    await call.reply(update, html_join(lines, "\n"))


def filter_text(terms: list[FilterTerm]) -> Markup:
    """`+python -stage` as HTML."""
    return html_join(
        (code(f"{'+' if term.include else '-'}{term.word}", 100) for term in terms), " "
    )
