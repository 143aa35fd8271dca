"""Every reply exists in every language, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR, Translator, languages, pick_language
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
