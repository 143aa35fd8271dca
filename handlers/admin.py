"""/admin: operator commands, answered only to ADMIN_USER_IDS (others see an unknown command)."""

from __future__ import annotations

from telegram import Update

from bot.context import Context
from bot.i18n import Translator
from handlers.common import reply, translator_for
from handlers.start import unknown_command
from storage.stats import RelayStatus


def status_text(t: Translator, status: RelayStatus, now_epoch: float) -> str:
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
    return "\n".join(lines)


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
    if words not in ([], ["status"]):
        await reply(update, t.gettext("Operator commands: <code>/admin status</code>."))
        return
    status = await services.admin.status()
    now = update.effective_message.date.timestamp() if update.effective_message else 0.0
    await reply(update, status_text(t, status, now))
