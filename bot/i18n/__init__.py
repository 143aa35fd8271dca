"""Translation layer: gettext catalogs (`locales/<lang>/LC_MESSAGES/jobrelay.po`), English source.

Catalogs are compiled in memory when first used, so adding a language is adding a `.po` file.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "jobrelay"
SOURCE_LANGUAGE = "en"


@cache
def _catalogs() -> dict[str, gettext.GNUTranslations]:
    catalogs: dict[str, gettext.GNUTranslations] = {}
    for po_path in sorted(LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        language = po_path.parent.parent.name
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=language)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        catalogs[language] = gettext.GNUTranslations(buffer)
    return catalogs


def languages() -> list[str]:
    """Every language the bot speaks, the source language first."""
    return [SOURCE_LANGUAGE, *sorted(lang for lang in _catalogs() if lang != SOURCE_LANGUAGE)]


def pick_language(language_code: str | None) -> str:
    """The language for a Telegram `language_code`: "fr-FR" -> "fr", unknown -> "en"."""
    if language_code:
        primary = language_code.replace("_", "-").split("-")[0].lower()
        if primary in _catalogs():
            return primary
    return SOURCE_LANGUAGE


class Translator:
    """Translates the bot's messages into one language; `%(name)s` placeholders are filled in."""

    def __init__(self, language: str) -> None:
        self.language = language if language in _catalogs() else SOURCE_LANGUAGE
        self._translations: gettext.NullTranslations = _catalogs().get(
            self.language, gettext.NullTranslations()
        )

    def gettext(self, message: str, **params: object) -> str:
        """The translation of `message`, with its placeholders filled in."""
        text = self._translations.gettext(message)
        return text % params if params else text

    def ngettext(self, singular: str, plural: str, count: int, **params: object) -> str:
        """The translation for `count` items; `count` is also available as `%(count)d`."""
        text = self._translations.ngettext(singular, plural, count)
        return text % {"count": count, **params}


@cache
def translator(language: str) -> Translator:
    """The shared translator of a language."""
    return Translator(language)
