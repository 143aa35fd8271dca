"""Merging a group's offers into few messages, each within Telegram's 4096 characters."""

from __future__ import annotations

from bot.delivery import MERGE_SEPARATOR, merge, visible_length
from bot.i18n import translator
from bot.render import MESSAGE_LIMIT, render_offer, telegram_length
from bot.sandbox.telegram_api import parse_telegram_html


def _offer(n: int, size: int) -> str:
    return render_offer(
        translator("fr"),
        author=f"acme{n}",
        text=f"Offre {n} : " + "développeur·se & <b>Python</b> " * (size // 30),
        url=f"https://x.com/acme/status/{n}",
        tags={"contracts": ["cdi"], "city": "Lyon", "apply_url": f"https://jobs.example/{n}"},
    )


def test_visible_length_is_what_telegram_counts() -> None:
    text = _offer(1, 300)
    assert visible_length(text) == telegram_length(parse_telegram_html(text))


def test_offers_are_packed_in_order_and_never_split() -> None:
    texts = [_offer(n, 700 if n % 3 else 3900) for n in range(40)]
    groups = merge(texts)
    assert [i for group in groups for i in group] == list(range(40))
    assert len(groups) < 40
    for group in groups:
        message = MERGE_SEPARATOR.join(texts[i] for i in group)
        assert telegram_length(parse_telegram_html(message)) <= MESSAGE_LIMIT
    # A text that fills a message on its own goes alone.
    assert [3] in groups


def test_one_hundred_short_offers_make_a_handful_of_messages() -> None:
    groups = merge([_offer(n, 250) for n in range(100)])
    assert len(groups) <= 15
