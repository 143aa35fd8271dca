"""/start and /help, and the answer to anything the bot does not understand."""

from __future__ import annotations

from telegram import Update

from bot.context import Context
from bot.i18n import Markup, Translator, html_join
from handlers.common import reply, translator_for


def command_descriptions(t: Translator) -> list[tuple[str, str]]:
    """The command menu, in one language (also used for setMyCommands)."""
    return [
        ("follow", t.plain("Follow X accounts, feeds or categories: /follow @acme_jobs")),
        ("unfollow", t.plain("Stop following: /unfollow @acme_jobs or all")),
        ("list", t.plain("Show what you follow")),
        ("categories", t.plain("Job categories to follow, with buttons")),
        ("filter", t.plain("Words offers must or must not contain: /filter +python -stage")),
        ("settings", t.plain("Limit, digest, quiet hours and pause, with buttons")),
        ("digest", t.plain("Your held offers now, or /digest 18:00 for one a day")),
        ("limit", t.plain("Instant offers per day: /limit 5")),
        ("quiet", t.plain("Quiet hours: /quiet 22:00-07:00 or off")),
        ("pause", t.plain("Pause: /pause, /pause 3d or /pause 12h")),
        ("resume", t.plain("End a pause")),
        ("saved", t.plain("The offers you saved with ⭐")),
        ("applied", t.plain("Your applications and their status")),
        ("stats", t.plain("Your last 7 days, with a chart")),
        ("timezone", t.plain("Your time zone: /timezone Europe/Paris")),
        ("export", t.plain("Your subscriptions as an OPML file")),
        ("import", t.plain("Follow what an OPML file lists (send it with /import)")),
        ("why", t.plain("In reply to an offer: why it was read as one")),
        ("forget", t.plain("Delete everything stored about this chat")),
        ("help", t.plain("How jobrelay works")),
        ("start", t.plain("Welcome message")),
    ]


def help_text(t: Translator) -> Markup:
    """The full help message."""
    lines = [
        t.gettext(
            "I watch recruiters' and job boards' accounts on X, their feeds, Mastodon and "
            "Bluesky for you and send each new job offer here as soon as it is posted: no "
            "need to keep checking timelines."
        ),
        "",
        t.gettext("<b>Commands</b>"),
        t.gettext("/follow @handle [@handle …]: follow up to 50 X accounts at once"),
        t.gettext(
            "/follow https://…/feed.xml, /follow @user@mastodon.social or /follow "
            "name.bsky.social: a job board's RSS or Atom feed, a Mastodon or a Bluesky account"
        ),
        t.gettext("/follow software: every job offer of a category, from all the accounts I read"),
        t.gettext("/categories: the categories, with buttons to follow them"),
        t.gettext("/unfollow @handle or category: stop following it (/unfollow all: everything)"),
        t.gettext("/list: what you follow"),
        t.gettext("/export, /import: your subscriptions as an OPML file, and back"),
        t.gettext("/filter +python -stage: words an offer must or must not contain; /filter off"),
        t.gettext("/why, in reply to an offer: why I read it as an offer, in which categories"),
        "",
        t.gettext("<b>From offer to application</b>"),
        t.gettext(
            "Under each offer: ⭐ Save keeps it, ✅ Applied records your application, "
            "👎 Not for me; press again to undo."
        ),
        t.gettext(
            "/saved: the offers you kept; /applied: your applications, with buttons for an "
            "interview, an offer or a rejection; <code>/export applications</code>: a CSV file"
        ),
        "",
        t.gettext("<b>Keep it healthy</b>"),
        t.gettext("/limit N: at most N instant offers a day (0 to 50); the rest waits"),
        t.gettext(
            "/digest: your held offers now; /digest 18:00: one digest a day; "
            "/digest weekly mon 09:00: one a week (pinned in groups); /digest off"
        ),
        t.gettext("/quiet 22:00-07:00: nothing at night, one catch-up digest after; /quiet off"),
        t.gettext("/pause, /pause 3d, /pause 12h and /resume: a break, then one digest"),
        t.gettext("/timezone Europe/Paris: the time zone of all these times"),
        t.gettext("/settings: all of it with buttons; /stats: your last 7 days"),
        t.gettext("/forget: delete everything stored about this chat"),
        t.gettext("/help: this message"),
        "",
        t.gettext("<b>Job clubs: groups and channels</b>"),
        t.gettext(
            "Add me to a group: its administrators choose what it follows and how; everyone "
            "can use /list, /categories, /stats and /help. In a forum, what is followed inside "
            "a topic is posted in that topic."
        ),
        t.gettext(
            "For a channel, make me an administrator, then from this private chat add "
            "<code>in @yourchannel</code> to a command: "
            "<code>/follow @acme_jobs in @yourchannel</code>, <code>/list in @yourchannel</code>."
        ),
        "",
        t.gettext("Example: <code>/follow @acme_jobs @paris_recrute design</code>"),
    ]
    return html_join(lines, "\n")


async def start(update: Update, context: Context) -> None:
    """Greet a new user and show how to follow a first account."""
    t = translator_for(update)
    user = update.effective_user
    name = user.first_name if user and user.first_name else ""
    greeting = t.gettext("Hello %(name)s!", name=name) if name else t.gettext("Hello!")
    await reply(update, greeting + Markup("\n\n") + help_text(t))


async def help_command(update: Update, context: Context) -> None:
    """List the commands."""
    await reply(update, help_text(translator_for(update)))


async def unknown_command(update: Update, context: Context) -> None:
    """A command the bot does not have."""
    t = translator_for(update)
    await reply(update, t.gettext("I don't know that command. /help lists what I can do."))


async def plain_text(update: Update, context: Context) -> None:
    """A private message that is not a command."""
    t = translator_for(update)
    await reply(
        update,
        t.gettext(
            "I only understand commands. To follow an account, send "
            "<code>/follow @acme_jobs</code>; /help lists everything."
        ),
    )


async def forwarded_command(update: Update, context: Context) -> None:
    """A command forwarded into a private chat: not run (it speaks for whoever wrote it
    first); said once, here only (in a group, forwarded commands are ignored quietly)."""
    t = translator_for(update)
    await reply(
        update,
        t.gettext(
            "Forwarded commands are not run: a forwarded message speaks for whoever wrote it. "
            "Type the command yourself."
        ),
    )
