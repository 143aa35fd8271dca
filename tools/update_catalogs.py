"""Extract the bot's messages and merge them into every catalog (`make catalogs`).

New messages appear with an empty translation; tests/unit/test_i18n.py fails until they are
translated, so no reply ships in English only.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "bot" / "i18n" / "locales"
KEYWORDS = {"gettext": None, "ngettext": (1, 2), "plain": None, "nplain": (1, 2)}


def extract() -> Catalog:
    """Every message passed to gettext/ngettext in bot/ and handlers/."""
    template = Catalog(project="jobrelay", version="0.1.0")
    for folder in ("bot", "handlers"):
        for filename, lineno, message, comments, context in extract_from_dir(
            ROOT / folder, keywords=KEYWORDS
        ):
            template.add(
                message,
                locations=[(f"{folder}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    return template


def main() -> None:
    """Update every `<lang>/LC_MESSAGES/jobrelay.po` from the source."""
    template = extract()
    for po_path in sorted(LOCALES.glob("*/LC_MESSAGES/jobrelay.po")):
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=po_path.parent.parent.name)
        catalog.update(template, no_fuzzy_matching=True)
        with po_path.open("wb") as handle:
            write_po(
                handle,
                catalog,
                width=100,
                omit_header=False,
                ignore_obsolete=True,
                include_previous=False,
                sort_output=False,
            )
        print(f"updated {po_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
