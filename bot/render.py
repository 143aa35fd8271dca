"""Offers and notices as Telegram HTML, always within Telegram's 4096-character limit (pure)."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from bot import classify
from bot.arguments import HANDLE_RE
from bot.i18n import Markup, Translator, escape, html_join
from bot.sources.base import bounded
from storage.outbox import MAX_CREDITS, Credit

MESSAGE_LIMIT = 4096
ELLIPSIS = "…"


# A source's name in a message header, at most this long (a feed's title is the feed
# owner's to choose: a stranger's 255-character title must not crowd the offer out).
NAME_LIMIT = 64
# Characters that reorder or hide text (bidi overrides and isolates, zero-width spaces) and
# controls; the zero-width joiner stays (emoji sequences need it).
_KEEP_FORMAT = {"\u200d"}


def clean_name(name: str) -> str:
    """A source's name as a message may show it: one line, without controls and invisible
    or reordering characters, shortened with "…"."""
    kept = "".join(
        c for c in name if c in _KEEP_FORMAT or unicodedata.category(c) not in ("Cc", "Cf")
    )
    return bounded(" ".join(kept.split()), NAME_LIMIT)


def source_name(author: str) -> str:
    """How an offer's source is named: `@acme_jobs` for an X account; a feed is stored under
    its icon and title (`📰 Acme Jobs`), never a bare word, and is named as it is (cleaned)."""
    return f"@{author}" if HANDLE_RE.fullmatch(author) else clean_name(author)


def post_link_label(t: Translator, author: str) -> str:
    """The label of the link to the original post."""
    if HANDLE_RE.fullmatch(author):
        return t.plain("View on X")
    return t.plain("View the original")


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


def tag_line(t: Translator, tags: Mapping[str, Any] | None) -> str:
    """`CDI · Hybride · 📍 Lyon`: contract, work mode and city, as plain text ("" if none)."""
    if not tags:
        return ""
    catalogue = classify.catalogue()
    parts = [
        catalogue.contracts[c].name(t.language)
        for c in tags.get("contracts") or []
        if c in catalogue.contracts
    ]
    mode = tags.get("work_mode")
    if isinstance(mode, str) and mode in catalogue.modes:
        parts.append(catalogue.modes[mode].name(t.language))
    city = tags.get("city")
    if isinstance(city, str) and city:
        parts.append(f"📍 {city}")
    return " · ".join(parts)


def category_line(t: Translator, tags: Mapping[str, Any] | None) -> str:
    """`🏷 Software · Web` for an offer's categories, as plain text ("" if none)."""
    catalogue = classify.catalogue()
    names = [
        catalogue.categories[c].name(t.language)
        for c in (tags or {}).get("categories") or []
        if c in catalogue.categories
    ]
    return "🏷 " + " · ".join(names) if names else ""


def is_web_link(url: str) -> bool:
    """Whether a link may be rendered as one: http and https only (a feed's `javascript:` or
    `tg:` link would be refused by Telegram, or worse, accepted)."""
    return url.strip().lower().startswith(("http://", "https://"))


def _link(url: str, label: str) -> Markup:
    """`label` linked to `url`, or the bare label when `url` is not a web link."""
    if not is_web_link(url):
        return escape(label)
    return Markup('<a href="%s">%s</a>') % (url.strip(), label)


def link(url: str, label: str) -> Markup:
    """`label` linked to `url` when it is a web link (for replies built elsewhere)."""
    return _link(url, label)


def render_offer(
    t: Translator,
    *,
    author: str,
    text: str,
    url: str,
    tags: Mapping[str, Any] | None = None,
    also: Sequence[Credit] = (),
) -> str:
    """An offer: who posted it (every account, when several did), the post text (escaped,
    truncated to fit), its tags, and the apply and post links."""
    others = [c for c in also if c.author.lower() != author.lower()][:MAX_CREDITS]
    header = Markup("<b>%s</b>") % source_name(author)
    visible_header = source_name(author)
    if others:
        names = ", ".join(source_name(c.author) for c in others)
        links = html_join(_link(c.url, source_name(c.author)) for c in others)
        header += " · " + t.gettext("also posted by %(handles)s", handles=links)
        visible_header += " · " + t.plain("also posted by %(handles)s", handles=names)
    extra = [line for line in (tag_line(t, tags), category_line(t, tags)) if line]
    apply_url = (tags or {}).get("apply_url")
    post_label = post_link_label(t, author)
    footer_links = []
    visible_footer = []
    if isinstance(apply_url, str) and is_web_link(apply_url):
        apply_label = t.plain("Apply")
        footer_links.append(_link(apply_url, f"👉 {apply_label}"))
        visible_footer.append(f"👉 {apply_label}")
    footer_links.append(_link(url, post_label))
    visible_footer.append(post_label)
    footer = " · ".join(footer_links)
    # Visible length = what remains after Telegram parses the tags and entities.
    fixed = telegram_length(
        "\n\n".join([visible_header, "", "\n".join([*extra, " · ".join(visible_footer)])])
    )
    body = _truncate(text.strip(), MESSAGE_LIMIT - fixed)
    tail = "\n".join([*(html.escape(line, quote=False) for line in extra), footer])
    return f"{header}\n\n{html.escape(body, quote=False)}\n\n{tail}"


def render_notice(t: Translator, payload: dict[str, Any]) -> str:
    """A service message queued in the outbox, in the chat's language."""
    code = payload.get("code")
    handle = str(payload.get("handle", ""))
    if code == "account_gone":
        return t.gettext(
            "@%(handle)s is no longer available on X (deleted, suspended or made private). "
            "You will get nothing more from it; /unfollow @%(handle)s to remove it from /list.",
            handle=handle,
        )
    if code in ("feed_paused", "feed_resumed"):
        name = str(payload.get("name", ""))
        address = str(payload.get("address", ""))
        if code == "feed_paused" and payload.get("reason") == "unreadable":
            return t.gettext(
                "⏸ %(name)s (<code>%(address)s</code>) answers, but with nothing jobrelay can "
                "read as a feed since %(since)s UTC (broken XML, a page, or too large to "
                "read), so jobrelay paused it and now only checks it now and then. It stays "
                "in /list: when it can be read again its new entries arrive as before. "
                "/unfollow %(address)s removes it.",
                name=name,
                address=address,
                since=str(payload.get("since", "")),
            )
        if code == "feed_paused":
            return t.gettext(
                "⏸ %(name)s (<code>%(address)s</code>) has not answered since %(since)s UTC, "
                "so jobrelay paused it and now only checks it now and then. It stays in "
                "/list: when it answers again its new entries arrive as before. "
                "/unfollow %(address)s removes it.",
                name=name,
                address=address,
                since=str(payload.get("since", "")),
            )
        return t.gettext("▶️ %(name)s answers again: its new entries arrive as before.", name=name)
    if code == "weekly":
        return render_weekly(t, payload)
    if code == "x_budget":
        return render_budget_notice(t, payload)
    return html.escape(str(payload.get("text", "")))


def render_budget_notice(t: Translator, payload: dict[str, Any]) -> str:
    """What operators are told about the month's X reads."""
    used, budget = int(payload.get("used", 0)), int(payload.get("budget", 0))
    state = payload.get("state")
    until = str(payload.get("until", ""))[:10]
    if state == "near":
        return t.gettext(
            "⚠️ X reads this month: %(used)d posts of the %(budget)d budget "
            "(X_MONTHLY_POST_READ_BUDGET). Polling slows down to make it last; "
            "/admin usage shows the figures.",
            used=used,
            budget=budget,
        )
    if state == "x_capped":
        return t.gettext(
            "⛔ X capped this app's monthly usage: polling X is stopped until %(until)s "
            "(%(used)d posts read this month). /admin usage shows the figures.",
            until=until,
            used=used,
        )
    return t.gettext(
        "⛔ The month's X read budget is spent (%(used)d of %(budget)d posts): polling X is "
        "stopped until %(until)s. Raise X_MONTHLY_POST_READ_BUDGET and restart to resume "
        "sooner; /admin usage shows the figures.",
        used=used,
        budget=budget,
        until=until,
    )


def render_weekly(t: Translator, payload: dict[str, Any]) -> str:
    """The Monday summary: what the watch brought, the calm windows used, what was liked."""
    lines = [
        Markup("<b>%s</b>") % t.plain("Your week with jobrelay"),
        t.gettext(
            "Offers received: %(received)d (%(pushed)d right away, %(digested)d in digests).",
            received=int(payload.get("received", 0)),
            pushed=int(payload.get("pushed", 0)),
            digested=int(payload.get("digested", 0)),
        ),
    ]
    quiet = payload.get("quiet")
    if payload.get("digest_only"):
        lines.append(
            t.gettext(
                "Windows: one digest a day at %(time)s.", time=str(payload.get("digest_time"))
            )
        )
    if isinstance(quiet, list) and len(quiet) == 2:
        lines.append(
            t.gettext(
                "Quiet hours kept: %(start)s–%(end)s.", start=str(quiet[0]), end=str(quiet[1])
            )
        )
    funnel = payload.get("funnel")
    if isinstance(funnel, list) and len(funnel) == 4:
        lines += funnel_lines(
            t,
            [int(n) for n in funnel],
            pushes=int(payload.get("pushed", 0)),
            digests=int(payload.get("digests", 0)),
        )
    else:  # a summary queued before the funnel (issue #17): its "interesting" offers
        lines.append(
            t.gettext(
                "Marked interesting: %(count)d.", count=int(payload.get("interesting_count", 0))
            )
        )
        for author, url, text in payload.get("interesting") or []:
            lines.append(Markup("• %s %s") % (_link(str(url), source_name(str(author))), str(text)))
    lines += followup_lines(t, payload.get("followups") or [])
    if payload.get("limit_every_day"):
        lines.append(
            t.gettext(
                "💡 Your limit of %(limit)d was reached every day: /limit can raise it, or "
                "/digest 18:00 gathers everything once a day.",
                limit=int(payload.get("limit", 0)),
            )
        )
    return "\n".join(lines)


DIGEST_OFFER_BUDGET = 700  # visible characters of one offer's text inside a digest
DIGEST_TAGS_BUDGET = 120  # and of its tags after it
DIGEST_INDENT = "    "  # before an offer's tags and links, under its text


class _Parts:
    """Accumulates HTML blocks into messages of at most MESSAGE_LIMIT visible characters."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offers: list[list[int]] = []  # the offers (their indices) each part carries
        self._html: list[str] = []
        self._offers: list[int] = []
        self._visible = 0

    def add(self, html_block: str, visible: int, offer: int | None = None) -> None:
        # +1 for the newline joining blocks.
        if self._html and self._visible + 1 + visible > MESSAGE_LIMIT:
            self.flush()
        self._html.append(html_block)
        if offer is not None:
            self._offers.append(offer)
        self._visible += visible + (1 if len(self._html) > 1 else 0)

    def flush(self) -> None:
        if self._html:
            self.parts.append("\n".join(self._html))
            self.offers.append(self._offers)
        self._html, self._offers, self._visible = [], [], 0


def render_digest(
    t: Translator,
    offers: list[tuple[str, str, str]],
    tags: Sequence[Mapping[str, Any] | None] = (),
) -> list[str]:
    """Held offers (author, text, url, with their tags when given) as one or more messages:
    grouped by source, oldest first, each with its tags and link; never split inside an offer
    or a tag."""
    return [part for part, _ in render_digest_parts(t, offers, tags)]


def render_digest_parts(
    t: Translator,
    offers: list[tuple[str, str, str]],
    tags: Sequence[Mapping[str, Any] | None] = (),
    *,
    title: bool = True,
    followups: Sequence[Sequence[str]] = (),
) -> list[tuple[str, list[int]]]:
    """`render_digest`, each part with the indices of the offers it carries (a part Telegram
    rejects is sent again offer by offer, `title=False`, so only the faulty one is lost);
    the `followups` (author, url, excerpt of saved offers not applied to) close it."""
    by_author: dict[str, list[tuple[int, str, str, str, str | None]]] = {}
    for index, (author, text, url) in enumerate(offers):  # oldest first; sources by first offer
        offer_tags = tags[index] if index < len(tags) else None
        line = _truncate(tag_line(t, offer_tags), DIGEST_TAGS_BUDGET)
        body = _truncate(" ".join(text.split()), DIGEST_OFFER_BUDGET)
        apply_url = (offer_tags or {}).get("apply_url")
        if not (isinstance(apply_url, str) and is_web_link(apply_url)):
            apply_url = None
        by_author.setdefault(author, []).append((index, body, line, url, apply_url))
    parts = _Parts()
    if title:
        heading = t.nplain(
            "Your digest: %(count)d offer", "Your digest: %(count)d offers", len(offers)
        )
        parts.add(f"<b>{html.escape(heading)}</b>", telegram_length(heading))
    apply_label = f"👉 {t.plain('Apply')}"
    for author, items in by_author.items():
        link_label = post_link_label(t, author)
        for position, (index, body, line, url, apply_url) in enumerate(items):
            # As in a push: the text on its own line, then its tags and links on the next.
            links = [_link(url, link_label)]
            visible_links = [link_label]
            if apply_url is not None:
                links.insert(0, _link(apply_url, apply_label))
                visible_links.insert(0, apply_label)
            details = [line] if line else []
            visible = telegram_length(
                f"• {body}\n{DIGEST_INDENT}{' · '.join([*details, *visible_links])}"
            )
            block = Markup("• %s\n%s") % (body, DIGEST_INDENT) + html_join(
                [*details, *links], " · "
            )
            if position == 0:  # a source's heading never ends a message without its first offer
                block = Markup("\n<b>%s</b>\n") % source_name(author) + block
                visible += telegram_length(f"\n{source_name(author)}\n")
            parts.add(block, visible, index)
    for block in followup_lines(t, followups):
        parts.add(block, telegram_length(html.unescape(_TAGS.sub("", block))))
    parts.flush()
    return list(zip(parts.parts, parts.offers, strict=True))


_TAGS = re.compile(r"<[^>]+>")


def funnel_lines(t: Translator, steps: list[int], *, pushes: int, digests: int) -> list[Markup]:
    """From offer to application, and the time spent receiving the offers (the messages that
    brought them)."""
    received, saved, applied, interviews = steps
    return [
        t.gettext(
            "From offer to application: %(received)d received → %(saved)d saved → "
            "%(applied)d applied → %(interviews)d interviews.",
            received=received,
            saved=saved,
            applied=applied,
            interviews=interviews,
        ),
        t.gettext(
            "What it took: %(pushes)d pushes and %(digests)d digests.",
            pushes=pushes,
            digests=digests,
        ),
    ]


def followup_lines(t: Translator, followups: Sequence[Sequence[str]]) -> list[Markup]:
    """The follow-up of saved offers not applied to: a heading, one line each, where to act."""
    if not followups:
        return []
    lines = [Markup("\n<b>%s</b>") % t.plain("⏰ Saved a few days ago, not applied yet:")]
    for author, url, text in followups:
        lines.append(Markup("• %s %s") % (_link(str(url), source_name(str(author))), str(text)))
    lines.append(t.gettext("/saved lists them, with ✅ to mark those you applied to."))
    return lines
