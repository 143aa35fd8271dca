"""Every reply exists in every language, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR, Markup, Translator, html_join, languages, pick_language
from bot.sandbox.telegram_api import TelegramHTMLError, parse_telegram_html
from tools.update_catalogs import extract

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
TAG = re.compile(r"</?(\w+)")


def _catalogs() -> list[Path]:
    return sorted(LOCALES_DIR.glob("*/LC_MESSAGES/jobrelay.po"))


def test_french_and_english_are_spoken() -> None:
    assert languages()[0] == "en"
    assert "fr" in languages()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("fr", "fr"),
        ("fr-CA", "fr"),
        ("FR_be", "fr"),
        ("en-US", "en"),
        ("de", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_language_is_picked_from_the_telegram_language_code(code, expected) -> None:
    assert pick_language(code) == expected


@pytest.mark.parametrize("po_path", _catalogs(), ids=lambda p: p.parent.parent.name)
def test_every_message_in_the_code_is_translated(po_path: Path) -> None:
    with po_path.open("rb") as handle:
        catalog = read_po(handle)
    source = extract()
    missing = []
    for message in source:
        if not message.id:
            continue
        translated = catalog.get(message.id)
        strings = translated.string if translated else None
        values = strings if isinstance(strings, tuple) else (strings,)
        if translated is None or translated.fuzzy or not all(values):
            missing.append(message.id)
    assert missing == [], f"run `make catalogs` and translate these in {po_path}"


@pytest.mark.parametrize("po_path", _catalogs(), ids=lambda p: p.parent.parent.name)
def test_translations_keep_placeholders_and_html_tags(po_path: Path) -> None:
    with po_path.open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(str(ids[-1])))
        for string in strings:
            assert set(PLACEHOLDER.findall(str(string))) == wanted, message.id
            assert sorted(TAG.findall(str(string))) == sorted(TAG.findall(str(ids[0]))), message.id


def test_french_translation_is_used_and_filled_in() -> None:
    fr = Translator("fr")
    assert fr.gettext("Hello %(name)s!", name="Ana") == "Bonjour Ana !"
    assert fr.ngettext("You follow %(count)d account:", "You follow %(count)d accounts:", 2) == (
        "Vous suivez 2 comptes :"
    )
    assert Translator("en").gettext("Hello %(name)s!", name="Ana") == "Hello Ana!"
    assert Translator("xx").language == "en"


# What a stranger may put in a placeholder: a handle, a feed's title, a word they typed.
HOSTILE = '<b>R&D</b> & "c++" <a href="tg://x">l</a> &amp; &#0; <'
FORMAT = re.compile(r"%\((\w+)\)[.\d]*([sdf])")


def _params(*templates: str) -> dict[str, object]:
    """Every placeholder of the templates: text ones get hostile text, numbers a number."""
    params: dict[str, object] = {}
    for template in templates:
        for name, kind in FORMAT.findall(template):
            params[name] = HOSTILE if kind == "s" else 7
    return params


def _rendered(language: str) -> list[tuple[object, str, list[str]]]:
    """(msgid, the message as sent, the text placeholders) for every message of a language,
    every plural form included."""
    t = Translator(language)
    with (LOCALES_DIR / "fr" / "LC_MESSAGES" / "jobrelay.po").open("rb") as handle:
        catalog = read_po(handle)
    out: list[tuple[object, str, list[str]]] = []
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            singular, plural = str(message.id[0]), str(message.id[1])
            for count in (1, 2):
                params = _params(singular, plural)
                params.pop("count", None)
                sent = t.ngettext(singular, plural, count, **params)
                out.append((message.id, sent, [k for k, v in params.items() if v == HOSTILE]))
        else:
            params = _params(str(message.id))
            sent = t.gettext(str(message.id), **params)
            out.append((message.id, sent, [k for k, v in params.items() if v == HOSTILE]))
    return out


@pytest.mark.parametrize("language", languages())
def test_every_message_is_valid_telegram_html_whatever_fills_its_placeholders(
    language: str,
) -> None:
    """The Bot API wants every &, < and > outside tags and entities escaped: each catalog
    string must be valid Telegram HTML, and what fills a placeholder is shown as typed."""
    rendered = _rendered(language)
    assert len(rendered) > 200  # the whole catalog, not a sample
    problems = []
    for msgid, sent, hostile in rendered:
        try:
            shown = parse_telegram_html(sent)
        except TelegramHTMLError as exc:
            problems.append(f"{msgid!r}: {exc}")
            continue
        if hostile and HOSTILE not in shown:
            problems.append(f"{msgid!r}: a placeholder is not shown as typed: {shown!r}")
    assert problems == []


def test_a_bare_ampersand_in_a_catalog_string_is_caught() -> None:
    """The check above fails on what crashed `/filter +c++` (a lone & in the refusal)."""
    with pytest.raises(TelegramHTMLError):
        parse_telegram_html(str(Translator("en").gettext("which . - ' & / may join")))


def test_placeholders_are_escaped_unless_already_markup() -> None:
    t = Translator("en")
    assert t.gettext("Hello %(name)s!", name="<b>&") == "Hello &lt;b&gt;&amp;!"
    assert t.gettext("Hello %(name)s!", name=Markup("<b>Ana</b>")) == "Hello <b>Ana</b>!"
    # Plain text (button labels, chart labels) is left as typed.
    assert t.plain("Hello %(name)s!", name="<b>&") == "Hello <b>&!"
    nested = t.gettext("Stopped following %(handles)s.", handles=html_join(["@a&b", "@c"]))
    assert parse_telegram_html(nested) == "Stopped following @a&b, @c."
