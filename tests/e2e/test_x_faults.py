"""X failing: rate limits are waited out, outages back off, credentials problems are reported
once; no post is missed afterwards."""

from __future__ import annotations

import asyncio
import itertools

from tests.e2e.harness import Stack, User


async def _following(stack: Stack) -> User:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = stack.user()
    await user.ask("/follow @acme_jobs")
    stack.x.add_post("acme_jobs", "Offer A")
    await user.wait_for(2)
    return user


def _timeline_requests(stack: Stack) -> list[tuple[float, int]]:
    return [(r.at, r.status) for r in stack.x.requests if r.path.endswith("/tweets")]


async def test_a_rate_limit_is_waited_out_until_its_reset(stack: Stack) -> None:
    user = await _following(stack)
    stack.x.clear_requests()
    stack.x.fail_next(429, count=1, reset_in=4, path_prefix="/2/users/")
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
    stack.x.fail_next(503, count=2, path_prefix="/2/users/")
    stack.x.fail_next(503, count=1, content_type="text/plain", path_prefix="/2/users/")
    stack.x.add_post("acme_jobs", "Offer B")
    texts = await user.wait_for(3, timeout=40)
    assert "Offer B" in texts[2]
    requests = _timeline_requests(stack)
    statuses = [status for _, status in requests]
    assert statuses[:4] == [503, 503, 503, 200]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(requests[:4])]
    # POLL_INTERVAL_SECONDS=1, doubled after each consecutive failure.
    assert gaps[0] >= 0.95 and gaps[1] >= 1.95 and gaps[2] >= 3.95, gaps
    await asyncio.sleep(1.5)
    assert len(user.received()) == 3


async def test_refused_credentials_are_reported_once_not_in_a_loop(stack: Stack) -> None:
    user = await _following(stack)
    stack.x.fail_next(401, count=3, path_prefix="/2/users/")
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
    await asyncio.sleep(1.5)
    for n in range(4):  # one poll reads all four: over the budget of 3
        stack.x.add_post("acme_jobs", f"Offer {n}")
    await user.wait_for(5)
    told = await operator.wait_for(2)
    assert "read budget is spent (4 of 3 posts)" in told[1], told
    stack.x.clear_requests()
    stack.x.add_post("acme_jobs", "Offer after the budget")
    await asyncio.sleep(3)
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
    stack.x.fail_next(429, count=1, usage_capped=True, path_prefix="/2/users/")
    told = await operator.wait_for(2)
    assert "X capped this app's monthly usage" in told[1]
    stack.x.add_post("acme_jobs", "Offer while capped")
    await asyncio.sleep(3)
    # One refused request, then none: this is not a rate limit to wait out for 15 minutes.
    assert [status for _, status in _timeline_requests(stack)] == [429]
    assert len(user.received()) == 1
    # A restart does not forget it (the cap is stored for the month).
    await stack.bot.stop()
    await stack.bot.start()
    await asyncio.sleep(2.5)
    assert [status for _, status in _timeline_requests(stack)] == [429]
