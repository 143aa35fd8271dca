"""/export and /import: a chat's subscriptions as an OPML file, and back."""

from __future__ import annotations

import logging
import re

from telegram import Document, Message, Update
from telegram.error import TelegramError

from bot.arguments import HANDLE_RE
from bot.context import Context
from bot.follows import X_KIND
from bot.i18n import Markup, Translator, html_join
from bot.opml import OpmlError, Outline, read_opml, write_opml
from bot.sources.base import NotConfigured
from bot.sources.feeds import FeedAddress, FeedAddressError, feed_address
from handlers.access import Call, command
from handlers.common import code, reply, shorten, translator_for
from handlers.follow import (
    categories_followed_text,
    feed_report_text,
    follow_report_text,
    follow_room,
    quota_holder,
    show_typing,
    some_handles,
    some_of,
)
from handlers.tracker import export_applications

log = logging.getLogger(__name__)

MAX_OPML_BYTES = 1024 * 1024
MAX_IMPORT = 200  # subscriptions one /import adds at most
IMPORT_CAPTION = re.compile(r"^/import(?:@\w+)?(?:\s|$)", re.IGNORECASE)


async def export_command(update: Update, context: Context) -> None:
    """/export [in @channel]: the chat's X accounts, feeds and categories as an OPML file;
    /export applications: the chat's applications as a CSV file."""
    if [word.lower() for word in (context.args or [])[:1]] == ["applications"]:
        await export_applications(update, context)
        return
    call = await command(update, context, changes=False)
    message = update.effective_message
    if call is None or message is None:
        return
    t = call.t
    services = context.bot_data.services
    following = await services.follows.following(call.chat_id)
    kinds = await services.categories.followed(call.chat_id)
    outlines = [
        Outline(kind="x", value=f.name, title=f"@{f.name}")
        if f.kind == X_KIND
        # Other readers show the title as it is: without the icon messages name feeds with.
        else Outline(kind="feed", value=f.url or f.address, title=f.name.partition(" ")[2])
        for f in following
    ]
    outlines += [Outline(kind="category", value=slug, title=slug) for slug in kinds]
    if not outlines:
        await call.reply(
            update,
            t.gettext("You follow nothing yet, so there is nothing to export. See /help."),
        )
        return
    data = write_opml(t.plain("jobrelay subscriptions"), outlines, created=services.clock.now())
    await message.reply_document(
        data,
        filename="jobrelay.opml",
        caption=t.nplain(
            "%(count)d subscription. Send this file back with /import (here or in another "
            "chat) to follow it again; feed readers can import it too.",
            "%(count)d subscriptions. Send this file back with /import (here or in another "
            "chat) to follow them again; feed readers can import it too.",
            len(outlines),
        ),
        do_quote=False,
    )


async def import_command(update: Update, context: Context) -> None:
    """/import [in @channel] as the caption of an OPML file, or in reply to one."""
    message = update.effective_message
    if message is None:
        return
    if context.args is None:  # a file whose caption is the command: its words are the args
        words = (message.caption or "").split()
        addressed = words[0].partition("@")[2] if words else ""
        if addressed and addressed.lower() != (context.bot.username or "").lower():
            return  # /import@another_bot in a group is not for us
        context.args = words[1:]
    call = await command(update, context, changes=True)
    if call is None:
        return
    t = call.t
    document = _document_of(message)
    if document is None:
        await call.reply(
            update,
            t.gettext(
                "Send an OPML file with <code>/import</code> as its caption, or answer a "
                "message carrying one with <code>/import</code>. /export makes such a file."
            ),
        )
        return
    if document.file_size is not None and document.file_size > MAX_OPML_BYTES:
        await call.reply(update, _opml_problem(t, "too_large"))
        return
    try:
        file = await context.bot.get_file(document.file_id)
        data = bytes(await file.download_as_bytearray())
    except TelegramError as exc:
        log.warning("could not download an OPML file: %s", exc)
        await call.reply(
            update,
            t.gettext(
                "Telegram could not give me the file; please send it again in a minute. "
                "Nothing was changed."
            ),
        )
        return
    if len(data) > MAX_OPML_BYTES:
        await call.reply(update, _opml_problem(t, "too_large"))
        return
    try:
        read = read_opml(data, max_outlines=MAX_IMPORT)
    except OpmlError as exc:
        await call.reply(update, _opml_problem(t, exc.code))
        return
    await _import(update, context, call, read.outlines, read.skipped)


async def _import(
    update: Update,
    context: Context,
    call: Call,
    outlines: list[Outline],
    skipped: list[str],
) -> None:
    t = call.t
    services = context.bot_data.services
    handles: list[str] = []
    addresses: list[FeedAddress] = []
    slugs: list[str] = []
    refused: list[str | Markup] = [shorten(text, 80) for text in skipped]
    for outline in outlines:
        if outline.kind == "x" and HANDLE_RE.fullmatch(outline.value):
            if outline.value.lower() not in {h.lower() for h in handles}:
                handles.append(outline.value)
        elif outline.kind == "category" and (
            slug := services.categories.catalogue.category_for(outline.value)
        ):
            if slug not in slugs:
                slugs.append(slug)
        elif outline.kind == "feed":
            try:
                address = feed_address(outline.value)
            except FeedAddressError:
                address = None
            if address is None:
                refused.append(code(outline.value, 120))
            elif address.key not in {a.key for a in addresses}:
                addresses.append(address)
        else:
            refused.append(shorten(outline.title or outline.value, 80))
    lines: list[Markup] = []
    room = await follow_room(update, context, call.chat_id, handles, addresses)
    if room is not None and room[0] + room[1] > room[2]:
        # The same cap as /follow: what fits is followed, the rest is named.
        followed = {f.address for f in await services.follows.following(call.chat_id)}
        left = max(0, room[2] - room[1])
        over_cap: list[str] = []
        kept_addresses: list[FeedAddress] = []
        for address in addresses:
            if address.key in followed or left > 0:
                left -= address.key not in followed
                kept_addresses.append(address)
            else:
                over_cap.append(address.key)
        kept_handles: list[str] = []
        for handle in handles:
            if handle.lower() in followed or left > 0:
                left -= handle.lower() not in followed
                kept_handles.append(handle)
            else:
                over_cap.append(f"@{handle}")
        addresses, handles = kept_addresses, kept_handles
        lines.append(
            t.gettext(
                "Not added, as a chat follows at most %(cap)d X accounts and feeds: %(items)s.",
                cap=room[2],
                items=some_of([shorten(item, 80) for item in over_cap]),
            )
        )
    if addresses or handles:
        await show_typing(update)  # first fetches and lookups may take a while
    if addresses:
        lines.append(
            feed_report_text(
                t, await services.follows.follow_feeds(call.chat_id, addresses, call.thread_id)
            )
        )
    if handles:
        try:
            report = await services.follows.follow(
                call.chat_id, handles, call.thread_id, user_id=quota_holder(update, context)
            )
        except NotConfigured:
            lines.append(
                t.gettext(
                    "X accounts were not added: this bot has no X API access configured "
                    "(%(handles)s).",
                    handles=some_handles(handles),
                )
            )
        else:
            lines.append(
                follow_report_text(t, report, services.settings.x_lookups_per_user_per_day)
            )
    if slugs:
        done = await services.categories.follow(call.chat_id, slugs, call.thread_id)
        lines.append(categories_followed_text(t, services.categories.catalogue, done))
    if refused:
        lines.append(
            t.gettext(
                "Not understood, so not added: %(items)s. jobrelay imports feeds (xmlUrl), "
                "X accounts and its own categories.",
                items=some_of(refused),
            )
        )
    if not lines:
        lines.append(_opml_problem(t, "empty"))
    await call.reply(update, html_join((line for line in lines if line), "\n"))


async def opml_without_command(update: Update, context: Context) -> None:
    """An OPML file sent to the bot without /import: say how to import it (nothing changes
    without the command)."""
    message = update.effective_message
    if message is None:
        return
    t = translator_for(update)
    await reply(
        update,
        t.gettext(
            "To follow what this file lists, answer it with <code>/import</code> (or send it "
            "again with <code>/import</code> as its caption)."
        ),
    )


def _document_of(message: Message) -> Document | None:
    """The file of the command's message, or of the message it answers."""
    if message.document is not None:
        return message.document
    replied = message.reply_to_message
    return replied.document if replied is not None else None


def _opml_problem(t: Translator, problem: str) -> Markup:
    if problem == "too_large":
        return t.gettext(
            "That file is larger than 1 MB; an OPML file of subscriptions is far "
            "smaller. Nothing was changed."
        )
    if problem == "too_many":
        return t.gettext(
            "That file lists more than %(max)d subscriptions; /import takes at most %(max)d "
            "at a time. Nothing was changed.",
            max=MAX_IMPORT,
        )
    if problem == "empty":
        return t.gettext("That OPML file lists no subscriptions. Nothing was changed.")
    return t.gettext(
        "That file is not an OPML file (the XML list of subscriptions feed readers and "
        "/export make). Nothing was changed."
    )
