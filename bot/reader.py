"""The learned offer reader: whether a post is a job offer, and its categories (pure).

A linear model (logistic regression, one per output: "offer", then one per category) over
what a post says: its words and word pairs, character n-grams of its words (so "développeuse"
is near "développeur", and a typo near the word), the words of its links ("/jobs/senior-ux-
designer-lyon": as words, and as a link's), a few shapes (a question, its length), and the
vocabulary's own reading (`bot.classify.Rules`: a job title, a contract, a salary, its score,
its categories). Trained by `make model` (`tools/train_reader.py`, scikit-learn) on the
labelled posts of `tests/data/`; what ships is `bot/data/reader.json.gz`: for each feature
kept, its weight in each output.

Features are named (`w:developpeur`), then hashed (CRC-32, stable across runs and machines)
into BUCKETS slots; training and reading share `features()`, so they cannot disagree. The
rows of the weight matrix are the slots some output gives a weight to; a post is read with one
dictionary lookup per feature and one small matrix product (numpy): well under 1 ms.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import math
import zlib
from array import array
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.classify import Rules, Signal, Verdict, url_words

log = logging.getLogger(__name__)

MODEL_FILE = "reader.json.gz"
FORMAT = 1
BUCKETS = 1 << 20
OFFER = "offer"
CHAR_SIZES = (3, 4, 5)
# A text feature weighs 1/sqrt(how many the post has): a long post is not surer for being long.
_LENGTHS = ((5, "tiny"), (15, "short"), (40, "medium"), (100, "long"))
_SCORE_LIMIT = 3.0


def _length(words: int) -> str:
    return next((name for limit, name in _LENGTHS if words <= limit), "very_long")


def features(text: str, rules: Rules, *, threshold: float) -> dict[str, float]:
    """A post's named features and their values (`threshold`: the vocabulary's offer
    threshold, so its score counts as how far above or below it the post is). What a person
    is told (`LearnedReader.why`); the model reads their slots (`vector`)."""
    words = _text_names(text, rules)
    scale = 1.0 / math.sqrt(len(words)) if words else 0.0
    found = dict.fromkeys(words, scale)
    found.update(_other_features(text, rules, threshold=threshold))
    return found


def _text_names(text: str, rules: Rules) -> dict[str, None]:
    """The names of a post's text features: words, their character n-grams, word pairs and
    link words."""
    norms = [w.norm for w in rules.words]
    names: dict[str, None] = {}
    for norm in norms:
        names.update(dict.fromkeys(_word_names(norm)))
    for first, second in itertools.pairwise(norms):
        names[f"b:{first} {second}"] = None
    for word in url_words(text):
        # A link's words are words too ("/offres/charge-de-communication-lyon" says what the
        # role is as the text would), and a link's word besides.
        names.update(dict.fromkeys(_word_names(word)))
        names[f"l:{word}"] = None
    return names


def _other_features(text: str, rules: Rules, *, threshold: float) -> dict[str, float]:
    """A post's shape and the vocabulary's reading of it, named."""
    norms = [w.norm for w in rules.words]
    found = {f"s:length:{_length(len(norms))}": 1.0}
    if "?" in text:
        found["s:question"] = 1.0
    if norms:
        found[f"s:first:{norms[0]}"] = 1.0
    shown = {
        "r:offer": rules.is_offer,
        "r:role": rules.role,
        "r:title": rules.title,
        "r:salary": rules.salary,
        "r:joke": rules.joke,
        "r:link": rules.apply_url is not None,
        "r:city": rules.city is not None,
    }
    found.update({name: 1.0 for name, on in shown.items() if on})
    found.update({f"r:contract:{c}": 1.0 for c in rules.contracts})
    if rules.work_mode is not None:
        found[f"r:mode:{rules.work_mode}"] = 1.0
    found.update({f"r:cat:{c}": 1.0 for c in rules.categories})
    found["r:score"] = max(-_SCORE_LIMIT, min(_SCORE_LIMIT, rules.score - threshold))
    return found


def _split(text: str, rules: Rules, *, threshold: float) -> tuple[set[int], dict[int, float]]:
    """A post's features as the model reads them: the slots of its text features (each
    weighs 1/sqrt(how many there are)) and its other features' slots and values. Slots, not
    names, are counted once: a word's slots are worked out once per process (words recur from
    post to post), and the post's are their union, a set operation in C."""
    norms = [w.norm for w in rules.words]
    links = url_words(text)
    text_slots: set[int] = set().union(
        *(_word_slots(word) for word in dict.fromkeys(itertools.chain(norms, links)))
    )
    text_slots.update(bucket(f"b:{a} {b}") for a, b in itertools.pairwise(norms))
    text_slots.update(bucket(f"l:{word}") for word in links)
    return text_slots, hashed(_other_features(text, rules, threshold=threshold))


def vector(text: str, rules: Rules, *, threshold: float) -> dict[int, float]:
    """A post's features as slot -> value: what the model is trained on and reads."""
    text_slots, others = _split(text, rules, threshold=threshold)
    scale = 1.0 / math.sqrt(len(text_slots)) if text_slots else 0.0
    slots = dict.fromkeys(text_slots, scale)
    for slot, value in others.items():
        slots[slot] = slots.get(slot, 0.0) + value
    return slots


# The caches below hold words a stranger may write (a feed's posts): bounded, a few tens of
# megabytes at most when full of long distinct words; the words of real posts recur.
@lru_cache(maxsize=1 << 12)
def _word_names(norm: str) -> tuple[str, ...]:
    """A word's own features: itself, and its character n-grams (with a space at each end).
    Words recur from post to post: each is taken apart once."""
    padded = f" {norm} "
    grams = (
        f"c:{padded[start : start + size]}"
        for size in CHAR_SIZES
        for start in range(len(padded) - size + 1)
    )
    return (f"w:{norm}", *grams)


@lru_cache(maxsize=1 << 14)
def _word_slots(norm: str) -> array[int]:
    """The slots of a word's own features (4 bytes each: a long word has 80)."""
    return array("i", (bucket(name) for name in _word_names(norm)))


@lru_cache(maxsize=1 << 16)
def bucket(name: str) -> int:
    """The slot of a named feature."""
    return zlib.crc32(name.encode("utf-8")) & (BUCKETS - 1)


def hashed(named: Mapping[str, float]) -> dict[int, float]:
    """Named features as slot -> value (values of colliding names add up)."""
    slots: dict[int, float] = {}
    for name, value in named.items():
        slot = bucket(name)
        slots[slot] = slots.get(slot, 0.0) + value
    return slots


class LearnedReader:
    """The trained model: reads posts, and says why."""

    def __init__(self, model: Mapping[str, Any], *, threshold: float) -> None:
        if model.get("format") != FORMAT or model.get("buckets") != BUCKETS:
            raise ValueError("the reader model was made for another version of jobrelay")
        self.outputs: list[str] = list(model["outputs"])
        self.categories = tuple(o for o in self.outputs if o != OFFER)
        self.thresholds: dict[str, float] = {k: float(v) for k, v in model["thresholds"].items()}
        self._bias = np.array([float(model["bias"][o]) for o in self.outputs])
        slots = [int(slot) for slot in model["slots"]]
        # slot -> row of the weight matrix (-1: no output weighs it): a post's slots are
        # looked up all at once (4 MB for 2^20 slots).
        self._row_of = np.full(BUCKETS, -1, dtype=np.int32)
        self._row_of[np.array(slots, dtype=np.int64)] = np.arange(len(slots), dtype=np.int32)
        self._weights: npt.NDArray[np.float64] = np.array(model["weights"], dtype=np.float64)
        self._weights = self._weights.reshape(len(slots), len(self.outputs))
        self._rule_threshold = threshold

    def _scores(self, text: str, rules: Rules) -> npt.NDArray[np.float64]:
        """Each output's score: the weights of the post's slots, times their values (the same
        numbers as `vector(...) @ weights`, in a few array operations)."""
        text_slots, others = _split(text, rules, threshold=self._rule_threshold)
        scores = self._bias.copy()
        if text_slots:  # each weighs the same: a sum of their rows, scaled once
            found = np.fromiter(text_slots, dtype=np.int64, count=len(text_slots))
            rows = self._row_of[found]
            scores += self._weights[rows[rows >= 0]].sum(axis=0) / math.sqrt(len(text_slots))
        found = np.fromiter(others, dtype=np.int64, count=len(others))
        values = np.fromiter(others.values(), dtype=np.float64, count=len(others))
        rows = self._row_of[found]
        weighed = rows >= 0
        scores += values[weighed] @ self._weights[rows[weighed]]
        return scores

    def probabilities(self, text: str, rules: Rules) -> dict[str, float]:
        """The probability of each output: offer, and each category (given an offer)."""
        scores = self._scores(text, rules)
        return {
            o: 1.0 / (1.0 + math.exp(-float(s))) for o, s in zip(self.outputs, scores, strict=True)
        }

    def read(self, text: str, rules: Rules) -> Verdict:
        """Whether a post is an offer (the offer threshold was chosen for precision) and the
        categories the model is confident of."""
        odds = self.probabilities(text, rules)
        is_offer = odds[OFFER] >= self.thresholds[OFFER]
        categories = tuple(c for c in self.categories if odds[c] >= self.thresholds[c])
        return Verdict(odds[OFFER], is_offer, categories)

    def why(self, text: str, rules: Rules, output: str, *, limit: int = 4) -> list[Signal]:
        """The strongest reasons towards `output` (positive weights first): words (the
        character n-grams of a word count as that word) and the vocabulary's signals."""
        column = self.outputs.index(output)
        named = features(text, rules, threshold=self._rule_threshold)
        containing = _words_containing(text, rules)
        weights: dict[str, float] = {}
        for name, value in named.items():
            row = int(self._row_of[bucket(name)])
            if row < 0:
                continue
            weight = float(self._weights[row, column]) * value
            for reason in _reasons(name, containing):
                weights[reason] = weights.get(reason, 0.0) + weight
        ranked = sorted(weights.items(), key=lambda item: -item[1])
        return [Signal(name, weight) for name, weight in ranked[:limit] if weight > 0]


def _words_containing(text: str, rules: Rules) -> dict[str, tuple[str, ...]]:
    """Each piece of a post's words (its links' too) as long as a character n-gram at most,
    and the words containing it: built once per post, so that a gram's words are one lookup
    (looking for each gram in each word took seconds on a post of a thousand short words)."""
    found: dict[str, dict[str, None]] = {}
    for norm in dict.fromkeys(itertools.chain((w.norm for w in rules.words), url_words(text))):
        padded = f" {norm} "
        for size in range(1, max(CHAR_SIZES) + 1):
            for start in range(len(padded) - size + 1):
                piece = padded[start : start + size].strip()
                if piece:
                    found.setdefault(piece, {})[norm] = None
    return {piece: tuple(words) for piece, words in found.items()}


def _reasons(name: str, containing: Mapping[str, tuple[str, ...]]) -> Iterable[str]:
    """What a feature is evidence of, as a person would say it: a word for a word, a word pair
    or a link word, every word containing a character n-gram, a signal's name otherwise."""
    kind, _, value = name.partition(":")
    if kind in ("w", "l"):
        return (value,)
    if kind == "b":
        return (value,)
    if kind == "c":
        return containing.get(value.strip(), ())
    if kind == "r":
        return (name,)
    return ()


def load(threshold: float, source: Traversable | None = None) -> LearnedReader | None:
    """The shipped model (or `source`), None when there is none or it cannot be read: the
    vocabulary reads alone, and the log says so (a bot that cannot start over a damaged model
    file relays nothing)."""
    source = source or resources.files("bot") / "data" / MODEL_FILE
    if not source.is_file():
        log.warning("No offer reader model (%s): the vocabulary reads posts alone", source)
        return None
    try:
        with source.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as text:
            return LearnedReader(json.load(text), threshold=threshold)
    except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError) as exc:
        log.error(
            "The offer reader model %s cannot be read (%s: %s): the vocabulary reads posts alone",
            source,
            type(exc).__name__,
            str(exc)[:200],
        )
        return None


def save(
    path: Path,
    *,
    outputs: Sequence[str],
    bias: Mapping[str, float],
    thresholds: Mapping[str, float],
    slots: Sequence[int],
    weights: Sequence[Sequence[float]],
    about: Mapping[str, Any],
) -> None:
    """Write a model file (gzip-compressed JSON, byte-for-byte the same for the same model)."""
    model = {
        "format": FORMAT,
        "buckets": BUCKETS,
        "about": dict(about),
        "outputs": list(outputs),
        "bias": {o: round(float(bias[o]), 6) for o in outputs},
        "thresholds": {o: round(float(thresholds[o]), 6) for o in outputs},
        "slots": [int(s) for s in slots],
        "weights": [round(float(w), 5) for row in weights for w in row],
    }
    body = json.dumps(model, separators=(",", ":"), sort_keys=True).encode("utf-8")
    with (
        path.open("wb") as out,
        gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0) as zipped,
    ):
        zipped.write(body)
