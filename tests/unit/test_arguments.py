"""Parsing /follow and /unfollow arguments."""

from __future__ import annotations

from datetime import time

import pytest

from bot.arguments import (
    ArgumentError,
    parse_filter,
    parse_follow_words,
    parse_handle,
    parse_handles,
    parse_timezone,
    parse_weekly,
)
from bot.classify import catalogue, phrase_key


def test_handles_are_accepted_with_or_without_at_and_as_profile_links() -> None:
    assert parse_handle("@acme_jobs") == "acme_jobs"
    assert parse_handle("acme_jobs") == "acme_jobs"
    assert parse_handle("https://x.com/Acme_Jobs") == "Acme_Jobs"
    assert parse_handle("twitter.com/acme_jobs/") == "acme_jobs"
    assert parse_handle("https://mobile.twitter.com/acme_jobs?s=20") == "acme_jobs"


def test_malformed_handles_are_reported() -> None:
    for bad in ["@", "@acme-jobs", "@a_handle_that_is_too_long", "<b>", "@acme jobs!", "x.com/"]:
        assert parse_handle(bad) is None, bad


def test_handles_are_deduplicated_case_insensitively_and_split_on_commas() -> None:
    parsed = parse_handles(["@Acme_Jobs,@devjobs", "acme_jobs", "@bad-one"])
    assert parsed.handles == ["Acme_Jobs", "devjobs"]
    assert parsed.malformed == ["@bad-one"]


def test_follow_words_split_into_handles_and_categories() -> None:
    words = parse_follow_words(
        [
            "@acme_jobs",
            "software",
            "service",
            "client",
            "paris_recrute",
            "@bad-handle",
            "é!",
            "software$$",
            "abcdefghijklmnopq",
            "💼",
        ],
        catalogue().category_for,
    )
    assert words.handles == ["acme_jobs"]
    assert words.bare_handles == ["paris_recrute"]  # an account needs its @
    assert words.categories == ["software", "support"]
    assert words.malformed == ["@bad-handle"]  # an @word is meant as a handle
    # A plain word is always read as a category, whatever its length or symbols.
    assert words.unknown == ["é!", "software$$", "abcdefghijklmnopq", "💼"]
    assert words.problems


def test_filter_words() -> None:
    def to_phrase(word: str) -> str:
        return " ".join(phrase_key(word))

    terms = parse_filter(["+Python", "+télétravail", "-stage", "node.js", "+python"], to_phrase)
    assert [(t.word, t.phrase, t.include) for t in terms] == [
        ("python", "python", True),
        ("télétravail", "teletravail", True),
        ("stage", "stage", False),
        ("node.js", "node js", True),
    ]
    # Sentence punctuation around a word, a hashtag sign and the signs of job titles are fine.
    typed = ["+python,", "-#stage", "«R&D»", "+UX/UI", "chargé(e)", "100%", "+Cafe\u0301."]
    assert [(t.word, t.phrase, t.include) for t in parse_filter(typed, to_phrase)] == [
        ("python", "python", True),
        ("stage", "stage", False),
        ("r&d", "r d", True),
        ("ux/ui", "ux ui", True),
        ("chargé(e)", "charge", True),
        ("100%", "100", True),
        ("café", "cafe", True),
    ]
    for words, code in [
        (["+"], "filter_sign"),
        (["+,"], "filter_sign"),
        (["+python", "-"], "filter_sign"),
        (["+!!!"], "filter_sign"),
        (["+$$$"], "filter_word"),
        (["+py_thon"], "filter_word"),
        (["+c++"], "filter_word"),
        (["-c#"], "filter_word"),
        (["+ﬃ" * 20], "filter_word"),  # 20 characters typed, 60 once folded
        (["+" + "a" * 41], "filter_word"),
        (["+" + "İ" * 40], "filter_word"),  # 40 characters typed, 80 once lowered (i̇)
        ([f"+w{i}" for i in range(21)], "filter_many"),
        (["+stage", "-stage"], "filter_both"),
    ]:
        with pytest.raises(ArgumentError) as caught:
            parse_filter(words, to_phrase)
        assert caught.value.code == code
    assert len(parse_filter([f"+w{i}" for i in range(20)], to_phrase)) == 20


def test_weekly_digest_days_in_both_languages() -> None:
    assert parse_weekly(["mon", "09:00"]) == (0, time(9, 0))
    assert parse_weekly(["vendredi", "17h30"]) == (4, time(17, 30))
    assert parse_weekly(["Dim."]) == (6, time(9, 0))  # 09:00 when no time is given
    for words in ([], ["someday"], ["mon", "25:00"], ["mon", "09:00", "extra"]):
        with pytest.raises(ArgumentError):
            parse_weekly(words)


def test_follow_words_tell_feeds_mastodon_and_bluesky_from_handles() -> None:
    words = parse_follow_words(
        [
            "https://Jobs.Example.com/feed.xml",
            "@recruteur@mastodon.social",
            "acme.bsky.social",
            "@acme_jobs",
            "https://x.com/paris_recrute",
            "ftp://jobs.example.com/feed.xml",
            "@bad@",
            "design",
        ],
        catalogue().category_for,
    )
    assert [(a.kind, a.key) for a in words.feeds] == [
        ("feed", "https://jobs.example.com/feed.xml"),
        ("mastodon", "@recruteur@mastodon.social"),
        ("bluesky", "acme.bsky.social"),
    ]
    assert words.feeds[1].url == "https://mastodon.social/@recruteur.rss"
    assert words.feeds[2].url == "https://bsky.app/profile/acme.bsky.social/rss"
    assert words.handles == ["acme_jobs", "paris_recrute"]  # x.com links stay X accounts
    assert [code for _, code in words.bad_feeds] == ["scheme", "mastodon"]
    assert words.categories == ["design"]


def test_a_web_address_without_its_scheme_is_a_feed_address() -> None:
    words = parse_follow_words(
        ["jobs.example.com/feed.xml", "www.emploi.example", "x.com/acme_jobs", "node.js"],
        catalogue().category_for,
    )
    assert [a.url for a in words.feeds] == [
        "https://jobs.example.com/feed.xml",
        "https://www.emploi.example/",
    ]
    assert words.handles == ["acme_jobs"]
    assert words.unknown == ["node.js"]  # a skill, not a site: no request is made for it


def test_time_zones_are_area_city_names_or_utc_in_any_case() -> None:
    assert parse_timezone("Europe/Paris") == "Europe/Paris"
    assert parse_timezone(" asia/tokyo ") == "Asia/Tokyo"
    assert parse_timezone("america/argentina/buenos_aires") == "America/Argentina/Buenos_Aires"
    assert parse_timezone("America/Port-au-Prince") == "America/Port-au-Prince"
    assert parse_timezone("utc") == "UTC"


@pytest.mark.parametrize(
    "word",
    [
        "localtime",  # the host's own zone: another host may not have it
        "posixrules",
        "Factory",
        "posix/Europe/Paris",
        "right/Europe/Paris",
        "../../../../etc/passwd",
        "Europe/../Asia/Tokyo",
        "/usr/share/zoneinfo/Europe/Paris",
        "US/Pacific",  # old aliases: the Area/City name is the one to give
        "Etc/GMT+5",
        "CET",
        "Mars/Olympus",
        "Europe/Paris/" + "x" * 40,
        "Europe/Paris\x00",
        "",
    ],
)
def test_other_zone_names_are_refused(word: str) -> None:
    with pytest.raises(ArgumentError):
        parse_timezone(word)
