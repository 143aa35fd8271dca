"""Reading a short post: is it a job offer, in which categories, with which tags (pure).

The vocabulary lives in data files (`bot/data/categories.toml`, `signals.toml`, `cities.toml`);
this module only tokenises and scores. A post and every phrase of the vocabulary go through the
same `tokens()`: accents and case are dropped, a hashtag reads as its words ("#DéveloppeurWeb"
is "developpeur web", "#WeAreHiring" is the known word "wearehiring"), links and mentions are
set aside. Phrases match whole tokens; where matches overlap the longest wins, so
"not hiring" hides "hiring" and "ingénieur d'affaires" hides "ingénieur".
"""

from __future__ import annotations

import hashlib
import itertools
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Protocol

_URL_RE = re.compile(
    r"(?:https?://|www\.)[^\s<>\"'()]+"
    # Links written without their scheme: shorteners and jobs./careers. sites.
    # Links written without their scheme: a domain with a usual ending, then a path
    # ("careers.acme.io/jobs/7", "bit.ly/x"); never "Node.js/React" or "ASP.NET/C#".
    # (Only from a word's first letter or hyphen: started after each hyphen of a long
    # hyphenated word, the search would read the rest of it again and again.)
    r"|(?<![@\w.-])(?:[\w-]+\.)+(?:fr|com|io|co|org|uk|ca|de|ie|be|ch|eu|dev|app|ai|jobs|"
    r"careers|in|ly|me|us|es|it|nl|pt|lu|ma|sn|tn|qc|info|biz|tech|studio|agency|work|au|nz)"
    r"/[^\s<>\"'()]*",
    re.IGNORECASE,
)
# French inclusive writing: "chargé(e)", "chargé·e", "développeur·se", "conseiller·ère" read as
# the word itself, so one phrase matches every spelling.
_INCLUSIVE_PLURAL_RE = re.compile(  # "chargé(e)s", "chargé·e·s", "chargé.e.s"
    r"(?<=\w)(?:\((?:e|ne|le|se|ère|ere|rice|trice)\)s|[·•.](?:e|ne|le|se)[·•.]s|[·•.]es)(?![\w])",
    re.IGNORECASE,
)
_INCLUSIVE_RE = re.compile(
    r"(?<=\w)(?:\(|·|•|\.)(?:e|es|se|sse|euse|ère|ere|rice|trice|ne|le|fe|ve|x)\)?(?![\w])",
    re.IGNORECASE,
)
_MENTION_RE = re.compile(r"(?<![\w@.])@\w{1,15}\b")
# An address starts where a run of its characters starts (the look-behind): tried from every
# letter of a long word, the match would be quadratic.
_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_HASHTAG_RE = re.compile(r"#([^\W_][\w]*)")
_CAMEL_RE = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD_RE = re.compile(r"[^\W_]+")
# Combining marks left by NFKD (accents, cedillas ...), in the blocks Latin scripts use.
_COMBINING_RE = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_NOT_A_NAME_RE = re.compile(r"[^\w\s'’-]")
# The hashtags that close a post ("#job #emploi" appended by a reposting account).
_WORD_RUN_RE = re.compile(r"\w+")
# An amount: read from the start of its run of digits, spaces and separators, never giving
# any back ("1 1 1 1 …" with no currency would otherwise be read again from each digit).
_SALARY_RE = re.compile(
    r"(?<![\d\s.,])[\s.,]*+\d[\d\s.,]*+\s?(?:k\s?)?(?:€|eur\b|euros\b|\$|£)"
    r"|[€$£]\s?\d|\b\d{2,3}\s?k\b|\bk€",
    re.IGNORECASE,
)
# What every salary the pattern above finds has: a currency, or a number of thousands. The
# pattern is tried at every position of a post; this one, far cheaper, says when to try it.
_SALARY_HINT_RE = re.compile(r"[€$£]|eur|\d\s?k", re.IGNORECASE)
_JOKE_RE = re.compile("[\U0001f602\U0001f923\U0001f921\U0001f643\U0001f605]")
_TRAILING_PUNCTUATION = ".,;:!?…»)]}'\""
_BEFORE_A_PLACE = frozenset(
    {"a", "in", "en", "based", "near", "sur", "at", "around", "pres", "vers", "de", "du", "lieu"}
)
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "Oe", "æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O"})

# No category name (`service client`, `développement web`) comes near this many characters.
MAX_CATEGORY_NAME_LENGTH = 100
CATEGORY_THRESHOLD = 2.0
TITLE_WORDS = 6  # a job title among the first words: "UX Designer – Lyon – CDI"
ROLE_CATEGORY_WEIGHT = 2.0
KEYWORD_CATEGORY_WEIGHT = 1.0
# Without a job title or telling skill of the category, it takes three of its keywords: a
# designer's post that mentions "campaigns" and "brand" is no marketing offer.
KEYWORDS_ONLY_THRESHOLD = 3.0


def fold(text: str) -> str:
    """`Développeur·se Œuvre` -> `Developpeur·se Oeuvre`: accents and ligatures dropped."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    return _COMBINING_RE.sub("", decomposed)


@dataclass(frozen=True, slots=True)
class Token:
    """One word as matched (`norm`), and whether it was written with a capital."""

    norm: str
    capital: bool
    plural: bool = False  # "developers": people talked about, not a job title
    raw: str = ""  # the word as written, folded but not singular ("tours", not "tour")
    upper: bool = False  # written in capitals ("LA", not "La")


def _split_hashtag(match: re.Match[str], known: frozenset[str]) -> str:
    word = match.group(1)
    if _norm(fold(word)) in known:
        return f" {word} "
    return " " + _CAMEL_RE.sub(" ", word) + " "


def strip_trailing_hashtags(text: str) -> str:
    """The text without the hashtags appended after it (`… #hiring #python!`), in one pass
    from the end (a pattern anchored at the end would be tried from every position)."""
    start = None
    for run in reversed(list(_WORD_RUN_RE.finditer(text))):
        if run.group().strip("_") == "":
            continue  # underscores only: a separator, like punctuation
        if run.start() == 0 or text[run.start() - 1] != "#":
            break
        start = run.start() - 1
    return text if start is None else text[:start] + " "


# Characters of a post that are read: sources already cut posts to this length (bot/sources/
# base.py); every pattern above is linear, and this bounds what one read costs.
MAX_READ = 4000


def strip_links(text: str) -> str:
    """The text without links, e-mail addresses and @mentions."""
    text = _URL_RE.sub(" ", text[:MAX_READ])
    text = _EMAIL_RE.sub(" ", text)
    return _MENTION_RE.sub(" ", text)


def tokens(text: str, known: frozenset[str] = frozenset()) -> list[Token]:
    """The words of a text as the vocabulary is matched: links and mentions dropped, hashtags
    read as words (split at capitals unless the whole tag is a `known` word)."""
    return _tokens_without_links(strip_links(text), known)


def _tokens_without_links(text: str, known: frozenset[str]) -> list[Token]:
    """`tokens()` of a text `strip_links()` already went through."""
    text = _INCLUSIVE_RE.sub("", _INCLUSIVE_PLURAL_RE.sub("s", text))
    text = _HASHTAG_RE.sub(lambda m: _split_hashtag(m, known), text)
    return [_token(word) for word in _WORD_RE.findall(fold(text))]


@lru_cache(maxsize=1 << 15)
def _token(word: str) -> Token:
    """A word as read (tokens are immutable: each spelling is read once per process)."""
    norm = _norm(word)
    return Token(norm, word[:1].isupper(), len(norm) < len(word), word.casefold(), _is_upper(word))


def _is_upper(word: str) -> bool:
    return len(word) > 1 and word.isupper()


def _norm(word: str) -> str:
    """A word as matched: folded case, and a plural `s` dropped ("stages" is "stage")."""
    word = word.casefold()
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def phrase_key(text: str) -> tuple[str, ...]:
    """A vocabulary phrase (or a /filter word) as the tuple of tokens it matches."""
    return tuple(token.norm for token in tokens(text))


_URL_SPLIT_RE = re.compile(r"[^0-9a-z]+")
_URL_NOISE = frozenset({"http", "https", "www", "com", "fr", "org", "io", "co", "html", "php"})


def url_words(text: str) -> list[str]:
    """The words of a post's links ("careers.example.io/senior-ux-designer-lyon": careers,
    example, senior, ux, designer, lyon), folded, without schemes, usual endings and numbers:
    an offer's role is sometimes only in its link."""
    return [
        word
        for url in _URL_RE.findall(text[:MAX_READ])
        for word in _URL_SPLIT_RE.split(fold(url).lower())
        if len(word) > 1 and not word.isdigit() and word not in _URL_NOISE
    ]


def first_url(text: str) -> str | None:
    """The first link of a text, without the punctuation that ends a sentence."""
    match = _URL_RE.search(text[:MAX_READ])
    if match is None:
        return None
    url = match.group(0).rstrip(_TRAILING_PUNCTUATION)
    return url if url.lower().startswith("http") else f"https://{url}"


@dataclass(frozen=True, slots=True)
class Category:
    """A job category: its slug, its name in each language and the words /follow accepts."""

    slug: str
    names: Mapping[str, str]
    aliases: tuple[tuple[str, ...], ...]

    def name(self, language: str) -> str:
        """The category's name in a language (English when it has none)."""
        return self.names.get(language) or self.names["en"]


@dataclass(frozen=True, slots=True)
class Facet:
    """A contract type or work mode: a slug and its name in each language."""

    slug: str
    names: Mapping[str, str]

    def name(self, language: str) -> str:
        """The facet's name in a language (English when it has none)."""
        return self.names.get(language) or self.names["en"]


@dataclass(slots=True)
class _Effect:
    """What matching one phrase means."""

    offer: float = 0.0
    roles: set[str] = field(default_factory=set)
    job_title: bool = False  # a role of no category ("nurse")
    mask: bool = False  # means nothing, hides what it overlaps ("on stage")
    strong: set[str] = field(default_factory=set)
    keywords: set[str] = field(default_factory=set)
    contract: str | None = None
    mode: str | None = None
    city: str | None = None
    city_needs_capital: bool = False
    # The city's spellings as written ("tours", never "tour"; "lyon" and "lyons"), each with
    # whether it must be written in capitals ("LA", not "la").
    city_spellings: dict[tuple[str, ...], bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Analysis:
    """What jobrelay understood of a post."""

    is_offer: bool
    score: float
    categories: tuple[str, ...]
    contracts: tuple[str, ...]
    work_mode: str | None
    city: str | None
    apply_url: str | None
    fingerprint: str
    search_text: str
    word_count: int
    body: tuple[str, ...] = ()  # the words that say what it is (no links, closing hashtags)

    def tags(self) -> dict[str, Any]:
        """The extracted tags as stored with the offer (language-neutral slugs)."""
        return {
            "contracts": list(self.contracts),
            "work_mode": self.work_mode,
            "city": self.city,
            "apply_url": self.apply_url,
        }


@dataclass(frozen=True, slots=True)
class Rules:
    """What the vocabulary reads in a post (the learned reader's signals, and the tags)."""

    words: list[Token]
    score: float  # the offer score (`is_offer` from `threshold` up)
    is_offer: bool
    role: bool  # a job title (in the singular)
    title: bool  # ... among the first words
    categories: tuple[str, ...]  # the categories the vocabulary gives it, offer or not
    category_scores: Mapping[str, float]
    contracts: tuple[str, ...]
    work_mode: str | None
    city: str | None
    apply_url: str | None
    salary: bool
    joke: bool


class Reader(Protocol):
    """A learned reader of offers (`bot/reader.py`)."""

    def read(self, text: str, rules: Rules) -> Verdict:
        """Whether a post is an offer and its categories."""
        ...

    def why(self, text: str, rules: Rules, output: str, *, limit: int = 4) -> list[Signal]:
        """The strongest reasons towards `output` ("offer", or a category)."""
        ...


@dataclass(frozen=True, slots=True)
class Signal:
    """One reason a post was read as it was: a word (or a vocabulary signal, `r:…`) and how
    much it weighed towards the answer."""

    name: str
    weight: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """A learned reader's answer: the probability that a post is an offer, whether that is
    above the reader's threshold, and the categories it is confident of."""

    offer: float
    is_offer: bool
    categories: tuple[str, ...]


class CatalogueError(ValueError):
    """A vocabulary file that cannot be used; the message names the file and the entry."""


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise CatalogueError(f"{where} must be a list of non-empty strings")
    return list(value)


def _names(entry: Mapping[str, Any], where: str) -> dict[str, str]:
    names = {lang: entry.get(lang) for lang in ("en", "fr")}
    if not all(isinstance(n, str) and n.strip() for n in names.values()):
        raise CatalogueError(f"{where} needs a name in English (en) and in French (fr)")
    return {lang: str(name) for lang, name in names.items()}


class Catalogue:
    """The categories, contract types, work modes, cities and offer signals, ready to match."""

    def __init__(
        self,
        categories: Mapping[str, Any],
        signals: Mapping[str, Any],
        cities: Mapping[str, Any],
        reader: Reader | None = None,
    ) -> None:
        self.reader = reader
        self._effects: dict[tuple[str, ...], _Effect] = {}
        self.categories: dict[str, Category] = {}
        self.contracts: dict[str, Facet] = {}
        self.modes: dict[str, Facet] = {}
        self._aliases: dict[tuple[str, ...], str] = {}
        self._facet_weights: dict[tuple[str, str], float] = {}
        self._contract_categories: dict[str, str] = {}
        self._name_words: dict[tuple[str, str], tuple[str, ...]] = {}
        self._load_categories(categories)
        self._load_signals(signals)
        self._load_cities(cities)
        self._inherit_contracts()
        self._known_words = frozenset(key[0] for key in self._effects if len(key) == 1)
        by_first: dict[str, list[tuple[tuple[str, ...], _Effect]]] = {}
        for key, effect in self._effects.items():
            by_first.setdefault(key[0], []).append((key, effect))
        self._by_first = {
            first: sorted(entries, key=lambda e: -len(e[0])) for first, entries in by_first.items()
        }

    # -- loading -------------------------------------------------------------------------------

    def _effect(self, phrase: str, where: str) -> _Effect:
        key = phrase_key(phrase)
        if not key:
            raise CatalogueError(f"{where}: {phrase!r} has no letters or digits")
        return self._effects.setdefault(key, _Effect())

    def _load_categories(self, data: Mapping[str, Any]) -> None:
        entries = data.get("category")
        if not isinstance(entries, list) or not entries:
            raise CatalogueError("categories.toml needs [[category]] entries")
        for index, entry in enumerate(entries):
            slug = entry.get("slug") if isinstance(entry, dict) else None
            if not isinstance(slug, str) or not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", slug):
                raise CatalogueError(f"categories.toml entry {index + 1}: bad or missing slug")
            if slug in self.categories:
                raise CatalogueError(f"categories.toml: slug {slug!r} appears twice")
            where = f"categories.toml [{slug}]"
            names = _names(entry, where)
            aliases = {phrase_key(slug), *(phrase_key(n) for n in names.values())}
            aliases |= {phrase_key(a) for a in _strings(entry.get("aliases", []), where)}
            for phrase in _strings(entry.get("roles", []), f"{where} roles"):
                self._effect(phrase, where).roles.add(slug)
            for phrase in _strings(entry.get("strong", []), f"{where} strong"):
                self._effect(phrase, where).strong.add(slug)
            for phrase in _strings(entry.get("keywords", []), f"{where} keywords"):
                self._effect(phrase, where).keywords.add(slug)
            contract = entry.get("contract")
            if contract is not None:
                self._contract_categories[str(contract)] = slug
            self.categories[slug] = Category(slug, names, tuple(sorted(aliases)))
            for alias in aliases:
                self._aliases.setdefault(alias, slug)

    def _load_facets(self, data: object, kind: str, into: dict[str, Facet]) -> None:
        if not isinstance(data, dict) or not data:
            raise CatalogueError(f"signals.toml needs [{kind}.<slug>] sections")
        for slug, entry in data.items():
            where = f"signals.toml [{kind}.{slug}]"
            into[slug] = Facet(slug, _names(entry, where))
            try:
                # Counted once per post however many of its phrases appear.
                self._facet_weights[(kind, slug)] = float(entry.get("offer_weight", 0.0))
            except (TypeError, ValueError):
                raise CatalogueError(f"{where} offer_weight must be a number") from None
            for phrase in _strings(entry.get("phrases"), f"{where} phrases"):
                effect = self._effect(phrase, where)
                if kind == "contract":
                    effect.contract = slug
                else:
                    effect.mode = slug

    def _load_signals(self, data: Mapping[str, Any]) -> None:
        offer = data.get("offer")
        if not isinstance(offer, dict) or not isinstance(offer.get("phrases"), dict):
            raise CatalogueError("signals.toml needs [offer] and [offer.phrases]")
        try:
            self.threshold = float(offer["threshold"])
            self.role_weight = float(offer["role_weight"])
            self.link_weight = float(offer["link_weight"])
            self.city_weight = float(offer["city_weight"])
            self.salary_weight = float(offer["salary_weight"])
            self.title_weight = float(offer["title_weight"])
            self.joke_weight = float(offer.get("joke_weight", 0.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogueError(f"signals.toml [offer] needs numeric {exc}") from None
        for phrase, weight in offer["phrases"].items():
            if not isinstance(weight, int | float):
                raise CatalogueError(f"signals.toml [offer.phrases] {phrase!r} needs a number")
            effect = self._effect(phrase, "signals.toml [offer.phrases]")
            # Two spellings of one phrase ("series b", "serie b") count once.
            if abs(weight) > abs(effect.offer):
                effect.offer = float(weight)
        self._people = frozenset(
            _norm(fold(word)) for word in _strings(offer.get("people", []), "signals.toml people")
        )
        for phrase in _strings(offer.get("roles", []), "signals.toml [offer] roles"):
            self._effect(phrase, "signals.toml [offer] roles").job_title = True
        for phrase in _strings(data.get("mask", {}).get("phrases", []), "signals.toml [mask]"):
            self._effect(phrase, "signals.toml [mask]").mask = True
        self._load_facets(data.get("contract"), "contract", self.contracts)
        self._load_facets(data.get("mode"), "mode", self.modes)

    def _inherit_contracts(self) -> None:
        """A job title that contains a contract word keeps it: "HR intern" hides "intern" but
        is still an internship."""
        for key, effect in self._effects.items():
            if not (effect.roles or effect.strong) or effect.contract:
                continue
            for length in range(len(key) - 1, 0, -1):
                for start in range(len(key) - length + 1):
                    inner = self._effects.get(key[start : start + length])
                    if inner is not None and inner.contract is not None:
                        effect.contract = effect.contract or inner.contract

    def _load_cities(self, data: Mapping[str, Any]) -> None:
        common = {phrase_key(c) for c in _strings(data.get("common_words", []), "cities.toml")}
        aliases = data.get("aliases", {})
        if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
            raise CatalogueError('cities.toml [aliases] maps spellings to names: NYC = "New York"')
        spellings = [(c, c) for c in _strings(data.get("cities"), "cities.toml cities")]
        spellings += [(str(k), v) for k, v in aliases.items()]
        for spelling, city in spellings:
            effect = self._effect(spelling, "cities.toml")
            if effect.city is None:
                effect.city = city
                effect.city_needs_capital = phrase_key(spelling) in common
            if effect.city == city:
                written = tokens(spelling)
                effect.city_spellings[tuple(t.raw for t in written)] = all(t.upper for t in written)

    # -- questions -----------------------------------------------------------------------------

    @staticmethod
    def _is_city(words: list[Token], start: int, length: int, effect: _Effect) -> bool:
        """Whether matched words really name the city: spelled as the city is (not "Tour" for
        Tours), and, for a city that is also a common word, capitalised and not opening the
        post ("Nice team!", "Orange recrute")."""
        matched = words[start : start + length]
        upper = effect.city_spellings.get(tuple(w.raw for w in matched))
        if upper is None or (upper and not all(w.upper for w in matched)):
            return False
        if effect.city_needs_capital:
            return words[start].capital and start > 0
        return True

    def category_for(self, word: str) -> str | None:
        """The slug a user means by `software`, `graphisme`, `RH` ...; None if no category
        (or if the word has characters no category name has, like `software$$`, or is far
        longer than any: what a stranger sends is not read through when it cannot match)."""
        if len(word) > MAX_CATEGORY_NAME_LENGTH or _NOT_A_NAME_RE.search(word):
            return None
        return self._aliases.get(phrase_key(word))

    def _matches(self, words: list[Token]) -> list[tuple[int, int, _Effect]]:
        found: list[tuple[int, int, _Effect]] = []
        norms = [w.norm for w in words]
        for start, first in enumerate(norms):
            for key, effect in self._by_first.get(first, ()):
                end = start + len(key)
                if end <= len(norms) and tuple(norms[start:end]) == key:
                    found.append((start, len(key), effect))
                    break  # entries are longest first: a shorter one here would be hidden
        # Masks first (they exist to hide), then the longest, then the leftmost.
        found.sort(key=lambda m: (not m[2].mask, -m[1], m[0]))
        taken = [False] * len(norms)
        kept: list[tuple[int, int, _Effect]] = []
        for start, length, effect in found:
            if any(taken[start : start + length]):
                continue
            for i in range(start, start + length):
                taken[i] = True
            kept.append((start, length, effect))
        kept.sort(key=lambda m: m[0])
        return kept

    def rules(self, text: str) -> Rules:
        """What the vocabulary reads in one post: its offer score and signals, the score of
        each category, the tags (contracts, work mode, city, apply link)."""
        without_links = strip_links(text)
        return self._rules(text, without_links, self._tokens(without_links))

    def _tokens(self, without_links: str) -> list[Token]:
        return _tokens_without_links(without_links, self._known_words)

    def _rules(self, text: str, without_links: str, words: list[Token]) -> Rules:
        matches = self._matches(words)
        score = 0.0
        role = False
        title = False
        titled: set[str] = set()  # categories named by a job title or a telling skill
        category_scores: dict[str, float] = {}
        seen_keywords: set[tuple[str, int]] = set()
        contracts: list[str] = []
        modes: list[str] = []
        cities: list[tuple[bool, str]] = []  # (after "in"/"à"/"based" ..., city)
        for start, length, effect in matches:
            score += effect.offer
            # A job title in the plural ("12 developers", "recruiters who ghost you") names
            # people, not an opening.
            last = words[start + length - 1]
            plural = last.plural and last.norm in self._people
            if (effect.roles or effect.job_title) and not plural:
                role = True
                title = title or start < TITLE_WORDS
            for slug in effect.roles | effect.strong:
                weight = KEYWORD_CATEGORY_WEIGHT if plural else ROLE_CATEGORY_WEIGHT
                titled.add(slug)
                category_scores[slug] = category_scores.get(slug, 0.0) + weight
            for slug in effect.keywords:
                marker = (slug, id(effect))
                if marker not in seen_keywords:  # a word repeated counts once
                    seen_keywords.add(marker)
                    category_scores[slug] = category_scores.get(slug, 0.0) + (
                        KEYWORD_CATEGORY_WEIGHT
                    )
            # "12 alternants et 6 stagiaires" are people, not this post's contract.
            if effect.contract is not None and effect.contract not in contracts and not plural:
                contracts.append(effect.contract)
            if effect.mode is not None and effect.mode not in modes:
                modes.append(effect.mode)
            if effect.city is not None and self._is_city(words, start, length, effect):
                after = start > 0 and words[start - 1].norm in _BEFORE_A_PLACE
                cities.append((after, effect.city))
        # The job's place: the first city named after "à", "in", "based in" ..., else the first.
        city = next((c for after, c in cities if after), cities[0][1] if cities else None)
        apply_url = first_url(text)
        salary = bool(_SALARY_HINT_RE.search(without_links) and _SALARY_RE.search(without_links))
        joke = bool(_JOKE_RE.search(text))
        score += self.role_weight if role else 0.0
        score += self.title_weight if title else 0.0
        score += max((self._facet_weights[("contract", c)] for c in contracts), default=0.0)
        score += max((self._facet_weights[("mode", m)] for m in modes), default=0.0)
        score += self.link_weight if apply_url else 0.0
        score += self.city_weight if city else 0.0
        score += self.salary_weight if salary else 0.0
        score += self.joke_weight if joke else 0.0
        for contract in contracts:
            if contract in self._contract_categories:
                derived = self._contract_categories[contract]
                category_scores[derived] = category_scores.get(derived, 0.0) + CATEGORY_THRESHOLD
                titled.add(derived)
        categories = tuple(
            slug
            for slug in self.categories
            if category_scores.get(slug, 0.0)
            >= (CATEGORY_THRESHOLD if slug in titled else KEYWORDS_ONLY_THRESHOLD)
        )
        return Rules(
            words=words,
            score=score,
            is_offer=score >= self.threshold,
            role=role,
            title=title,
            categories=categories,
            category_scores=category_scores,
            contracts=tuple(contracts),
            work_mode=_work_mode(modes),
            city=city,
            apply_url=apply_url,
            salary=salary,
            joke=joke,
        )

    def analyse(self, text: str) -> Analysis:
        """Read one post: whether it is an offer and its categories by the learned reader
        (`bot/reader.py`, fed the vocabulary's signals), by the vocabulary alone when no model
        is loaded; its tags by the vocabulary."""
        without_links = strip_links(text)
        rules = self._rules(text, without_links, self._tokens(without_links))
        if self.reader is not None:
            verdict = self.reader.read(text, rules)
            is_offer, score, categories = verdict.is_offer, verdict.offer, verdict.categories
        else:
            is_offer, score, categories = rules.is_offer, rules.score, rules.categories
        categories = categories if is_offer else ()
        contracts, work_mode = rules.contracts, rules.work_mode
        norms = [w.norm for w in rules.words]
        body_text = strip_trailing_hashtags(without_links)
        if body_text is without_links:  # no closing hashtags: the body is every word
            body = tuple(norms)
        else:
            body = tuple(t.norm for t in self._tokens(body_text))
        facets = self._facet_words(categories, contracts, work_mode)
        return Analysis(
            is_offer=is_offer,
            score=score,
            categories=categories,
            contracts=contracts if is_offer else (),
            work_mode=work_mode if is_offer else None,
            city=rules.city if is_offer else None,
            apply_url=rules.apply_url if is_offer else None,
            # One story is one reading: a post read as another kind of offer is another story.
            fingerprint=self._fingerprint(body, f"{is_offer} {' '.join(categories)}"),
            search_text=" " + " ".join([*norms, "|", *facets]) + " ",
            word_count=len(norms),
            body=body,
        )

    def _body_tokens(self, text: str) -> list[Token]:
        """The words that say what a post is: no links, mentions or closing hashtags."""
        return self._tokens(strip_trailing_hashtags(strip_links(text)))

    def _body(self, text: str) -> list[str]:
        return [t.norm for t in self._body_tokens(text)]

    def body_length(self, text: str) -> int:
        """How many words say what a post is (stories are only made of long enough posts)."""
        return len(self._body_tokens(text))

    def _names(self, words: list[Token]) -> frozenset[str]:
        """Capitalised words the vocabulary does not know: names (the first word too, since a
        company often opens its own offer; `near_identical` only asks whether the other post
        has the word anywhere, so a capital at the start of a sentence does no harm)."""
        return frozenset(w.norm for w in words if w.capital and (w.norm,) not in self._effects)

    def fingerprint(self, text: str, reading: str = "") -> str:
        """The same for one offer however it is reposted: links, mentions, case, accents,
        punctuation, spacing, emoji and the hashtags appended after it do not count (and, when
        given, the same `reading` of it)."""
        return self._fingerprint(self._body(text), reading)

    @staticmethod
    def _fingerprint(body: Iterable[str], reading: str) -> str:
        words = " ".join(body) + "|" + reading
        return hashlib.blake2b(words.encode(), digest_size=16).hexdigest()

    def sketch(self, text: str) -> tuple[int, ...]:
        """MinHash band keys of a post's word pairs: two near-identical posts share at least
        one key with high probability, so finding candidates is an indexed lookup."""
        return self.sketch_words(self._body(text))

    @staticmethod
    def sketch_words(words: Sequence[str]) -> tuple[int, ...]:
        """`sketch` of a post's body words (`Analysis.body`)."""
        pairs = _pairs(list(words))
        if not pairs:
            return ()
        hashed = [_hash64(p) for p in pairs]
        keys = []
        for band in range(SKETCH_BANDS):
            mins = [
                min((h ^ seed) * _MIX % _PRIME for h in hashed)
                for seed in _SEEDS[band * SKETCH_ROWS : (band + 1) * SKETCH_ROWS]
            ]
            digest = hashlib.blake2b(repr((band, mins)).encode(), digest_size=8).digest()
            keys.append(int.from_bytes(digest, "big", signed=True))
        return tuple(keys)

    def near_identical(self, first: str, second: str) -> bool:
        """Whether two posts are one offer worded almost the same: most word pairs shared, the
        same numbers, and no job title, skill, contract, work mode or city that only one has
        ("Python developer" and "Java developer" are two offers)."""
        ta, tb = self._body_tokens(first), self._body_tokens(second)
        a, b = [t.norm for t in ta], [t.norm for t in tb]
        if [w for w in a if w.isdigit()] != [w for w in b if w.isdigit()]:
            return False
        # A name only one of them has (a company, a product) makes another offer; a name
        # one of them merely puts first ("Offre : Acme recrute…") is still the same name.
        if self._names(ta) - set(b) or self._names(tb) - set(a):
            return False
        pa, pb = _pairs(a), _pairs(b)
        if not pa or not pb or len(pa & pb) / len(pa | pb) < SAME_PAIRS:
            return False
        wa, wb = set(a), set(b)
        if len(wa & wb) / len(wa | wb) < SAME_WORDS:
            return False
        return not any(self._telling(word) for word in set(a) ^ set(b))

    def _telling(self, word: str) -> bool:
        effect = self._effects.get((word,))
        return effect is not None and bool(
            effect.roles
            or effect.strong
            or effect.keywords
            or effect.job_title
            or effect.contract
            or effect.mode
            or effect.city
        )

    def _facet_words(
        self, categories: Iterable[str], contracts: Iterable[str], mode: str | None
    ) -> list[str]:
        """Words a /filter may name that the text itself may not contain (`+remote` matches
        "100% télétravail", `-stage` matches "internship"), each set apart by `|`."""
        words: list[str] = []
        named: list[tuple[str, Category | Facet]] = [
            *(("category", self.categories[c]) for c in categories),
            *(("contract", self.contracts[c]) for c in contracts),
            *([("mode", self.modes[mode])] if mode else []),
        ]
        for kind, item in named:
            key = (kind, item.slug)
            if key not in self._name_words:
                words_of_item: list[str] = []
                for text in dict.fromkeys((item.slug, *item.names.values())):
                    words_of_item += [*phrase_key(text), "|"]
                self._name_words[key] = tuple(words_of_item)
            words += self._name_words[key]
        return words


SKETCH_BANDS = 8
SKETCH_ROWS = 2
# Two wordings of one offer share this much of their words and of their word pairs.
SAME_WORDS = 0.75
SAME_PAIRS = 0.5
_PRIME = (1 << 61) - 1
_MIX = 0x9E3779B97F4A7C15
_SEEDS = [
    int.from_bytes(hashlib.blake2b(f"jobrelay-{i}".encode(), digest_size=8).digest(), "big")
    for i in range(SKETCH_BANDS * SKETCH_ROWS)
]


def _pairs(words: list[str]) -> frozenset[str]:
    return frozenset(f"{a} {b}" for a, b in itertools.pairwise(words))


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _work_mode(modes: list[str]) -> str | None:
    if "hybrid" in modes or ("remote" in modes and "onsite" in modes):
        return "hybrid"
    return modes[0] if modes else None


def _load(name: str) -> dict[str, Any]:
    path = resources.files("bot") / "data" / name
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(f"bot/data/{name}: {exc}") from None


@cache
def catalogue() -> Catalogue:
    """The catalogue shipped in `bot/data`, with the learned reader when one is shipped
    (`bot/data/reader.json.gz`; loaded once)."""
    from bot import reader  # it reads what this module computes

    shipped = Catalogue(_load("categories.toml"), _load("signals.toml"), _load("cities.toml"))
    shipped.reader = reader.load(shipped.threshold)
    return shipped


def analyse(text: str) -> Analysis:
    """Read one post with the shipped catalogue."""
    return catalogue().analyse(text)
