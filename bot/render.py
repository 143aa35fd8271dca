"""Offers and notices as Telegram HTML, always within Telegram's 4096-character limit (pure)."""

from __future__ import annotations

import html
from typing import Any

from bot.i18n import Translator

MESSAGE_LIMIT = 4096
ELLIPSIS = "…"


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units of the text after entity parsing."""
    return len(text.encode("utf-16-le")) // 2


def _truncate(text: str, budget: int) -> str:
    """Cut plain text to at most `budget` UTF-16 units, never inside a surrogate pair."""
    if telegram_length(text) <= budget:
        return text
    out: list[str] = []
    used = 0
    limit = budget - telegram_length(ELLIPSIS)
    for char in text:
        size = telegram_length(char)
        if used + size > limit:
            break
        out.append(char)
        used += size
    return "".join(out).rstrip() + ELLIPSIS


def render_offer(t: Translator, *, author: str, text: str, url: str) -> str:
    """An offer: author, the post text (escaped, truncated to fit) and its link."""
    header = f"<b>@{html.escape(author)}</b>"
    link_label = t.gettext("View on X")
    footer = f'<a href="{html.escape(url, quote=True)}">{html.escape(link_label)}</a>'
    # Visible length = what remains after Telegram parses the tags and entities.
    fixed = telegram_length(f"@{author}\n\n\n\n{link_label}")
    body = _truncate(text.strip(), MESSAGE_LIMIT - fixed)
    return f"{header}\n\n{html.escape(body, quote=False)}\n\n{footer}"


def render_notice(t: Translator, payload: dict[str, Any]) -> str:
    """A service message queued in the outbox, in the chat's language."""
    code = payload.get("code")
    handle = html.escape(str(payload.get("handle", "")))
    if code == "account_gone":
        return t.gettext(
            "@%(handle)s is no longer available on X (deleted, suspended or made private). "
            "You will get nothing more from it; /unfollow @%(handle)s to remove it from /list.",
            handle=handle,
        )
    return html.escape(str(payload.get("text", "")))
