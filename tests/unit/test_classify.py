"""The classifier on hand-picked tricky posts, and on a fixed subset of the labelled corpus."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.categories import REQUIRED, evaluate, load
from bot.classify import Catalogue, CatalogueError, analyse, catalogue, first_url, phrase_key


@pytest.mark.parametrize(
    "text",
    [
        "🚀 On recrute ! Développeur·se Python H/F en CDI à Lyon. Postulez : https://jobs.acme.fr/1",
        "UX Designer (F/H) – CDI – Nantes – hybride 2j/sem. Postulez : https://x.example/o/2",
        "#WeAreHiring a Senior Backend Engineer (Go) – remote EU – apply: https://careers.example.com/3",
        "Chargé(e) de communication interne – CDD 6 mois – Bordeaux",
        "Our client is looking for a Talent Acquisition Partner in London (hybrid). DM me.",
    ],
)
def test_offers_are_recognised(text: str) -> None:
    assert analyse(text).is_offer


@pytest.mark.parametrize(
    "text",
    [
        "Je cherche un stage en design graphique à Paris #OpenToWork",
        "We are not hiring at the moment, but thanks for your interest!",
        "Pas de recrutement en cours chez nous, revenez en septembre.",
        "Join us at our webinar on Thursday: how to land your first developer job",
        "Salon de l'emploi de Lille le 12 mars : venez rencontrer nos recruteurs !",
        "Big news: we raised a €20M Series B to grow our team 🎉",
        "Welcome to Julie, our new CTO! 👋",
        "Looking for my next role as a React developer, open to work 🙏",
    ],
)
def test_non_offers_are_not(text: str) -> None:
    assert not analyse(text).is_offer


def test_matching_ignores_case_accents_and_hashtags_but_keeps_word_boundaries() -> None:
    assert phrase_key("Développeur WEB") == phrase_key("developpeur web")
    assert analyse("#DéveloppeurWeb #CDI #Lyon #recrutement").categories == ("web", "software")
    # "stage" inside another word, or the English "on stage", is no internship.
    assert "internship" not in analyse("Backstage crew wanted for our tour, CDI, Paris").contracts
    assert (
        "internship"
        not in analyse("Join us on stage: we're hiring a sound engineer, CDI").contracts
    )
    # The vocabulary's "designer" is not inside "redesigned" (the learned reader, which reads
    # character n-grams, weighs such a word itself).
    redesigned = catalogue().rules("We're hiring: redesigned our Python backend team, CDI")
    assert "design" not in redesigned.categories


def test_inclusive_writing_and_plurals_read_as_the_word() -> None:
    for spelling in (
        "Chargé(e) de communication",
        "Chargé·e de communication",
        "chargée de communication",
    ):
        assert "communication" in analyse(f"{spelling} – CDI – Paris – postulez").categories


def test_tags_are_extracted() -> None:
    reading = analyse(
        "Nous recrutons un Data Analyst (H/F) en CDI à Paris 9e, télétravail 2 jours par "
        "semaine. Candidatez : https://jobs.acme.fr/da?ref=x. Infos https://acme.fr"
    )
    assert reading.contracts == ("cdi",)
    assert reading.work_mode == "hybrid"
    assert reading.city == "Paris"
    assert reading.apply_url == "https://jobs.acme.fr/da?ref=x"
    assert analyse("Stage 6 mois – 100% remote – graphiste – postulez").work_mode == "remote"
    assert analyse("Alternance RH sur site à Lille, postulez").contracts == ("apprenticeship",)


def test_a_city_that_is_also_a_word_needs_its_capital() -> None:
    assert analyse("We're hiring a nice developer, CDI, apply now").city is None
    assert analyse("We're hiring a developer in Nice, CDI, apply now").city == "Nice"


def test_cities_answer_to_their_other_spellings_and_abbreviations_only_in_capitals() -> None:
    assert analyse("We're hiring a backend developer in LA, full-time").city == "Los Angeles"
    assert analyse("Hiring a designer in Lyons, CDI, apply now").city == "Lyon"
    assert analyse("On recrute un dev web basé à Marseilles, CDI").city == "Marseille"
    assert analyse("Nous recrutons un développeur en CDI. La mission est passionnante").city is None


def test_the_first_link_is_the_apply_link() -> None:
    assert first_url("Apply: lnkd.in/abc123, more at https://acme.fr") == "https://lnkd.in/abc123"
    assert first_url("Node.js/React developer wanted") is None
    assert first_url("no link here") is None


def test_fingerprints_ignore_links_mentions_hashtags_and_spacing() -> None:
    one = analyse("We're hiring a #Python developer in Lyon! https://t.co/abc @acme")
    two = analyse("We're   hiring a Python developer in Lyon!\nhttps://t.co/xyz")
    other = analyse("We're hiring a Java developer in Lyon! https://t.co/abc")
    assert one.fingerprint == two.fingerprint
    assert one.fingerprint != other.fingerprint


def test_categories_answer_to_their_names_in_both_languages() -> None:
    cat = catalogue()
    assert {"web", "design", "software", "communication", "hr"} <= set(cat.categories)
    assert cat.category_for("software") == "software"
    assert cat.category_for("Logiciel") == "software"
    assert cat.category_for("graphisme") == "design"
    assert cat.category_for("RH") == "hr"
    assert cat.category_for("service client") == "support"
    assert cat.category_for("nosuchcategory") is None
    assert cat.categories["hr"].name("fr") == "RH"


def test_a_malformed_catalogue_is_refused_with_a_clear_message() -> None:
    signals = {"offer": {"threshold": 3, "phrases": {}}, "contract": {}, "mode": {}}
    with pytest.raises(CatalogueError, match="needs \\[\\[category\\]\\]"):
        Catalogue({}, signals, {"cities": []})
    bad_slug = {"category": [{"slug": "Not A Slug", "en": "x", "fr": "x"}]}
    with pytest.raises(CatalogueError, match="bad or missing slug"):
        Catalogue(bad_slug, signals, {"cities": []})
    no_french = {"category": [{"slug": "web", "en": "Web"}]}
    with pytest.raises(CatalogueError, match="French"):
        Catalogue(no_french, signals, {"cities": []})


# The frozen test set (tests/data/test.jsonl): posts the shipped reader was neither trained nor
# tuned on. Guards at the figures measured when the model was made (BENCHMARKS.md, "The
# learned reader"), a little below them: a change that makes the reader worse fails here.
TEST_SET = load(Path(__file__).resolve().parents[1] / "data" / "test.jsonl")


def test_offer_detection_on_the_frozen_test_set() -> None:
    scores, _, mistakes = evaluate(TEST_SET)
    offer = scores["offer"]
    assert offer.precision >= 0.95, [m for m in mistakes if " offer=" in m]
    assert offer.recall >= 0.93, [m for m in mistakes if " offer=" in m]


# Measured: web 0.936, software 0.915, design 0.865, communication 0.717, hr 0.875.
RECALL_FLOORS = {"web": 0.90, "software": 0.88, "design": 0.83, "communication": 0.69, "hr": 0.84}


@pytest.mark.parametrize("slug", REQUIRED)
def test_required_categories_on_the_frozen_test_set(slug: str) -> None:
    scores, _, mistakes = evaluate(TEST_SET)
    assert scores[slug].precision >= 0.90, [m for m in mistakes if f" {slug} " in m]
    assert scores[slug].recall >= RECALL_FLOORS[slug], [m for m in mistakes if f" {slug} " in m]


def test_near_identical_wordings_of_one_offer_and_different_offers() -> None:
    cat = catalogue()
    offer = (
        "🚀 We're hiring a Backend Developer (Python) in Lyon – CDI, hybrid 2 days a week. Apply!"
    )
    reworded = (
        "We are hiring a Backend Developer (Python) in Lyon - CDI, hybrid 2 days a week #jobs"
    )
    assert cat.near_identical(offer, reworded)
    assert set(cat.sketch(offer)) & set(cat.sketch(reworded))  # found by an index lookup
    # Another job, another city, another number or another contract is another offer.
    for other in ("Python", "Java"), ("Lyon", "Paris"), ("2 days", "3 days"), ("CDI", "CDD"):
        assert not cat.near_identical(offer, offer.replace(*other)), other
    # A repost that puts the company first is the same offer; another company is not.
    plain = "Acme recrute un développeur backend Python à Lyon en CDI, télétravail 2 jours"
    assert cat.near_identical(plain, "Offre : " + plain)
    assert cat.near_identical("Offre : " + plain, plain)
    assert not cat.near_identical(plain, plain.replace("Acme", "Globex"))
    # Band keys do not depend on the process (they are stored and compared across restarts).
    assert cat.sketch(offer) == Catalogue.sketch(cat, offer)
    assert len(cat.sketch(offer)) == 8


# Posts an account or a feed may serve, built so that a backtracking pattern takes minutes to
# ages on them: a tweet of closing hashtags ending in "_", one word of 200,000 letters, "1 1 1
# …" before a currency that never comes, a long hyphenated word, hashtags then a last word.
HOSTILE_POSTS = [
    "Hiring! " + "#a_" * 40 + " ok",
    "x" * 200_000,
    "1 " * 100_000 + "x",
    "x-" * 100_000,
    "#jobs " * 40_000 + "x",
]


@pytest.mark.parametrize("index", range(len(HOSTILE_POSTS)))
def test_reading_a_hostile_post_takes_a_moment_not_the_bot(index: int) -> None:
    """The classifier runs on the bot's event loop: one post must not freeze every chat. A
    regex cannot be interrupted in-process, hence a child process with a deadline."""
    code = (
        "import time; from bot.classify import analyse; "
        "from tests.unit.test_classify import HOSTILE_POSTS as P; "
        f"start = time.monotonic(); analyse(P[{index}]); print(time.monotonic() - start)"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"analysing hostile post #{index} took more than 30 s")
    assert float(done.stdout) < 10, done.stdout


def test_closing_hashtags_are_dropped_from_a_post_s_body_as_before() -> None:
    cat = catalogue()
    assert cat.body_length("Backend developer in Lyon #jobs #CDI_ !") == 4
    assert cat.body_length("Backend developer in Lyon #jobs and more") == 7
    assert cat.body_length("#jobs #CDI") == 0
    assert cat.body_length("Dev__ #a_b __ #c") == 1


def _cost(text: str) -> float:
    """The best of five readings of `text`, in seconds."""
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        analyse(text)
        timings.append(time.perf_counter() - start)
    return min(timings)


@pytest.mark.parametrize("hostile", ["1 " * 2000, "1." * 2000, "x-" * 2000])
def test_a_hostile_post_of_4000_characters_costs_about_what_an_offer_does(hostile: str) -> None:
    """Reads are cut to 4,000 characters, but "1 1 1 …" (an amount with no currency) or a
    long hyphenated word cost 50 times an offer's reading when a pattern restarts at each
    digit or hyphen: a feed of such entries would keep a core busy."""
    offer = ("We are hiring a Python developer in Lyon, CDI, remote two days a week. " * 60)[:4000]
    assert _cost(hostile) < 10 * _cost(offer)
