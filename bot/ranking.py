"""Ranking (issue #17): a per-chat score learned only from that chat's own marks, and which
offers of the moment get the day's instant pushes (pure: the sender and bench/ranking.py use
the same functions).

The score is a naive-Bayes log-odds: how much more often each feature of an offer (its source,
categories, contract, work mode, city and words) appears among the offers the chat saved or
applied to than among the offers it received (those it marked 👎 count three times). Features
every offer shares cancel out; what sets the chat's chosen offers apart weighs. A chat with
fewer than MIN_MARKS saves has no model: its offers keep today's order (cold start).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

MIN_MARKS = 3  # saves (or applications) before a chat's offers are ranked
NOT_FOR_ME_WEIGHT = 3  # a 👎 says more than an offer merely left alone
SMOOTHING = 1.0
TEXT_CHARS = 1_000  # of an offer's text read for its words (a feed's entry may be long)
MAX_WORDS = 120  # distinct words of one offer at most
# The "usual score" an offer must reach to be pushed at once: this quantile of the scores of
# the offers the chat received (the rest wait for the digest, best first).
USUAL_QUANTILE = 0.75
_WORD = re.compile(r"[a-z0-9+#]{3,}")
# Training reads up to 700 offers of history and costs about half a second of CPU for a chat
# with long offers: redone for every send batch, a few ranked chats would stall the sender
# (and, on the event loop, every handler) for everyone. A chat's model is reused until its
# saves change (the fingerprint) or MODEL_TTL passes (a 👎 on an offer it never saved, and
# newly received offers, are learned within that time); MAX_MODELS chats at most are kept.
MODEL_TTL = timedelta(minutes=10)
MAX_MODELS = 5_000


def _fold(text: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c)
    )


def features(author: str, text: str, tags: Mapping[str, Any] | None) -> frozenset[str]:
    """What an offer is scored on: `src:`, `cat:`, `con:`, `mode:`, `city:` and `w:` words."""
    found = {f"src:{author.lower()}"}
    tags = tags or {}
    for category in tags.get("categories") or []:
        found.add(f"cat:{category}")
    for contract in tags.get("contracts") or []:
        found.add(f"con:{contract}")
    if isinstance(tags.get("work_mode"), str):
        found.add(f"mode:{tags['work_mode']}")
    if isinstance(tags.get("city"), str):
        found.add(f"city:{_fold(tags['city'])}")
    words = dict.fromkeys(_WORD.findall(_fold(text[:TEXT_CHARS])))
    found.update(f"w:{word}" for word in list(words)[:MAX_WORDS])
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Example:
    """One offer of a chat's history: its features, and what the chat did with it."""

    features: frozenset[str]
    saved: bool
    not_for_me: bool = False


@dataclass(frozen=True, slots=True)
class Model:
    """A chat's learned weights and the score its offers usually reach."""

    weights: Mapping[str, float]
    usual: float
    examples: int = 0

    def score(self, offer: Iterable[str]) -> float:
        """The offer's log-odds of being one this chat keeps."""
        return sum(self.weights.get(f, 0.0) for f in offer)


def train(history: Sequence[Example]) -> Model | None:
    """The chat's model, or None at cold start (fewer than MIN_MARKS saves)."""
    kept = [e for e in history if e.saved]
    if len(kept) < MIN_MARKS:
        return None
    positive: Counter[str] = Counter()
    background: Counter[str] = Counter()
    for example in kept:
        positive.update(example.features)
    others = 0
    for example in history:
        if example.saved:
            continue
        mass = NOT_FOR_ME_WEIGHT if example.not_for_me else 1
        others += mass
        for feature in example.features:
            background[feature] += mass
    n_pos, n_bg = len(kept), max(others, 1)

    def weight(pos: float, n_p: float, bg: float, n_b: float) -> float:
        return math.log((pos + SMOOTHING) / (n_p + 2 * SMOOTHING)) - math.log(
            (bg + SMOOTHING) / (max(n_b, 1) + 2 * SMOOTHING)
        )

    weights = {
        feature: weight(positive[feature], n_pos, background[feature], n_bg)
        for feature in set(positive) | set(background)
    }
    # The usual score is measured out of sample (each past offer scored by a model that did
    # not learn from it): scored by the full model, every saved offer's own rare words would
    # lift it, and a new offer of the same kind would look below the usual.
    scores = []
    for example in history:
        own_pos = 1 if example.saved else 0
        own_bg = 0 if example.saved else (NOT_FOR_ME_WEIGHT if example.not_for_me else 1)
        scores.append(
            sum(
                weight(
                    positive[f] - own_pos, n_pos - own_pos, background[f] - own_bg, n_bg - own_bg
                )
                for f in example.features
                if positive[f] - own_pos > 0 or background[f] - own_bg > 0
            )
        )
    scores.sort()
    usual = scores[min(len(scores) - 1, int(len(scores) * USUAL_QUANTILE))]
    return Model(weights=weights, usual=usual, examples=len(history))


@dataclass(frozen=True, slots=True)
class Plan:
    """The order in which a chat's offers of the moment are tried, and those held below the
    usual score (each row appears once: in `order` or in `below`)."""

    order: list[int]  # indices, best first
    below: list[int]  # indices held for the digest (their score is below the usual)


def plan(scores: Sequence[float | None], *, usual: float | None) -> Plan:
    """Offers of the moment by score, best first (ties: arrival order); without a model
    (`usual` None, or no score) the arrival order, nothing held here."""
    indices = list(range(len(scores)))
    if usual is None or any(s is None for s in scores):
        return Plan(order=indices, below=[])
    ranked = sorted(indices, key=lambda i: (-(scores[i] or 0.0), i))
    above = [i for i in ranked if (scores[i] or 0.0) >= usual]
    below = [i for i in ranked if (scores[i] or 0.0) < usual]
    return Plan(order=above, below=below)


class ModelCache:
    """Each chat's trained model (or its cold start, None) with the fingerprint of the marks
    it learned from; least recently used chats are dropped past MAX_MODELS."""

    def __init__(self, *, ttl: timedelta = MODEL_TTL, size: int = MAX_MODELS) -> None:
        self._ttl = ttl
        self._size = size
        self._models: OrderedDict[int, tuple[Hashable, datetime, Model | None]] = OrderedDict()

    def get(self, chat_id: int, fingerprint: Hashable, now: datetime) -> tuple[bool, Model | None]:
        """(found, model): found only when trained on the same marks less than the TTL ago."""
        entry = self._models.get(chat_id)
        if entry is None or entry[0] != fingerprint or now - entry[1] >= self._ttl:
            return False, None
        self._models.move_to_end(chat_id)
        return True, entry[2]

    def put(self, chat_id: int, fingerprint: Hashable, now: datetime, model: Model | None) -> None:
        """Remember a chat's model just trained, and forget the models past their TTL (a chat
        that used /forget leaves no learned weights in memory for longer than that, provided
        some chat is trained; next to a training, the sweep costs nothing)."""
        for stale in [c for c, entry in self._models.items() if now - entry[1] >= self._ttl]:
            del self._models[stale]
        self._models[chat_id] = (fingerprint, now, model)
        self._models.move_to_end(chat_id)
        while len(self._models) > self._size:
            self._models.popitem(last=False)

    def __len__(self) -> int:
        return len(self._models)
