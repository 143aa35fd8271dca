"""/admin: operator commands, answered only to ADMIN_USER_IDS (others see an unknown command)."""

from __future__ import annotations

from telegram import Update

from bot.budget import PRICE_PER_POST, PRICE_PER_USER, Outlook
from bot.context import Context
from bot.follows import X_KIND
from bot.i18n import Markup, Translator, html_join
from bot.sources.base import AccountNotFound, NotConfigured, SourceError
from handlers.common import code, reply, shorten, translator_for
from handlers.start import unknown_command
from storage.sources import BoardRow
from storage.stats import RelayStatus
from storage.usage import Usage


def status_text(t: Translator, status: RelayStatus, now_epoch: float) -> Markup:
    """The /admin status report."""
    lines = [
        t.gettext("<b>jobrelay status</b>"),
        t.gettext(
            "Chats: %(active)d active, %(inactive)d inactive (blocked or removed the bot)",
            active=status.active_chats,
            inactive=status.inactive_chats,
        ),
        t.gettext(
            "Accounts: %(total)d, %(failing)d failing, %(gone)d gone from X",
            total=status.sources,
            failing=status.failing_sources,
            gone=status.gone_sources,
        ),
        t.gettext(
            "Feeds: %(total)d, %(failing)d failing, %(paused)d paused after failing too long",
            total=status.feeds,
            failing=status.failing_feeds,
            paused=status.paused_feeds,
        ),
        t.gettext(
            "Last 24 h: %(sent)d messages sent, %(failed)d rejected by Telegram",
            sent=status.sent_last_day,
            failed=status.failed_last_day,
        ),
    ]
    if status.queued and status.oldest_queued is not None:
        minutes = max(0, int((now_epoch - status.oldest_queued.timestamp()) // 60))
        lines.append(
            t.gettext(
                "Queued: %(queued)d messages, the oldest for %(minutes)d min",
                queued=status.queued,
                minutes=minutes,
            )
        )
    else:
        lines.append(t.gettext("Queued: nothing"))
    return html_join(lines, "\n")


def usage_text(t: Translator, used: Usage, look: Outlook) -> Markup:
    """The /admin usage report: this month's X reads, their cost and where they lead."""
    cost = used.posts * PRICE_PER_POST + used.users * PRICE_PER_USER
    projected_cost = look.projected * PRICE_PER_POST
    share = 100 * used.posts // look.budget if look.budget else 100
    if used.capped or look.exhausted:
        polling = t.gettext("stopped until the 1st of next month")
    elif look.stretch > 1:
        polling = t.gettext("slowed down ×%(stretch).1f to last the month", stretch=look.stretch)
    else:
        polling = t.gettext("normal")
    return html_join(
        [
            t.gettext("<b>X this month (%(month)s, UTC)</b>", month=used.month),
            t.gettext(
                "Posts read: %(posts)d of a %(budget)d budget (%(share)d%%)",
                posts=used.posts,
                budget=look.budget,
                share=share,
            ),
            t.gettext(
                "Requests: %(requests)d · accounts looked up: %(users)d",
                requests=used.requests,
                users=used.users,
            ),
            t.gettext("Cost so far: $%(cost).2f", cost=cost),
            t.gettext(
                "Projected by the month's end: %(posts)d posts, $%(cost).2f",
                posts=look.projected,
                cost=projected_cost,
            ),
            t.gettext("Polling: %(state)s", state=polling),
        ],
        "\n",
    )


def _board_line(t: Translator, row: BoardRow) -> Markup:
    name = f"@{row.name}" if row.kind == X_KIND else row.name
    line = Markup("• %s") % shorten(name, 100)
    if row.kind != X_KIND:
        line += Markup(" — ") + code(row.key, 200)
    return line


async def board_command(t: Translator, context: Context, args: list[str]) -> Markup:
    """/admin board list | candidates | add WORD | remove WORD: the curated sources, whose
    offers reach category followers."""
    services = context.bot_data.services
    verb = args[0].lower() if args else "list"
    if verb == "list" and len(args) <= 1:
        rows = await services.admin.boards()
        if not rows:
            return t.gettext(
                "No job board yet: category followers get nothing until one is added "
                "(<code>/admin board candidates</code> suggests some)."
            )
        lines = [t.ngettext("%(count)d job board:", "%(count)d job boards:", len(rows))]
        for row in rows:
            origin = (
                t.gettext("(BOARDS_FILE)") if row.origin == "file" else t.gettext("(added here)")
            )
            lines.append(_board_line(t, row) + Markup(" ") + origin)
        return html_join(lines, "\n")
    if verb == "candidates" and len(args) == 1:
        rows = await services.admin.board_candidates()
        if not rows:
            return t.gettext("No candidate: every followed source is already a job board.")
        lines = [
            t.gettext(
                "Most-followed sources that are not job boards (followers; posts and offers in "
                "the last 30 days):"
            )
        ]
        for row in rows:
            share = 100 * row.offers // row.posts if row.posts else 0
            lines.append(
                _board_line(t, row)
                + Markup(" · ")
                + t.gettext(
                    "%(followers)d followers; %(posts)d posts, %(share)d%% offers",
                    followers=row.followers,
                    posts=row.posts,
                    share=share,
                )
            )
        lines.append(t.gettext("Add one with <code>/admin board add @handle</code> or its URL."))
        return html_join(lines, "\n")
    if verb in ("add", "remove") and len(args) == 2:
        adding = verb == "add"
        found = await services.follows.board_source(args[1], create=adding)
        if isinstance(found, AccountNotFound):
            return t.gettext("%(word)s: no such X account or feed.", word=code(args[1], 80))
        if isinstance(found, NotConfigured):
            return t.gettext("X is not configured (X_BEARER_TOKEN): X accounts cannot be added.")
        if isinstance(found, SourceError):
            return t.gettext(
                "%(word)s could not be checked (%(why)s); nothing was changed.",
                word=code(args[1], 80),
                why=str(found)[:200],
            )
        source_id, name = found
        changed = await services.admin.set_board(source_id, adding)
        if adding:
            return (
                t.gettext(
                    "✅ %(name)s is now a job board: its offers reach category followers.",
                    name=name,
                )
                if changed
                else t.gettext("%(name)s is already a job board.", name=name)
            )
        return (
            t.gettext(
                "%(name)s is no longer a job board: its offers reach only its own followers.",
                name=name,
            )
            if changed
            else t.gettext("%(name)s is not a job board.", name=name)
        )
    return t.gettext(
        "Job boards: <code>/admin board list</code>, <code>/admin board candidates</code>, "
        "<code>/admin board add @handle|URL</code>, <code>/admin board remove @handle|URL</code>."
    )


async def admin(update: Update, context: Context) -> None:
    """/admin [status]"""
    services = context.bot_data.services
    user = update.effective_user
    if not services.admin.is_admin(user.id if user else None):
        # Do not reveal that operator commands exist: answer as to any unknown command.
        chat = update.effective_chat
        if chat is not None and chat.type == "private":
            await unknown_command(update, context)
        return
    t = translator_for(update)
    words = [w.lower() for w in context.args or []]
    if words == ["usage"]:
        used, look = await services.admin.usage()
        await reply(update, usage_text(t, used, look))
        return
    if words[:1] == ["board"]:
        await reply(update, await board_command(t, context, (context.args or [])[1:]))
        return
    if words == ["feedback", "export"]:
        await feedback_export(update, context, t)
        return
    if words not in ([], ["status"]):
        await reply(
            update,
            t.gettext(
                "Operator commands: <code>/admin status</code>, <code>/admin usage</code>, "
                "<code>/admin board list</code>, <code>/admin board candidates</code>, "
                "<code>/admin board add @handle|URL</code>, "
                "<code>/admin board remove @handle|URL</code>, "
                "<code>/admin feedback export</code>."
            ),
        )
        return
    status = await services.admin.status()
    now = update.effective_message.date.timestamp() if update.effective_message else 0.0
    await reply(update, status_text(t, status, now))


async def feedback_export(update: Update, context: Context, t: Translator) -> None:
    """/admin feedback export: the posts people marked "not for me", as a JSONL document."""
    message = update.effective_message
    if message is None:
        return
    chat = update.effective_chat
    if chat is None or chat.type != "private":
        # What every chat marked is the operator's, not a group's members'.
        await reply(
            update,
            t.gettext(
                "The feedback export is sent only in a private chat with me: "
                "send <code>/admin feedback export</code> there."
            ),
        )
        return
    lines = await context.bot_data.services.admin.feedback_export()
    if not lines:
        await reply(update, t.gettext("Nobody has marked an offer “Not for me” yet."))
        return
    await message.reply_document(
        ("\n".join(lines) + "\n").encode("utf-8"),
        filename="jobrelay-not-for-me.jsonl",
        caption=t.nplain(
            "%(count)d post marked “Not for me”, with how the reader reads it now (no chat "
            "is named): training data for the offer reader.",
            "%(count)d posts marked “Not for me”, with how the reader reads them now (no "
            "chat is named): training data for the offer reader.",
            len(lines),
        ),
        do_quote=False,
    )
