"""Telegram-facing code: one module per command family; `register` wires them."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from handlers.admin import admin
from handlers.buttons import (
    forget_button,
    forget_command,
    settings_button,
    settings_command,
)
from handlers.categories import categories_command, category_button, filter_command
from handlers.clubs import bot_membership, group_upgraded, once, remember_chat, throttle
from handlers.errors import on_error
from handlers.follow import follow, list_follows, unfollow
from handlers.healthy import digest, limit, pause, quiet, resume, timezone
from handlers.opml import (
    IMPORT_CAPTION,
    export_command,
    import_command,
    opml_without_command,
)
from handlers.start import (
    forwarded_command,
    help_command,
    plain_text,
    start,
    unknown_command,
)
from handlers.stats import stats
from handlers.tracker import (
    applied_command,
    feedback_button,
    mute_button,
    saved_command,
    tracker_button,
)
from handlers.why import why


def register(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Add every handler to the application."""
    # Commands come only from new messages written by their sender: never from a channel post,
    # an edit (editing a days-old `/pause 3d` must not pause again) or a forward (a forwarded
    # `/unfollow all` speaks for whoever wrote it, not for whoever forwarded it).
    written = filters.UpdateType.MESSAGE & ~filters.FORWARDED
    # In this order, before any command: the throttle (in memory: a flood never reaches the
    # database), then an update delivered twice is dropped, then the chat is noted.
    application.add_handler(TypeHandler(Update, throttle), group=-3)
    application.add_handler(TypeHandler(Update, once), group=-2)
    application.add_handler(TypeHandler(Update, remember_chat), group=-1)
    application.add_handler(ChatMemberHandler(bot_membership, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_handler(
        MessageHandler(
            filters.StatusUpdate.MIGRATE & ~filters.UpdateType.CHANNEL_POSTS, group_upgraded
        )
    )
    application.add_handler(CommandHandler("start", start, filters=written))
    application.add_handler(CommandHandler("help", help_command, filters=written))
    application.add_handler(CommandHandler("follow", follow, filters=written))
    application.add_handler(CommandHandler("unfollow", unfollow, filters=written))
    application.add_handler(CommandHandler("list", list_follows, filters=written))
    for name, callback in [
        ("categories", categories_command),
        ("filter", filter_command),
        ("limit", limit),
        ("digest", digest),
        ("quiet", quiet),
        ("pause", pause),
        ("resume", resume),
        ("timezone", timezone),
        ("stats", stats),
        ("settings", settings_command),
        ("forget", forget_command),
        ("export", export_command),
        ("import", import_command),
        ("why", why),
        ("saved", saved_command),
        ("applied", applied_command),
    ]:
        application.add_handler(CommandHandler(name, callback, filters=written))
    # An OPML file sent with /import as its caption (a command handler reads text only).
    application.add_handler(
        MessageHandler(
            filters.Document.ALL & filters.CaptionRegex(IMPORT_CAPTION) & written,
            import_command,
        )
    )
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE
            & filters.ChatType.PRIVATE
            & (filters.Document.FileExtension("opml") | filters.Document.FileExtension("xml"))
            & ~filters.CaptionRegex(IMPORT_CAPTION),
            opml_without_command,
        )
    )
    application.add_handler(CallbackQueryHandler(settings_button, pattern=r"^st:"))
    application.add_handler(CallbackQueryHandler(forget_button, pattern=r"^fg:"))
    application.add_handler(CallbackQueryHandler(feedback_button, pattern=r"^fb:"))
    application.add_handler(CallbackQueryHandler(tracker_button, pattern=r"^tk:"))
    application.add_handler(CallbackQueryHandler(mute_button, pattern=r"^mu:"))
    application.add_handler(CallbackQueryHandler(category_button, pattern=r"^ct:"))
    application.add_handler(CommandHandler("admin", admin, filters=written))
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE
            & filters.FORWARDED
            & filters.ChatType.PRIVATE
            & (filters.COMMAND | filters.CaptionRegex(IMPORT_CAPTION)),
            forwarded_command,
        )
    )
    application.add_handler(
        MessageHandler(written & filters.COMMAND & filters.ChatType.PRIVATE, unknown_command)
    )
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND,
            plain_text,
        )
    )
    application.add_error_handler(on_error)
