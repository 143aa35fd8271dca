"""Inline keyboards and their callback data (`fb:`, `st:`, `fg:` prefixes), in one place."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import Translator

LABEL_SUFFIX = ":noop"  # callback data of a button that only shows a value (`st:noop`)
INTERESTED = "interested"
NOT_FOR_ME = "not_for_me"
FEEDBACK_PREFIX = "fb"
MAX_DELIVERY_ID = 2**31 - 1
_FEEDBACK_CODES = {"i": INTERESTED, "n": NOT_FOR_ME}


def offer_keyboard(
    t: Translator, delivery_id: int, chosen: str | None = None
) -> InlineKeyboardMarkup:
    """ "Interested" / "Not for me" under a pushed offer; the chosen one is ticked."""
    interested = t.plain("👍 Interested")
    not_for_me = t.plain("👎 Not for me")
    if chosen == INTERESTED:
        interested = "✅ " + interested
    elif chosen == NOT_FOR_ME:
        not_for_me = "✅ " + not_for_me
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    interested, callback_data=f"{FEEDBACK_PREFIX}:i:{delivery_id}"
                ),
                InlineKeyboardButton(
                    not_for_me, callback_data=f"{FEEDBACK_PREFIX}:n:{delivery_id}"
                ),
            ]
        ]
    )


def parse_feedback(data: str) -> tuple[str, int] | None:
    """`fb:i:42` -> ("interested", 42); None for anything else."""
    prefix, _, rest = data.partition(":")
    code, _, number = rest.partition(":")
    # Callback data can be forged: only ASCII digits (`"²".isdigit()` holds) naming an id the
    # outbox can hold (a 32-bit integer on PostgreSQL).
    if prefix != FEEDBACK_PREFIX or code not in _FEEDBACK_CODES:
        return None
    if not (number.isascii() and number.isdigit()) or int(number) > MAX_DELIVERY_ID:
        return None
    return _FEEDBACK_CODES[code], int(number)


def is_label(data: str) -> bool:
    """A button that only shows a value (the daily limit between − and + in /settings): its
    callback data ends in `:noop` and pressing it does nothing."""
    return data.endswith(LABEL_SUFFIX)
