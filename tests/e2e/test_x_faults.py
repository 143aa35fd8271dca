"""X failing: rate limits are waited out, outages back off, credentials problems are reported
once; no post is missed afterwards."""

from __future__ import annotations

import itertools
import re

from tests.e2e.harness import Stack, User, eventually, polls_pass, x_reads


async def _following(stack: Stack) -> User:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = stack.user()
    await user.ask("/follow @acme_jobs")
    stack.x.add_post("acme_jobs", "Offer A")
    await user.wait_for(2)
    return user


SEARCH = "/2/tweets/search/recent"


def _timeline_requests(stack: Stack) -> list[tuple[float, int]]:
    """(time, status) of every poll: one recent search reads every followed account."""
    return [(r.at, r.status) for r in stack.x.requests if r.path == SEARCH]


async def test_a_rate_limit_is_waited_out_until_its_reset(stack: Stack) -> None:
    user = await _following(stack)
    stack.x.clear_requests()
    stack.x.fail_next(429, count=1, reset_in=4, path_prefix=SEARCH)
    stack.x.add_post("acme_jobs", "Offer B")
    texts = await user.wait_for(3, timeout=30)
    assert "Offer B" in texts[2]
    requests = _timeline_requests(stack)
    limited_at = next(at for at, status in requests if status == 429)
    after = [at for at, status in requests if at > limited_at]
    # x-rate-limit-reset is whole epoch seconds: nothing before (limited_at + 4) rounded down.
    assert after and min(after) >= int(limited_at + 4) - 0.01


async def test_an_outage_backs_off_exponentially_and_misses_nothing(stack: Stack) -> None:
    user = await _following(stack)
    stack.x.clear_requests()
    stack.x.fail_next(503, count=2, path_prefix=SEARCH)
    stack.x.fail_next(503, count=1, content_type="text/plain", path_prefix=SEARCH)
    stack.x.add_post("acme_jobs", "Offer B")
    texts = await user.wait_for(3, timeout=40)
    assert "Offer B" in texts[2]
    requests = _timeline_requests(stack)
    statuses = [status for _, status in requests]
    assert statuses[:4] == [503, 503, 503, 200]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(requests[:4])]
    # POLL_INTERVAL_SECONDS=1, doubled after each consecutive failure.
    assert gaps[0] >= 0.95 and gaps[1] >= 1.95 and gaps[2] >= 3.95, gaps
    await stack.quiet("acme_jobs")
    assert len(user.received()) == 3


async def test_refused_credentials_are_reported_once_not_in_a_loop(stack: Stack) -> None:
    user = await _following(stack)
    stack.x.fail_next(401, count=3, path_prefix=SEARCH)
    stack.x.add_post("acme_jobs", "Offer B")
    texts = await user.wait_for(3, timeout=40)
    assert "Offer B" in texts[2]
    assert stack.bot.log.count("X refused jobrelay's credentials") == 1


async def test_polling_stops_at_the_month_s_read_budget_and_the_operator_is_told(
    stack: Stack,
) -> None:
    operator = stack.user()
    stack.bot.env.update(X_MONTHLY_POST_READ_BUDGET="3", ADMIN_USER_IDS=str(operator.user_id))
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    assert "Operator commands" in await operator.ask("/admin help")  # known to the bot
    user = stack.user()
    await user.ask("/follow @acme_jobs")
    await x_reads(stack.x, "acme_jobs", count=1)
    for n in range(4):  # one poll reads all four: over the budget of 3
        stack.x.add_post("acme_jobs", f"Offer {n}")
    await user.wait_for(5)
    told = await operator.wait_for(2)
    assert "read budget is spent (4 of 3 posts)" in told[1], told
    stack.x.clear_requests()
    stack.x.add_post("acme_jobs", "Offer after the budget")
    await polls_pass(3)
    assert _timeline_requests(stack) == []  # no X read, so no cost
    assert len(user.received()) == 5
    report = await operator.ask("/admin usage")
    assert "Posts read: 4 of a 3 budget (133%)" in report
    assert (
        "Cost so far: $0.03" in report
    )  # 4 posts and 1 account looked up and "stopped until the 1st of next month" in report
    assert "don't know that command" in await user.ask("/admin usage")  # not an operator
    assert len(operator.received()) == 3  # told once


async def test_x_capping_the_app_stops_polling_until_next_month(stack: Stack) -> None:
    operator = stack.user()
    stack.bot.env.update(ADMIN_USER_IDS=str(operator.user_id))
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    await operator.ask("/admin status")
    user = await stack.follower("acme_jobs")
    stack.x.clear_requests()
    stack.x.fail_next(429, count=1, usage_capped=True, path_prefix=SEARCH)
    told = await operator.wait_for(2)
    assert "X capped this app's monthly usage" in told[1]
    stack.x.add_post("acme_jobs", "Offer while capped")
    await polls_pass(3)
    # One refused request, then none: this is not a rate limit to wait out for 15 minutes.
    assert [status for _, status in _timeline_requests(stack)] == [429]
    assert len(user.received()) == 1
    # A restart does not forget it (the cap is stored for the month).
    await stack.bot.stop()
    await stack.bot.start()
    await polls_pass(3)
    assert [status for _, status in _timeline_requests(stack)] == [429]


async def test_a_rate_limit_holds_every_account_until_its_reset_and_misses_no_post(
    stack: Stack,
) -> None:
    """A 429 on one account's timeline holds the polls of all three followed accounts until
    x-rate-limit-reset; the posts made meanwhile on each account all arrive afterwards."""
    accounts = ["acme_jobs", "lyon_jobs", "nantes_jobs"]
    for account in accounts:
        stack.x.add_user(account)
    await stack.bot.start()
    user = stack.user()
    await user.ask("/follow " + " ".join(f"@{a}" for a in accounts))
    await x_reads(stack.x, *accounts, count=1)
    stack.x.clear_requests()
    stack.x.fail_next(429, count=1, reset_in=5, path_prefix=SEARCH)
    offers = [f"Offer {i} of @{account}" for i in range(2) for account in accounts]
    for i, offer in enumerate(offers):
        stack.x.add_post(accounts[i % len(accounts)], offer)
    await eventually(lambda: len(user.received()) >= 1 + len(offers), 30, "every offer")
    await stack.quiet(*accounts)
    texts = user.texts()[1:]
    assert len(texts) == len(offers)
    assert all(sum(offer in text for text in texts) == 1 for offer in offers)
    requests = _timeline_requests(stack)
    limited_at = next(at for at, status in requests if status == 429)
    # Polls already under way when X answered 429 may arrive a moment later; after that,
    # no account is read before the reset (whole epoch seconds, at least 5 s later).
    early = [at for at, _ in requests if limited_at + 0.3 < at < limited_at + 5 - 0.05]
    later = [at for at, _ in requests if at > limited_at + 0.3]
    print(
        f"429 with a 5 s reset: {len(early)} timeline read(s) before the reset, first read "
        f"after it {min(later) - limited_at:.2f} s after the 429"
    )
    assert not early
    read_again = {
        handle
        for r in stack.x.requests
        if r.path == SEARCH and r.at > limited_at + 5
        for handle in re.findall(r"from:(\w+)", r.params["query"])
    }
    assert read_again == set(accounts)


async def test_a_long_read_cut_on_a_later_page_by_429_then_503_misses_no_post(
    stack: Stack,
) -> None:
    """150 new posts are two pages; X answers the second page with a 429 (reset in 3 s),
    then with 503s. The first page is not stored without the second: the read starts over
    from the stored cursor, and every post arrives once, in order."""
    stack.x.add_user("acme_jobs")
    stack.bot.env["DEFAULT_DAILY_LIMIT"] = "50"
    await stack.bot.start()
    user = stack.user()
    await user.ask("/follow @acme_jobs")
    await x_reads(stack.x, "acme_jobs", count=1)
    await stack.bot.stop()
    for i in range(150):  # X returns at most 100 per page
        stack.x.add_post("acme_jobs", f"Offer number {i}")
    stack.x.clear_requests()
    stack.x.fail_next(429, count=1, reset_in=3, path_prefix=SEARCH, param="next_token")
    stack.x.fail_next(503, count=2, path_prefix=SEARCH, param="next_token")
    await stack.bot.start()
    # 50 are pushed (the daily limit), the other 100 are held for the digest.
    await user.wait_for(51, timeout=60)
    await stack.quiet("acme_jobs")
    assert "Today: 50 sent, 100 held" in await user.ask_until("/limit", "100 held")
    user.say("/digest")

    def numbers() -> list[int]:
        return user.numbers_after("Offer number ")

    await eventually(lambda: len(numbers()) >= 150, 30, "every offer, pushed or in the digest")
    await stack.quiet("acme_jobs")
    assert numbers() == list(range(150))  # each exactly once, oldest first
    statuses = [status for _, status in _timeline_requests(stack)]
    assert statuses[:6] == [200, 429, 200, 503, 200, 503], statuses
    assert statuses[6:8] == [200, 200], statuses


async def test_a_failed_lookup_of_a_silent_account_is_retried_later_not_at_every_poll(
    stack: Stack,
) -> None:
    """X_SILENT_ACCOUNT_CHECK_SECONDS=2: the silent account's lookup fails (503), is tried
    again a period later (not at each 0.5 s tick), and then finds it suspended."""
    stack.bot.env["X_SILENT_ACCOUNT_CHECK_SECONDS"] = "2"
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower()
    stack.x.suspend_user("acme_jobs")
    stack.x.fail_next(503, count=1, path_prefix="/2/users")
    texts = await user.wait_for(2, timeout=20)
    assert "@acme_jobs is no longer available on X" in texts[1], texts
    lookups = [r for r in stack.x.requests if r.path == "/2/users"]
    assert [r.status for r in lookups] == [503, 200]
    assert lookups[1].at - lookups[0].at >= 1.9
