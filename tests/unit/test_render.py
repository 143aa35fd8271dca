"""Offers rendered as Telegram HTML: escaped, linked, and never over 4096 characters."""

from __future__ import annotations

import pytest

from bot.i18n import Markup, Translator
from bot.render import MESSAGE_LIMIT, render_digest, render_notice, render_offer, telegram_length
from bot.sandbox.telegram_api import parse_telegram_html
from handlers.common import REPLY_LIMIT, split_reply

EN = Translator("en")


def test_offer_text_is_escaped_and_linked() -> None:
    html_text = render_offer(
        EN,
        author="acme_jobs",
        text="<b> R&D lead & co </b>",
        url="https://x.com/acme_jobs/status/1",
    )
    assert "&lt;b&gt; R&amp;D lead &amp; co &lt;/b&gt;" in html_text
    assert '<a href="https://x.com/acme_jobs/status/1">View on X</a>' in html_text
    plain = parse_telegram_html(html_text)
    assert "<b> R&D lead & co </b>" in plain
    assert plain.startswith("@acme_jobs")


@pytest.mark.parametrize("unit", ["a", "&", "<", "é", "😀", "👩‍💻"])
def test_a_huge_offer_is_cut_to_the_limit_and_still_parses(unit: str) -> None:
    text = unit * 5000
    html_text = render_offer(
        Translator("fr"), author="a" * 15, text=text, url="https://x.com/a/status/1"
    )
    plain = parse_telegram_html(html_text)
    assert telegram_length(plain) <= MESSAGE_LIMIT
    assert telegram_length(plain) > MESSAGE_LIMIT - 10
    assert plain.rstrip().endswith("Voir sur X")
    assert "…" in plain


def test_a_post_that_fits_is_not_cut() -> None:
    text = "x" * 280
    assert text in parse_telegram_html(render_offer(EN, author="a", text=text, url="https://x.com"))


def test_account_gone_notice_in_french() -> None:
    text = render_notice(Translator("fr"), {"code": "account_gone", "handle": "acme_jobs"})
    assert "n'est plus disponible" in text and "@acme_jobs" in text


def test_a_long_digest_is_split_between_offers_never_inside_one() -> None:
    offers = [
        (f"source{i % 3}", f"Offer {i}: " + ("long text <&> " * 60), f"https://x.com/s/status/{i}")
        for i in range(40)
    ]
    parts = render_digest(EN, offers)
    assert len(parts) > 1
    seen = []
    for part in parts:
        plain = parse_telegram_html(part)  # every part is valid Telegram HTML on its own
        assert telegram_length(plain) <= MESSAGE_LIMIT
        seen += [line.split(":")[0] for line in plain.splitlines() if line.startswith("• Offer")]
    # Every offer exactly once, grouped by source, oldest first within a source.
    assert sorted(seen) == sorted(f"• Offer {i}" for i in range(40))
    assert seen == [f"• Offer {i}" for s in range(3) for i in range(40) if i % 3 == s]


def test_a_digest_starts_with_its_count_and_names_each_source() -> None:
    parts = render_digest(Translator("fr"), [("acme_jobs", "Dev", "https://x.com/a/status/1")])
    plain = parse_telegram_html(parts[0])
    assert plain.splitlines()[0] == "Votre récapitulatif : 1 offre"
    assert "@acme_jobs" in plain and "• Dev\n    Voir sur X" in plain


TAGS = {
    "contracts": ["cdi", "full-time"],
    "work_mode": "hybrid",
    "city": "Lyon",
    "apply_url": "https://jobs.acme.fr/o/1?a=1&b=<2>",
    "categories": ["software", "web"],
}


def test_an_offer_shows_its_tags_apply_link_and_every_account_in_each_language() -> None:
    from storage.outbox import Credit

    also = (
        Credit("acme_jobs", "https://x.com/acme_jobs/status/9"),
        Credit("lyon_jobs", "https://x.com/u<2"),
    )
    english = render_offer(
        EN, author="Acme_Jobs", text="Python dev", url="https://x.com/a/1", tags=TAGS, also=also
    )
    plain = parse_telegram_html(english)
    # The poster itself is not repeated among the others.
    assert plain.startswith("@Acme_Jobs · also posted by @lyon_jobs\n")
    assert "Permanent (CDI) · Full-time · Hybrid · 📍 Lyon" in plain
    assert "🏷 Software · Web" in plain
    assert '<a href="https://jobs.acme.fr/o/1?a=1&amp;b=&lt;2&gt;">👉 Apply</a>' in english
    assert '<a href="https://x.com/u&lt;2">@lyon_jobs</a>' in english
    french = parse_telegram_html(
        render_offer(Translator("fr"), author="a", text="t", url="https://x.com/a/1", tags=TAGS)
    )
    assert "CDI · Temps plein · Hybride · 📍 Lyon" in french
    assert "🏷 Logiciel · Web" in french
    assert french.rstrip().endswith("👉 Postuler · Voir sur X")


def test_an_offer_with_tags_and_credits_still_fits_the_limit() -> None:
    from storage.outbox import Credit

    also = tuple(Credit(f"acct_{i}", f"https://x.com/a/{i}") for i in range(20))
    html_text = render_offer(
        EN, author="a" * 15, text="é" * 6000, url="https://x.com/a/1", tags=TAGS, also=also
    )
    plain = parse_telegram_html(html_text)
    assert telegram_length(plain) <= MESSAGE_LIMIT
    assert "📍 Lyon" in plain and plain.rstrip().endswith("View on X")


def test_an_apply_link_that_is_not_http_is_not_linked() -> None:
    tags = {**TAGS, "apply_url": "javascript:alert(1)"}
    html_text = render_offer(EN, author="a", text="t", url="https://x.com/a/1", tags=tags)
    assert "javascript:" not in html_text
    assert "Apply" not in html_text


def test_a_digest_shows_each_offer_s_tags() -> None:
    offers = [("acme", "Dev Python", "https://x.com/a/1"), ("acme", "News", "https://x.com/a/2")]
    parts = render_digest(Translator("fr"), offers, [TAGS, None])
    plain = parse_telegram_html(parts[0])
    # Each offer reads as a push does: its text, then its tags and links on a line of their own.
    details = "CDI · Temps plein · Hybride · 📍 Lyon · 👉 Postuler · Voir sur X"
    assert f"• Dev Python\n    {details}" in plain
    assert "• News\n    Voir sur X" in plain
    assert '<a href="https://jobs.acme.fr/o/1?a=1&amp;b=&lt;2&gt;">👉 Postuler</a>' in parts[0]


def test_a_feed_offer_is_named_by_its_title_and_links_to_the_original() -> None:
    html_text = render_offer(
        Translator("fr"),
        author="📰 Acme Careers",
        text="Développeur Python\n\nCDI à Lyon",
        url="https://jobs.example/offres/42",
    )
    plain = parse_telegram_html(html_text)
    assert plain.startswith("📰 Acme Careers")
    assert "@📰" not in plain and "Voir sur X" not in plain
    assert "Voir l'original" in plain and 'href="https://jobs.example/offres/42"' in html_text
    digest = parse_telegram_html(
        render_digest(EN, [("📰 Acme Careers", "Offer", "https://jobs.example/1")])[0]
    )
    assert "📰 Acme Careers" in digest and "@📰" not in digest and "View the original" in digest


def test_a_paused_feed_notice_names_it_and_says_how_to_remove_it() -> None:
    text = render_notice(
        EN,
        {
            "code": "feed_paused",
            "name": "📰 Acme <Careers>",
            "address": "https://jobs.example/feed.xml",
            "since": "2026-11-24 09:00",
        },
    )
    plain = parse_telegram_html(text)
    assert "📰 Acme <Careers>" in plain and "2026-11-24 09:00" in plain
    assert "/unfollow https://jobs.example/feed.xml" in plain


def test_a_long_reply_is_cut_between_lines_into_messages_that_fit() -> None:
    lines = [
        f"• <b>📰 Feed number {n}</b> — <code>https://jobs.example/{n}.xml</code>"
        for n in range(300)
    ]
    parts = split_reply(Markup("\n".join(lines)))
    assert len(parts) > 1 and all(len(part) <= REPLY_LIMIT for part in parts)
    assert "\n".join(parts).splitlines() == lines  # nothing lost, no line cut
    for part in parts:
        parse_telegram_html(part)  # each part is valid Telegram HTML on its own
    assert split_reply(Markup("short")) == ["short"]


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "tg://resolve?domain=x", " JavaScript:x", "data:,x"]
)
def test_only_web_links_are_ever_rendered_as_links(link: str) -> None:
    offer = render_offer(EN, author="📰 Feed", text="Offer", url=link, tags={"apply_url": link})
    digest = render_digest(EN, [("📰 Feed", "Offer", link)], [{"apply_url": link}])[0]
    weekly = render_notice(EN, {"code": "weekly", "interesting": [["📰 Feed", link, "Offer"]]})
    for html_text in (offer, digest, weekly):
        parse_telegram_html(html_text)
        assert "href" not in html_text and link.strip() not in html_text, html_text
    assert "View the original" in parse_telegram_html(offer)  # the label stays, unlinked


def test_a_long_reply_of_astral_characters_is_cut_into_messages_telegram_accepts() -> None:
    """Telegram counts UTF-16 units: a feed titled in 𝐛𝐨𝐥𝐝 letters or emoji counts twice."""
    title = "𝐉𝐨𝐛𝐬 " * 20
    lines = [f"• 📰 {title}#{n} — <code>https://jobs.example/{n}.xml</code>" for n in range(60)]
    parts = split_reply(Markup("\n".join(lines)))
    assert "\n".join(parts).splitlines() == lines
    for part in parts:
        assert telegram_length(parse_telegram_html(part)) <= MESSAGE_LIMIT


def test_feed_names_are_cleaned_shortened_and_credits_capped() -> None:
    """Feed titles are their owners' to choose: a message shows at most three other sources,
    each on one line, without bidi overrides, zero-width or control characters, shortened;
    the offer itself still fits and shows."""
    from storage.outbox import Credit

    hostile = "📰 \u202eevil\u200b\u2066 title\x07\n" + "x" * 240
    also = [Credit(f"{hostile} {n}", f"https://feed{n}.example/1") for n in range(19)]
    html_text = render_offer(
        EN, author=hostile, text="Python developer, Lyon", url="https://x.com/a/1", also=also
    )
    plain = parse_telegram_html(html_text)
    assert telegram_length(plain) <= MESSAGE_LIMIT
    assert "Python developer, Lyon" in plain
    header = plain.split("\n")[0]
    assert header.count("📰 evil title") == 4  # the offer's own feed and three credits
    assert not any(c in plain for c in "\u202e\u200b\u2066\x07")
    assert header.count("…") == 4
    assert "👩‍💻" in parse_telegram_html(
        render_offer(EN, author="📰 Dev 👩‍💻 jobs", text="Offer", url="https://x.com/a/1")
    )
