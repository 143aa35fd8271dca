"""Train the offer reader from the labelled posts (`make model`): `bot/data/reader.json.gz`.

    python -m tools.train_reader            # train on every corpus but the frozen test set
    python -m tools.train_reader --check    # train, then compare with the shipped file

Deterministic: the same posts give the same file, byte for byte (liblinear with a fixed seed,
features hashed with CRC-32, the file written with sorted keys and no timestamp). The frozen
test set (`tests/data/test.jsonl`) is never read here. Thresholds are chosen on out-of-fold
predictions of a 5-fold cross-validation of the training posts: the offer threshold is the
lowest whose precision is at least OFFER_PRECISION (category followers get only posts the
reader is confident are offers); each category's, the best F1 with precision at least
CATEGORY_PRECISION.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from bot.classify import Catalogue, _load
from bot.reader import BUCKETS, FORMAT, MODEL_FILE, OFFER, LearnedReader, features, hashed, save

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
TEST_SET = DATA / "test.jsonl"
MODEL = ROOT / "bot" / "data" / MODEL_FILE
OFFER_PRECISION = 0.95
CATEGORY_PRECISION = 0.90
FOLDS = 5
SEED = 20261203
C_OFFER = 8.0
C_CATEGORY = 8.0
# Weights this small change no probability by more than a rounding: not shipped.
KEEP_WEIGHT = 0.02


@dataclass(frozen=True, slots=True)
class Labelled:
    """A labelled post."""

    id: str
    text: str
    offer: bool
    categories: frozenset[str]
    kind: str


def read_corpus(path: Path) -> list[Labelled]:
    """The posts of one JSONL corpus file."""
    posts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            posts.append(
                Labelled(
                    raw["id"],
                    raw["text"],
                    bool(raw["offer"]),
                    frozenset(raw["categories"]),
                    raw.get("kind", ""),
                )
            )
    return posts


def training_files() -> list[Path]:
    """Every corpus of tests/data except the frozen test set."""
    return sorted(p for p in DATA.glob("*.jsonl") if p != TEST_SET)


def rules_catalogue() -> Catalogue:
    """The vocabulary alone (no model): what the reader's rule features come from."""
    return Catalogue(_load("categories.toml"), _load("signals.toml"), _load("cities.toml"))


def matrix(posts: Sequence[Labelled], vocabulary: Catalogue) -> csr_matrix:
    """The posts' hashed features, one row each."""
    data: list[float] = []
    columns: list[int] = []
    pointers = [0]
    for post in posts:
        slots = hashed(
            features(post.text, vocabulary.rules(post.text), threshold=vocabulary.threshold)
        )
        for slot in sorted(slots):
            columns.append(slot)
            data.append(slots[slot])
        pointers.append(len(columns))
    return csr_matrix((data, columns, pointers), shape=(len(posts), BUCKETS), dtype=np.float64)


def model(c: float) -> LogisticRegression:
    """One output's classifier."""
    return LogisticRegression(C=c, solver="liblinear", random_state=SEED, max_iter=1000)


def out_of_fold(x: csr_matrix, y: npt.NDArray[np.bool_], c: float) -> npt.NDArray[np.float64]:
    """Each post's probability from a model that did not see it (5-fold cross-validation)."""
    found = np.zeros(len(y))
    if y.all() or not y.any():
        return found + float(y.mean())
    folds = StratifiedKFold(
        n_splits=min(FOLDS, int(y.sum()), int((~y).sum())), shuffle=True, random_state=SEED
    )
    for train, held in folds.split(np.zeros(len(y)), y):
        fitted = model(c).fit(x[train], y[train])
        found[held] = fitted.predict_proba(x[held])[:, 1]
    return found


def threshold_for_precision(
    probabilities: npt.NDArray[np.float64], y: npt.NDArray[np.bool_], precision: float
) -> float:
    """The lowest threshold whose precision is at least `precision` (0.5 if none is)."""
    for candidate in np.unique(np.round(probabilities, 4)):
        chosen = probabilities >= candidate
        if chosen.any() and y[chosen].mean() >= precision:
            return float(candidate)
    return 0.5


def threshold_for_f1(
    probabilities: npt.NDArray[np.float64], y: npt.NDArray[np.bool_], precision: float
) -> float:
    """The threshold with the best F1 among those with precision at least `precision`
    (the best F1 overall when none reaches it)."""
    best: tuple[bool, float, float] = (False, -1.0, 0.5)
    for candidate in np.unique(np.round(probabilities, 4)):
        chosen = probabilities >= candidate
        hits = float((chosen & y).sum())
        if not chosen.any() or not y.any():
            continue
        p, r = hits / chosen.sum(), hits / y.sum()
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        best = max(best, (bool(p >= precision), f1, -float(candidate)))
    return -best[2] if best[1] >= 0 else 0.5


@dataclass(frozen=True, slots=True)
class Trained:
    """A trained reader, before it is written."""

    outputs: list[str]
    bias: dict[str, float]
    thresholds: dict[str, float]
    coefficients: dict[str, npt.NDArray[np.float64]]


def train(posts: Sequence[Labelled], vocabulary: Catalogue) -> Trained:
    """Fit every output on `posts`, thresholds from cross-validation on them."""
    x = matrix(posts, vocabulary)
    offers = np.array([p.offer for p in posts])
    outputs = [OFFER, *vocabulary.categories]
    bias: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    coefficients: dict[str, npt.NDArray[np.float64]] = {}
    fitted = model(C_OFFER).fit(x, offers)
    bias[OFFER] = float(fitted.intercept_[0])
    coefficients[OFFER] = fitted.coef_[0]
    thresholds[OFFER] = threshold_for_precision(
        out_of_fold(x, offers, C_OFFER), offers, OFFER_PRECISION
    )
    only = x[offers]
    offer_posts = [p for p in posts if p.offer]
    for category in vocabulary.categories:
        y = np.array([category in p.categories for p in offer_posts])
        if not y.any():
            bias[category], thresholds[category] = -10.0, 1.0
            coefficients[category] = np.zeros(BUCKETS)
            continue
        fitted = model(C_CATEGORY).fit(only, y)
        bias[category] = float(fitted.intercept_[0])
        coefficients[category] = fitted.coef_[0]
        thresholds[category] = threshold_for_f1(
            out_of_fold(only, y, C_CATEGORY), y, CATEGORY_PRECISION
        )
    return Trained(outputs, bias, thresholds, coefficients)


def kept(trained: Trained) -> tuple[list[int], list[list[float]]]:
    """The feature slots a model file keeps, and their weights (one per output)."""
    stacked = np.stack([trained.coefficients[o] for o in trained.outputs], axis=1)
    keep = np.flatnonzero(np.abs(stacked).max(axis=1) >= KEEP_WEIGHT)
    return keep.tolist(), stacked[keep].tolist()


def reader_of(trained: Trained, vocabulary: Catalogue) -> LearnedReader:
    """A trained model as the bot reads it (what the file would hold), without a file."""
    slots, weights = kept(trained)
    return LearnedReader(
        {
            "format": FORMAT,
            "buckets": BUCKETS,
            "outputs": trained.outputs,
            "bias": trained.bias,
            "thresholds": trained.thresholds,
            "slots": slots,
            "weights": [w for row in weights for w in row],
        },
        threshold=vocabulary.threshold,
    )


def write(trained: Trained, path: Path, about: dict[str, object]) -> int:
    """Write the model file; how many feature slots it keeps."""
    slots, weights = kept(trained)
    save(
        path,
        outputs=trained.outputs,
        bias=trained.bias,
        thresholds=trained.thresholds,
        slots=slots,
        weights=weights,
        about=about,
    )
    return len(slots)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODEL)
    parser.add_argument("--check", action="store_true", help="fail if the shipped file differs")
    args = parser.parse_args(argv)
    files = training_files()
    posts = [post for path in files for post in read_corpus(path)]
    vocabulary = rules_catalogue()
    trained = train(posts, vocabulary)
    about = {
        "trained_on": [p.name for p in files],
        "posts": len(posts),
        "offers": sum(p.offer for p in posts),
    }
    target = args.out.with_suffix(".check") if args.check else args.out
    kept = write(trained, target, about)
    print(f"{len(posts)} posts from {len(files)} files; {kept} feature slots kept -> {target}")
    print("thresholds: " + ", ".join(f"{o} {t:.3f}" for o, t in trained.thresholds.items()))
    if args.check:
        same = target.read_bytes() == args.out.read_bytes()
        target.unlink()
        print("the shipped model is " + ("up to date" if same else "NOT what the data gives"))
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
