"""Translation layer: gettext catalogs (`locales/<lang>/LC_MESSAGES/jobrelay.po`), English source.

Catalogs are compiled in memory when first used, so adding a language is adding a `.po` file.

Messages are Telegram HTML. A catalog string is trusted markup, but what fills its placeholders
is not: `gettext` escapes every parameter that is not already `Markup`, so a handle, a feed
title or a word typed by a stranger can never break a message or inject a link. Build HTML
fragments with `Markup`/`escape`/`html_join`; use `plain` for plain-text places (button labels,
chart labels, command descriptions), where nothing is parsed.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from markupsafe import Markup, escape

__all__ = ["Markup", "Translator", "escape", "html_join", "languages", "pick_language"]

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


def html_join(items: Iterable[str], separator: str = ", ") -> Markup:
    """`items` joined as HTML: each item escaped unless it is already `Markup`."""
    return Markup(separator).join(items)  # noqa: S704 (the separator is ours)


class Translator:
    """Translates the bot's messages into one language; `%(name)s` placeholders are filled in,
    escaped for Telegram HTML unless they are `Markup`."""

    def __init__(self, language: str) -> None:
        self.language = language if language in _catalogs() else SOURCE_LANGUAGE
        self._translations: gettext.NullTranslations = _catalogs().get(
            self.language, gettext.NullTranslations()
        )

    def gettext(self, message: str, **params: object) -> Markup:
        """The translation of `message` as Telegram HTML, its placeholders filled in and
        escaped (unless they are `Markup`)."""
        markup = Markup(self._translations.gettext(message))  # noqa: S704 (a catalog string)
        return markup % params if params else markup

    def ngettext(self, singular: str, plural: str, count: int, **params: object) -> Markup:
        """The translation for `count` items as Telegram HTML; `count` is also available as
        `%(count)d`."""
        plural_form = self._translations.ngettext(singular, plural, count)
        return Markup(plural_form) % {  # noqa: S704 (a catalog string)
            "count": count,
            **params,
        }

    def plain(self, message: str, **params: object) -> str:
        """The translation of `message` as plain text (a button label, a chart label), its
        placeholders filled in as they are."""
        text = self._translations.gettext(message)
        return text % params if params else text

    def nplain(self, singular: str, plural: str, count: int, **params: object) -> str:
        """The plain-text translation for `count` items."""
        return self._translations.ngettext(singular, plural, count) % {"count": count, **params}


@cache
def translator(language: str) -> Translator:
    """The shared translator of a language."""
    return Translator(language)
