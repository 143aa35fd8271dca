"""The learned offer reader: trained reproducibly, read the same as trained, explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.classify import catalogue
from bot.reader import OFFER, bucket, features, hashed
from tools.train_reader import (
    DATA,
    Labelled,
    read_corpus,
    reader_of,
    rule_slots,
    rules_catalogue,
    train,
    write,
)


def _sample() -> list[Labelled]:
    return read_corpus(DATA / "batch-a.jsonl")[:120] + read_corpus(DATA / "posts.jsonl")[:80]


def test_the_same_posts_train_the_same_model_file(tmp_path: Path) -> None:
    vocabulary = rules_catalogue()
    posts = _sample()
    first, second = tmp_path / "first.json.gz", tmp_path / "second.json.gz"
    write(train(posts, vocabulary), first, {"posts": len(posts)})
    write(train(list(posts), rules_catalogue()), second, {"posts": len(posts)})
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_bytes()) > 1000


def test_the_offer_model_gives_no_weight_to_the_vocabulary_s_signals() -> None:
    """Measured in cross-validation, the vocabulary's signals cost the offer model recall
    (tools/train_reader.rule_slots): it is trained without them, the categories with them."""
    vocabulary = rules_catalogue()
    trained = train(_sample(), vocabulary)
    slots = rule_slots(vocabulary)
    assert not trained.coefficients[OFFER][slots].any()
    assert trained.coefficients["software"][slots].any()


def test_a_post_is_read_by_the_shipped_model_as_it_was_trained() -> None:
    cat = catalogue()
    assert cat.reader is not None, "bot/data/reader.json.gz is shipped (make model)"
    text = "We're hiring a Python developer (CDI) in Lyon, hybrid. Apply: https://jobs.acme.fr/1"
    named = features(text, cat.rules(text), threshold=cat.threshold)
    assert "w:developer" in named and "l:jobs" in named and "r:contract:cdi" in named
    assert hashed(named)[bucket("w:developer")] > 0
    analysis = cat.analyse(text)
    assert analysis.is_offer and "software" in analysis.categories
    assert 0.5 < analysis.score <= 1.0  # the probability that it is an offer
    diary = "Ran 6 interviews today for our backend role. Tired but happy, great candidates!"
    assert not cat.analyse(diary).is_offer


def test_why_names_words_of_the_post() -> None:
    cat = catalogue()
    assert cat.reader is not None
    text = "Nous recrutons un développeur web (CDI) à Nantes, télétravail partiel. Postulez !"
    signals = cat.reader.why(text, cat.rules(text), OFFER)
    assert signals and all(s.weight > 0 for s in signals)
    words = {w.norm for w in cat.rules(text).words}
    assert all(s.name in words or s.name.startswith("r:") or " " in s.name for s in signals)


def test_a_model_trained_in_memory_reads_like_the_file_it_writes(tmp_path: Path) -> None:
    import gzip
    import json

    from bot.reader import LearnedReader

    vocabulary = rules_catalogue()
    trained = train(_sample(), vocabulary)
    path = tmp_path / "model.json.gz"
    write(trained, path, {})
    with gzip.open(path, "rt") as text:
        from_file = LearnedReader(json.load(text), threshold=vocabulary.threshold)
    in_memory = reader_of(trained, vocabulary)
    for post in _sample()[:40]:
        rules = vocabulary.rules(post.text)
        a, b = from_file.probabilities(post.text, rules), in_memory.probabilities(post.text, rules)
        assert all(abs(a[k] - b[k]) < 1e-3 for k in a)


def test_why_on_a_post_of_a_thousand_short_words_names_its_words() -> None:
    """/why of a 4,000-character post of distinct three-letter words (a stranger's worst case:
    every character n-gram is its own word). Its cost, 0.45-0.64 s per output when each n-gram
    was looked for in every word, is measured in BENCHMARKS.md ("/why on a hostile post"), not
    here; this checks the answer still names the post's own words."""
    import itertools
    import string

    from bot.i18n import translator
    from bot.why import explain

    cat = catalogue()
    assert cat.reader is not None
    letters = ["".join(p) for p in itertools.product(string.ascii_lowercase, repeat=3)]
    head = "We're hiring a Python developer (CDI) in Lyon. Apply: https://jobs.acme.fr/1 "
    text = (head + " ".join(letters))[:4000]
    answer = str(explain(translator("en"), cat, text, "en"))
    assert answer.startswith(("Read as an offer", "Not read as an offer"))
    from bot.classify import url_words

    words = {w.norm for w in cat.rules(text).words} | set(url_words(text))
    signals = cat.reader.why(text, cat.rules(text), "offer")
    assert signals and all(
        s.name in words or " " in s.name or s.name.startswith("r:") for s in signals
    )


def test_a_damaged_model_file_leaves_the_vocabulary_reading_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A truncated, non-gzip, non-JSON or wrong-shaped model file does not stop the bot from
    starting: load() answers None (the vocabulary reads alone) and logs why."""
    import gzip
    import logging

    from bot.reader import load

    shipped = (Path(__file__).parents[2] / "bot" / "data" / "reader.json.gz").read_bytes()
    damaged = {
        "truncated": shipped[: len(shipped) // 2],
        "not-gzip": b"not a model",
        "not-json": gzip.compress(b"{nope"),
        "wrong-shape": gzip.compress(b'{"format": 1, "buckets": 1048576, "outputs": 3}'),
    }
    for name, body in damaged.items():
        path = tmp_path / f"{name}.json.gz"
        path.write_bytes(body)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="bot.reader"):
            assert load(1.0, path) is None, name
        assert any("vocabulary reads posts alone" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.reader"):
        assert load(1.0, tmp_path / "missing.json.gz") is None
    assert any("No offer reader model" in r.getMessage() for r in caplog.records)
