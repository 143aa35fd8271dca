"""Offer detection and categories measured on the labelled corpus (tests/data/posts.jsonl).

    python -m bench.categories                  # the learned reader: frozen test set, 5-fold CV
    python -m bench.categories --corpus FILE    # one corpus, as the bot reads it
    python -m bench.categories --corpus FILE --rules   # ... by the vocabulary alone
    python -m bench.categories --corpus FILE --errors  # every post read wrong, to study them

Prints precision and recall of offer detection and of each category, the accuracy of the
contract / work-mode / city tags on the offers, and the time to classify one post.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.classify import Analysis, Catalogue, catalogue
from bot.polling import read

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "posts.jsonl"
REQUIRED = ("web", "design", "software", "communication", "hr")
_LINK_RE = re.compile(r"https?://\S+|(?<![@\w.])(?:[\w-]+\.)+(?:fr|com|io|co|in|ly|org|uk|ca)/\S*")


@dataclass(frozen=True, slots=True)
class Post:
    """One labelled post."""

    id: str
    lang: str
    text: str
    offer: bool
    categories: frozenset[str]
    contract: frozenset[str]
    work_mode: str | None
    city: str | None
    kind: str = ""


def load(path: Path = CORPUS) -> list[Post]:
    """The labelled corpus."""
    posts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            posts.append(
                Post(
                    raw["id"],
                    raw["lang"],
                    raw["text"],
                    bool(raw["offer"]),
                    frozenset(raw["categories"]),
                    frozenset(raw["contract"]),
                    raw["work_mode"],
                    raw["city"],
                    raw.get("kind", ""),
                )
            )
    return posts


@dataclass(slots=True)
class Score:
    """Counts for one binary decision."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, truth: bool, guess: bool) -> None:
        """Count one decision."""
        self.tp += truth and guess
        self.fp += guess and not truth
        self.fn += truth and not guess

    @property
    def precision(self) -> float:
        """tp / (tp + fp); 1.0 with no guess."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """tp / (tp + fn); 1.0 with nothing to find."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def _same_city(a: str | None, b: str | None) -> bool:
    def norm(s: str | None) -> str:
        if s is None:
            return ""
        decomposed = unicodedata.normalize("NFKD", s)
        return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()

    return norm(a) == norm(b)


def evaluate(
    posts: list[Post], cat: Catalogue | None = None
) -> tuple[dict[str, Score], dict[str, float], list[str]]:
    """Scores per decision, tag accuracies and a line per mistake (`cat`: the shipped
    catalogue, with its learned reader, by default)."""
    cat = cat or catalogue()
    scores: dict[str, Score] = {"offer": Score()}
    for slug in cat.categories:
        scores[slug] = Score()
    tags = {"contract": 0, "work_mode": 0, "city": 0}
    mistakes: list[str] = []
    offers = 0
    for post in posts:
        got: Analysis = cat.analyse(post.text)
        scores["offer"].add(post.offer, got.is_offer)
        if post.offer != got.is_offer:
            mistakes.append(f"{post.id} offer={post.offer} got={got.score:.1f}: {post.text!r}")
        for slug in cat.categories:
            truth, guess = slug in post.categories, slug in got.categories
            scores[slug].add(truth, guess)
            if truth != guess:
                mistakes.append(f"{post.id} {slug} truth={truth}: {post.text!r}")
        if post.offer:
            offers += 1
            tags["contract"] += frozenset(got.contracts) == post.contract
            tags["work_mode"] += got.work_mode == post.work_mode
            tags["city"] += _same_city(got.city, post.city)
            if frozenset(got.contracts) != post.contract:
                mistakes.append(f"{post.id} contract {sorted(post.contract)} got {got.contracts}")
            if got.work_mode != post.work_mode:
                mistakes.append(f"{post.id} mode {post.work_mode} got {got.work_mode}")
            if not _same_city(got.city, post.city):
                mistakes.append(f"{post.id} city {post.city} got {got.city}")
    accuracy = {name: count / offers for name, count in tags.items()} if offers else {}
    return scores, accuracy, mistakes


def timing(
    posts: list[Post], rounds: int = 20, work: Callable[[str], object] | None = None
) -> tuple[float, float]:
    """Mean and 99th percentile microseconds of `work` (classifying) on one post: CPU time of
    this thread, what reading costs one core (a wall clock also counts the time other
    processes of a busy machine take the core)."""
    run = work or catalogue().analyse
    samples: list[float] = []
    for _ in range(rounds):
        for post in posts:
            start = time.thread_time()
            run(post.text)
            samples.append((time.thread_time() - start) * 1e6)
    samples.sort()
    return statistics.fmean(samples), samples[int(len(samples) * 0.99)]


def _repost(post: Post, index: int) -> str:
    """How another account reposts an offer: other link, no mention, appended hashtags, and
    (every other post) a few words of its own."""
    text = _LINK_RE.sub("https://t.co/Zz9", post.text)
    text = re.sub(r"(?<!\S)@\w+", "", text)
    if index % 2:
        text += " Postulez vite !" if post.lang == "fr" else " Apply now!"
    return text + (" #job #emploi" if post.lang == "fr" else " #jobs #hiring")


def stories(posts: list[Post]) -> tuple[int, int, int, int]:
    """(reposts recognised, reposts, distinct pairs merged, distinct pairs): how often an offer
    reposted by another account is found to be the same story, and how often two different
    posts of the corpus would wrongly be merged."""
    cat = catalogue()

    def same(a: str, b: str) -> bool:
        return cat.fingerprint(a) == cat.fingerprint(b) or cat.near_identical(a, b)

    offers = [p for p in posts if p.offer]
    found = sum(same(p.text, _repost(p, i)) for i, p in enumerate(offers))
    texts = [p.text for p in posts]
    merged = sum(same(a, b) for a, b in itertools.combinations(texts, 2))
    return found, len(offers), merged, len(texts) * (len(texts) - 1) // 2


def table(scores: dict[str, Score]) -> list[str]:
    """Precision and recall of each decision, as a Markdown table."""
    lines = ["| decision | support | precision | recall |", "|---|---:|---:|---:|"]
    for name, score in scores.items():
        support = score.tp + score.fn
        mark = " (required)" if name in REQUIRED else ""
        lines.append(f"| {name}{mark} | {support} | {score.precision:.3f} | {score.recall:.3f} |")
    return lines


def by_kind(posts: list[Post], cat: Catalogue | None = None) -> list[str]:
    """Offer-detection mistakes grouped by the kind of post (the labels' `kind`), worst
    share first, as a Markdown table."""
    cat = cat or catalogue()
    seen: dict[str, int] = {}
    wrong: dict[str, int] = {}
    for post in posts:
        kind = post.kind or "unlabelled"
        seen[kind] = seen.get(kind, 0) + 1
        wrong[kind] = wrong.get(kind, 0) + (cat.analyse(post.text).is_offer != post.offer)
    lines = ["| kind | posts | offer detection wrong |", "|---|---:|---:|"]
    for kind in sorted(seen, key=lambda k: (-wrong[k] / seen[k], k)):
        lines.append(f"| {kind} | {seen[kind]} | {wrong[kind]} |")
    return lines


def rules_only() -> Catalogue:
    """The shipped vocabulary without the learned reader (the rules alone)."""
    from tools.train_reader import rules_catalogue

    return rules_catalogue()


def cross_validation(posts: list[Post], training: list[Path], folds: int = 5) -> dict[str, Score]:
    """Scores of readers trained as `make model` trains, on 4/5 of `posts` (read from the
    `training` files), each measured on the fifth it did not see (thresholds chosen inside
    each training part, on its blind batches as `make model` chooses them)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from tools.train_reader import SEED, read_corpus, reader_of, train

    vocabulary = rules_only()
    labelled = [post for path in training for post in read_corpus(path)]
    assert [p.id for p in labelled] == [p.id for p in posts]
    total: dict[str, Score] = {"offer": Score(), **{c: Score() for c in vocabulary.categories}}
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    for part, held in splits.split(np.zeros(len(posts)), [p.offer for p in posts]):
        vocabulary.reader = None
        reader = reader_of(train([labelled[i] for i in part], vocabulary), vocabulary)
        vocabulary.reader = reader
        scores, _, _ = evaluate([posts[i] for i in held], vocabulary)
        for name, score in scores.items():
            total[name].tp += score.tp
            total[name].fp += score.fp
            total[name].fn += score.fn
    vocabulary.reader = None
    return total


def learned_report(test: Path, training: list[Path]) -> str:
    """The learned reader on the frozen test set, and in 5-fold cross-validation on the
    training posts; errors by kind on the test set; the time per post."""
    frozen = load(test)
    rest = [post for path in training for post in load(path)]
    scores, accuracy, _ = evaluate(frozen)
    mean, p99 = timing(frozen, rounds=5)
    rules_mean, rules_p99 = timing(frozen, rounds=5, work=rules_only().analyse)
    french = sum(p.lang == "fr" for p in frozen)
    return "\n".join(
        [
            f"Frozen test set ({test.name}): {len(frozen)} posts ({french} French), "
            f"{sum(p.offer for p in frozen)} offers; never used for training or tuning.",
            "",
            *table(scores),
            "",
            "Tags on its offers (exact match): "
            + ", ".join(f"{name} {value:.1%}" for name, value in accuracy.items())
            + ".",
            "",
            "Offer detection on the test set, by kind of post:",
            "",
            *by_kind(frozen),
            "",
            f"5-fold cross-validation on the {len(rest)} training posts:",
            "",
            *table(cross_validation(rest, training)),
            "",
            f"Reading one post (learned reader, with the vocabulary's signals and tags): mean "
            f"{mean:.0f} µs, p99 {p99:.0f} µs; the vocabulary alone: mean {rules_mean:.0f} µs, "
            f"p99 {rules_p99:.0f} µs.",
        ]
    )


def report(posts: list[Post], cat: Catalogue | None = None) -> str:
    """The Markdown table of BENCHMARKS.md."""
    scores, accuracy, _ = evaluate(posts, cat)
    mean, p99 = timing(posts, work=cat.analyse if cat else None)
    read_mean, read_p99 = timing(posts, rounds=5, work=read)
    found, reposts, merged, pairs = stories(posts)
    french = sum(p.lang == "fr" for p in posts)
    lines = [
        f"Corpus: {len(posts)} posts ({french} French, {len(posts) - french} English), "
        f"{sum(p.offer for p in posts)} offers.",
        "",
        *table(scores),
    ]
    lines += [
        "",
        "Tags on the offers (exact match): "
        + ", ".join(f"{name} {value:.1%}" for name, value in accuracy.items())
        + ".",
        f"Classifying one post: mean {mean:.0f} µs, p99 {p99:.0f} µs; reading it as the poller "
        f"does (classification, fingerprint, band keys): mean {read_mean:.0f} µs, "
        f"p99 {read_p99:.0f} µs.",
        f"Stories: {found} of {reposts} offers reposted by another account (other link, no "
        "mention, hashtags appended, half with a few words added) recognised as the same "
        f"offer; {merged} of {pairs} pairs of different posts wrongly merged.",
    ]
    return "\n".join(lines)


def main() -> int:
    """Print the table (or the mistakes with --errors)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--errors", action="store_true", help="list every mistake")
    parser.add_argument("--corpus", type=Path, default=None, help="one corpus, in full")
    parser.add_argument(
        "--rules", action="store_true", help="the vocabulary alone (a batch's blind figures)"
    )
    args = parser.parse_args()
    cat = rules_only() if args.rules else None
    if args.corpus is None:
        from tools.train_reader import TEST_SET, training_files

        print(learned_report(TEST_SET, training_files()))
        return 0
    posts = load(args.corpus)
    if args.errors:
        for line in evaluate(posts, cat)[2]:
            print(line)
        return 0
    print(report(posts, cat))
    print()
    print(*by_kind(posts, cat), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
