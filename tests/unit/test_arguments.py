"""Parsing /follow and /unfollow arguments."""

from __future__ import annotations

from bot.arguments import parse_handle, parse_handles


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
