"""Why a post was read as it was (/why), and the posts people marked "not for me", for the
operator to collect as training data (/admin feedback export). Pure but for `export_lines`'s
input, which storage gives."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from bot.classify import Catalogue, Rules, Signal
from bot.i18n import Markup, Translator, html_join
from bot.reader import OFFER
from bot.sources.base import bounded

# A /why names this many signals at most; a quoted word this long at most.
SIGNALS = 4
WORD_LIMIT = 30


def _signal(t: Translator, cat: Catalogue, signal: Signal, language: str) -> str:
    """One signal as a person reads it: a quoted word, or what a vocabulary signal means."""
    name = signal.name
    if not name.startswith("r:"):
        return f"“{bounded(name, WORD_LIMIT)}”"
    kind, _, value = name[2:].partition(":")
    if kind == "contract" and value in cat.contracts:
        return t.plain("the contract (%(name)s)", name=cat.contracts[value].name(language))
    if kind == "mode" and value in cat.modes:
        return t.plain("the work mode (%(name)s)", name=cat.modes[value].name(language))
    if kind == "cat" and value in cat.categories:
        return t.plain("words of %(category)s", category=cat.categories[value].name(language))
    plain = {
        "role": t.plain("a job title"),
        "title": t.plain("a job title at the start"),
        "salary": t.plain("a salary"),
        "link": t.plain("a link"),
        "city": t.plain("a city"),
        "joke": t.plain("a joking tone"),
        "offer": t.plain("offer wording"),
        "score": t.plain("offer wording"),
    }
    return plain.get(kind, kind)


def _signals(t: Translator, cat: Catalogue, found: Sequence[Signal], language: str) -> str:
    named = dict.fromkeys(_signal(t, cat, s, language) for s in found)
    return ", ".join(named)


def explain(t: Translator, cat: Catalogue, text: str, language: str) -> Markup:
    """A line or two on how a post was read: an offer or not (with the reader's confidence),
    its categories, and the strongest signals."""
    analysis = cat.analyse(text)
    rules: Rules = cat.rules(text)
    reader = cat.reader
    names = [cat.categories[c].name(language) for c in analysis.categories]
    if reader is None:
        # The vocabulary alone: its own signals.
        return (
            t.gettext("Read as an offer in %(categories)s.", categories=", ".join(names))
            if analysis.is_offer and names
            else t.gettext("Read as an offer, in no category.")
            if analysis.is_offer
            else t.gettext("Not read as an offer.")
        )
    confidence = round(100 * analysis.score)
    if analysis.is_offer:
        verdict = (
            t.gettext(
                "Read as an offer (%(confidence)d%% sure) in %(categories)s.",
                confidence=confidence,
                categories=", ".join(names),
            )
            if names
            else t.gettext(
                "Read as an offer (%(confidence)d%% sure), in no category.",
                confidence=confidence,
            )
        )
    else:
        verdict = t.gettext(
            "Not read as an offer (%(confidence)d%% sure it is one): it reached you because "
            "you follow its source, not through a category.",
            confidence=confidence,
        )
    lines = [verdict]
    found = reader.why(text, rules, OFFER, limit=SIGNALS)
    if found:
        lines.append(
            t.gettext("Strongest signals: %(signals)s.", signals=_signals(t, cat, found, language))
        )
    for slug in analysis.categories[:2]:
        for_category = reader.why(text, rules, slug, limit=3)
        if for_category:
            lines.append(
                t.gettext(
                    "%(category)s because of %(signals)s.",
                    category=cat.categories[slug].name(language),
                    signals=_signals(t, cat, for_category, language),
                )
            )
    if analysis.is_offer:
        lines.append(
            t.gettext(
                "Not an offer, or not this category? Tap 👎 Not for me under it: "
                "the operator collects these to teach the reader."
            )
        )
    return html_join(lines, "\n")


def export_lines(cat: Catalogue, marked: Iterable[tuple[str, str, int]]) -> list[str]:
    """JSONL lines of the posts people marked "not for me": the text, the kind of source
    (x, feed, mastodon, bluesky), how many chats marked it, and how the reader reads it now;
    no chat, person or source is named."""
    lines = []
    for text, kind, count in marked:
        analysis = cat.analyse(text)
        lines.append(
            json.dumps(
                {
                    "text": text,
                    "source_kind": kind,
                    "marked_not_for_me": count,
                    "read_as_offer": analysis.is_offer,
                    "categories": list(analysis.categories),
                },
                ensure_ascii=False,
            )
        )
    return lines
