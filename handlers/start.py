"""/start and /help, and the answer to anything the bot does not understand."""

from __future__ import annotations

import html

from telegram import Update

from bot.context import Context
from bot.i18n import Translator
from handlers.common import reply, translator_for


def command_descriptions(t: Translator) -> list[tuple[str, str]]:
    """The command menu, in one language (also used for setMyCommands)."""
    return [
        ("follow", t.gettext("Follow X accounts: /follow @acme_jobs")),
        ("unfollow", t.gettext("Stop following: /unfollow @acme_jobs or all")),
        ("list", t.gettext("Show the accounts you follow")),
        ("help", t.gettext("How jobrelay works")),
        ("start", t.gettext("Welcome message")),
    ]


def help_text(t: Translator) -> str:
    """The full help message."""
    lines = [
        t.gettext(
            "I watch recruiters' and job boards' accounts on X for you and send each new "
            "job offer here as soon as it is posted: no need to keep checking timelines."
        ),
        "",
        t.gettext("<b>Commands</b>"),
        t.gettext("/follow @handle [@handle …]: follow up to 50 X accounts at once"),
        t.gettext("/unfollow @handle: stop following an account (/unfollow all: every one)"),
        t.gettext("/list: the accounts you follow"),
        t.gettext("/help: this message"),
        "",
        t.gettext("Example: <code>/follow @acme_jobs @paris_recrute</code>"),
    ]
    return "\n".join(lines)


async def start(update: Update, context: Context) -> None:
    """Greet a new user and show how to follow a first account."""
    t = translator_for(update)
    user = update.effective_user
    name = html.escape(user.first_name) if user and user.first_name else ""
    greeting = t.gettext("Hello %(name)s!", name=name) if name else t.gettext("Hello!")
    await reply(update, f"{greeting}\n\n{help_text(t)}")


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
