"""Inline keyboards and their callback data (`fb:`, `tk:`, `st:`, `fg:` prefixes), in one place."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import Translator

LABEL_SUFFIX = ":noop"  # callback data of a button that only shows a value (`st:noop`)
NOT_FOR_ME = "not_for_me"
SAVE = "save"
APPLIED = "applied"
FEEDBACK_PREFIX = "fb"
TRACKER_PREFIX = "tk"
MUTE_PREFIX = "mu"  # `mu:<source id>`: stop following a source after three 👎
MAX_DELIVERY_ID = 2**31 - 1
TICK = "✔ "  # before a mark that is on
# `fb:<code>:<delivery id>`. "i" (👍 Interested) is under pushes sent before ⭐ Save took its
# place: it saves. "d" is a ⭐ under a digest (or a club's merged message), one per offer.
_FEEDBACK_CODES = {"s": SAVE, "i": SAVE, "a": APPLIED, "n": NOT_FOR_ME, "d": SAVE}
# Offers with a ⭐ under one digest part at most (Telegram takes 100 buttons a message).
MAX_LIST_BUTTONS = 50
LIST_LABEL = 32  # characters of an offer's text on its ⭐ button


def with_buttons(chat_type: str) -> bool:
    """Whether offers sent to a chat of this type carry ⭐ ✅ 👎: private chats and groups (a
    club's marks are its administrators'), not channels, whose readers would each meet a
    refusal under every post."""
    return chat_type != "channel"


@dataclass(frozen=True, slots=True)
class Mark:
    """A parsed press under an offer."""

    action: str  # save | applied | not_for_me
    delivery_id: int
    listed: bool  # a ⭐ under a digest or merged message (one button per offer)


def offer_keyboard(
    t: Translator,
    delivery_id: int,
    *,
    saved: bool = False,
    applied: bool = False,
    not_for_me: bool = False,
) -> InlineKeyboardMarkup:
    """⭐ Save · ✅ Applied · 👎 Not for me under a pushed offer; the marks that are on are
    ticked (pressing one again undoes it)."""

    def tick(label: str, on: bool) -> str:
        return TICK + label if on else label

    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tick(t.plain("⭐ Saved") if saved else t.plain("⭐ Save"), saved),
                    callback_data=f"{FEEDBACK_PREFIX}:s:{delivery_id}",
                ),
                InlineKeyboardButton(
                    tick(t.plain("✅ Applied"), applied),
                    callback_data=f"{FEEDBACK_PREFIX}:a:{delivery_id}",
                ),
                InlineKeyboardButton(
                    tick(t.plain("👎 Not for me"), not_for_me),
                    callback_data=f"{FEEDBACK_PREFIX}:n:{delivery_id}",
                ),
            ]
        ]
    )


def list_keyboard(offers: list[tuple[int, str]]) -> InlineKeyboardMarkup | None:
    """One ⭐ per offer of a digest part or merged message (delivery id, its text), labelled
    with the start of the offer's text so each button says which offer it saves; the first
    MAX_LIST_BUTTONS only (the rest are saved from their own message or not at all)."""
    rows = [
        [
            InlineKeyboardButton(
                "⭐ " + excerpt_label(text), callback_data=f"{FEEDBACK_PREFIX}:d:{delivery_id}"
            )
        ]
        for delivery_id, text in offers[:MAX_LIST_BUTTONS]
    ]
    return InlineKeyboardMarkup(rows) if rows else None


def excerpt_label(text: str) -> str:
    """The start of an offer's text on one line, for a button."""
    flat = " ".join(text.split())
    return flat if len(flat) <= LIST_LABEL else flat[: LIST_LABEL - 1].rstrip() + "…"


def ticked_list(markup: InlineKeyboardMarkup, data: str, on: bool) -> InlineKeyboardMarkup:
    """A digest's ⭐ keyboard with the button carrying `data` ticked (or not); the others as
    they were."""
    rows = []
    for row in markup.inline_keyboard:
        buttons = []
        for button in row:
            if button.callback_data == data:
                label = button.text.removeprefix(TICK)
                button = InlineKeyboardButton(TICK + label if on else label, callback_data=data)
            buttons.append(button)
        rows.append(buttons)
    return InlineKeyboardMarkup(rows)


def parse_feedback(data: str) -> Mark | None:
    """`fb:s:42` -> Mark("save", 42, listed=False); None for anything else."""
    prefix, _, rest = data.partition(":")
    code, _, number = rest.partition(":")
    # Callback data can be forged: only ASCII digits (`"²".isdigit()` holds) naming an id the
    # outbox can hold (a 32-bit integer on PostgreSQL).
    if prefix != FEEDBACK_PREFIX or code not in _FEEDBACK_CODES:
        return None
    if not is_small_number(number, MAX_DELIVERY_ID):
        return None
    return Mark(_FEEDBACK_CODES[code], int(number), listed=code == "d")


def is_small_number(text: str, most: int) -> bool:
    """Whether forged callback data holds a plain number from 0 to `most` (ASCII digits only,
    at most 10 of them: no huge integer is ever parsed)."""
    return text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= most


def is_label(data: str) -> bool:
    """A button that only shows a value (the daily limit between − and + in /settings): its
    callback data ends in `:noop` and pressing it does nothing."""
    return data.endswith(LABEL_SUFFIX)
