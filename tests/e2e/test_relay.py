"""From /follow to a push on the phone: the real bot, real python-telegram-bot and tweepy,
talking HTTP to the Telegram and X stand-ins, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import Counter

from tests.e2e.harness import Stack, eventually, x_reads

HOSTILE = (
    "Dev <b>senior & <i>junior</b> wanted: <script>alert(1)</script> & 5 < 6 > 4 "
    "&amp; &lt;ok&gt; 🚀👩‍💻 salaire 45k€ "
)


async def test_a_new_post_reaches_every_subscriber_once(stack: Stack) -> None:
    stack.x.add_user("acme_jobs", name="Acme Jobs")
    stack.x.add_post("acme_jobs", "An old offer from last week")
    await stack.bot.start()
    users = [stack.user() for _ in range(3)]
    for user in users:
        reply = await user.ask("/follow @acme_jobs")
        assert "Now following @acme_jobs" in reply
    await x_reads(stack.x, "acme_jobs", count=1)  # a poll: the old post must not be sent
    stack.x.add_post("acme_jobs", "We're hiring a Python developer in Lyon")
    for user in users:
        texts = await user.wait_for(2)
        assert "We're hiring a Python developer in Lyon" in texts[1]
        assert texts[1].startswith("@acme_jobs")
        assert "View on X" in texts[1]
    await stack.quiet("acme_jobs")  # more polls: nothing is sent twice
    for user in users:
        assert len(user.received()) == 2
        assert not any("old offer" in t for t in user.texts())
        message = user.received()[1]
        assert message.parse_mode == "HTML"
        assert "https://x.com/acme_jobs/status/" in message.text


async def test_replies_and_reposts_are_not_relayed(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    stack.x.add_user("someone")
    original = stack.x.add_post("someone", "Looking for a job")
    await stack.bot.start()
    user = await stack.follower()
    stack.x.add_post("acme_jobs", "@someone have a look at our page", reply_to=original)
    stack.x.add_post("acme_jobs", "RT @someone: Looking for a job", retweet_of=original)
    stack.x.add_post("acme_jobs", "Offer: UX designer, CDI, Nantes")
    texts = await user.wait_for(2)
    await stack.quiet("acme_jobs")
    assert len(user.received()) == 2
    assert "UX designer" in texts[1]


async def test_hostile_text_arrives_intact(stack: Stack) -> None:
    text = (HOSTILE * 3)[:280]
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower()
    stack.x.add_post("acme_jobs", text)
    texts = await user.wait_for(2)
    # The stand-in parsed the HTML exactly as Telegram does: what the phone shows is the post.
    assert text.strip() in texts[1]
    assert stack.tg.stats["sendMessage:400"] == 0


async def test_posts_made_while_the_bot_is_down_arrive_after_restart(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower()
    stack.x.add_post("acme_jobs", "Offer one")
    await user.wait_for(2)
    await stack.bot.stop()
    stack.x.add_post("acme_jobs", "Offer two, posted while the bot was down")
    stack.x.add_post("acme_jobs", "Offer three, also while down")
    await stack.bot.start()
    texts = await user.wait_for(4)
    await stack.quiet("acme_jobs")
    assert len(user.received()) == 4
    assert "Offer two" in texts[2] and "Offer three" in texts[3]


async def test_more_than_one_page_of_new_posts_is_read_without_gaps(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    stack.bot.env["DEFAULT_DAILY_LIMIT"] = "50"
    await stack.bot.start()
    user = await stack.follower()
    await stack.bot.stop()
    for i in range(230):  # X returns at most 100 per page
        stack.x.add_post("acme_jobs", f"Offer number {i}")
    await stack.bot.start()
    # 50 are pushed (the daily limit), the other 180 are held, none dropped.
    await user.wait_for(51, timeout=60)
    await stack.quiet("acme_jobs")
    assert "Today: 50 sent, 180 held" in await user.ask_until("/limit", "180 held")
    user.say("/digest")

    def numbers() -> list[int]:
        return user.numbers_after("Offer number ")

    await eventually(lambda: len(numbers()) >= 230, 30, "every offer, pushed or in the digest")
    await stack.quiet("acme_jobs")
    assert numbers() == list(range(230))  # each exactly once, oldest first


async def test_fifty_chats_following_one_account_cost_one_x_request_per_poll(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    users = [stack.user() for _ in range(50)]
    for user in users:
        user.say("/follow @acme_jobs")
    await eventually(lambda: all(len(u.received()) == 1 for u in users), 30, "50 follow replies")
    assert stack.x.request_count("/2/users/by/username") == 1  # resolved once, then stored
    stack.x.clear_requests()
    started = time.monotonic()
    stack.x.add_post("acme_jobs", "One offer for fifty people")
    await eventually(lambda: all(len(u.received()) == 2 for u in users), 30, "50 deliveries")
    await stack.quiet("acme_jobs")
    elapsed = time.monotonic() - started
    timeline_requests = stack.x.request_count("/2/tweets/search/recent")
    # POLL_INTERVAL_SECONDS=1: one request per second at most, whatever the subscriber count.
    assert 1 <= timeline_requests <= elapsed + 1
    assert sum(len(u.received()) for u in users) == 100


async def test_a_subscriber_who_blocked_the_bot_is_skipped(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    alice, bob, carol = stack.user(), stack.user(), stack.user()
    for user in (alice, bob, carol):
        await user.ask("/follow @acme_jobs")
    await x_reads(stack.x, "acme_jobs", count=1)
    stack.tg.block(bob.chat_id)
    stack.x.add_post("acme_jobs", "First offer")
    await alice.wait_for(2)
    await carol.wait_for(2)
    stack.x.add_post("acme_jobs", "Second offer")
    await alice.wait_for(3)
    await carol.wait_for(3)
    await stack.quiet("acme_jobs")
    assert len(bob.received()) == 1  # only the /follow reply
    # Bob is inactive now: the second offer was not even attempted.
    assert stack.tg.stats["sendMessage:403"] == 1


async def test_restart_by_kill_mid_delivery_loses_nothing_and_doubles_nothing(
    stack: Stack,
) -> None:
    stack.x.add_user("acme_jobs")
    # One send at a time, each answered after 20 ms: a kill always lands mid-delivery and
    # leaves at most one message that Telegram accepted but the bot never heard about.
    stack.bot.env["SEND_CONCURRENCY"] = "1"
    await stack.bot.start()
    users = [stack.user() for _ in range(30)]
    for user in users:
        user.say("/follow @acme_jobs")
    await eventually(lambda: all(len(u.received()) == 1 for u in users), 30, "follow replies")
    await x_reads(stack.x, "acme_jobs", count=1)
    stack.tg.set_delay(0.02)
    for i in range(5):
        stack.x.add_post("acme_jobs", f"Offer {i}")
    expected = {(u.chat_id, f"Offer {i}") for u in users for i in range(5)}

    def delivered() -> Counter[tuple[int, str]]:
        counter: Counter[tuple[int, str]] = Counter()
        for message in stack.tg.sent:
            for i in range(5):
                if f"Offer {i}" in message.text:
                    counter[(message.chat_id, f"Offer {i}")] += 1
        return counter

    kills = 0
    for threshold in (20, 60, 100):

        def reached(goal: int = threshold) -> bool:
            return sum(delivered().values()) >= goal

        await eventually(reached, 60, f"{threshold} deliveries")
        await stack.bot.kill()
        kills += 1
        await stack.bot.start()
    await eventually(lambda: set(delivered()) == expected, 60, "every offer delivered")
    # Every post is delivered: the rows still out would show up now. (Not quiet():
    # on PostgreSQL a poll the kill cut keeps its group leased for minutes.)
    await stack.db.idle()
    counts = delivered()
    duplicates = sum(n - 1 for n in counts.values())
    print(f"kill -9 x{kills} during {len(expected)} deliveries: {duplicates} duplicate(s)")
    assert set(counts) == expected
    assert duplicates <= kills, f"{duplicates} duplicates after {kills} kills"
    # Each chat still got its offers in the order they were posted.
    for user in users:
        order = [t for t in user.texts() if t.startswith("@acme_jobs")]
        firsts = list(dict.fromkeys(int(t.split("Offer ")[1][0]) for t in order))
        assert firsts == sorted(firsts)


async def test_an_account_that_disappears_is_announced_once(stack: Stack) -> None:
    """A search only stops finding a suspended account: the bot looks up accounts silent
    for X_SILENT_ACCOUNT_CHECK_SECONDS (14 days by default, 2 s here)."""
    stack.bot.env["X_SILENT_ACCOUNT_CHECK_SECONDS"] = "2"
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower(language="fr")
    stack.x.suspend_user("acme_jobs")
    texts = await user.wait_for(2)
    assert "@acme_jobs n'est plus disponible sur X" in texts[1]
    # Told once: nothing comes in more than one silent-account period (2 s). The absence of
    # an event has no event to wait for.
    await asyncio.sleep(2.5)
    await stack.db.idle()
    assert len(user.received()) == 2
    listing = await user.ask("/list")
    assert "@acme_jobs (n'est plus disponible sur X)" in listing


async def test_a_renamed_account_is_still_followed_under_its_new_handle(stack: Stack) -> None:
    """A search reads accounts by handle: once a silent account is looked up by id and found
    renamed, its posts are read (and named) under the new handle, none missed."""
    stack.bot.env["X_SILENT_ACCOUNT_CHECK_SECONDS"] = "2"
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower()
    stack.x.rename_user("acme_jobs", "acme_careers")
    stack.x.add_post("acme_careers", "Offer posted under the new handle")
    texts = await user.wait_for(2, timeout=20)
    assert texts[1].startswith("@acme_careers") and "under the new handle" in texts[1]
    assert "@acme_careers" in await user.ask("/list")
    lookups = [r for r in stack.x.requests if r.path == "/2/users"]
    # Looked up, then not again before another 2 s of silence (a loaded machine may take
    # that long to get here: the spacing is the property, not the count).
    assert lookups, "the silent account was never looked up"
    gaps = [b.at - a.at for a, b in itertools.pairwise(lookups)]
    assert all(gap >= 1.5 for gap in gaps), lookups


async def test_followers_of_an_account_old_and_new_handles_all_get_its_offers(
    stack: Stack,
) -> None:
    """A source is an X account (its id), not a handle: a chat that followed the old handle
    and one that follows the new one share it, and both get every offer (the silent-account
    check, 14 days by default, never has to heal anything)."""
    stack.x.add_user("alice_jobs")
    await stack.bot.start()
    first = stack.user()
    assert "Now following @alice_jobs" in await first.ask("/follow @alice_jobs")
    await x_reads(stack.x, "alice_jobs", count=1)
    stack.x.rename_user("alice_jobs", "alice_talent")
    second = stack.user()
    assert "Now following @alice_talent" in await second.ask("/follow @alice_talent")
    stack.x.add_post("alice_talent", "Offer: Python developer, CDI, Lyon")
    for user in (first, second):
        texts = await user.wait_for(2)
        assert texts[1].startswith("@alice_talent") and "Python developer" in texts[1]
        assert "@alice_talent" in await user.ask("/list")
    await stack.quiet("alice_talent")
    assert len(first.received()) == len(second.received()) == 3  # nothing twice


async def test_a_handle_taken_over_by_another_account_is_not_followed_by_mistake(
    stack: Stack,
) -> None:
    """@alice renames herself @alice_old and a new account takes @alice: the new account's
    posts are not sent to alice's followers, a lookup by id finds her new handle at once, and
    a later /follow @alice subscribes to the new account, under its own name."""
    stack.x.add_user("alice", name="Alice Recruiting")
    await stack.bot.start()
    first = stack.user()
    assert "Now following @alice" in await first.ask("/follow @alice")
    await x_reads(stack.x, "alice", count=1)
    stack.x.rename_user("alice", "alice_old")
    stack.x.add_user("Alice", name="Someone else")
    stack.x.add_post("Alice", "Offer from the new owner of the handle")
    await eventually(
        lambda: any(r.path == "/2/users" for r in stack.x.requests), 20, "a lookup by id"
    )
    await x_reads(stack.x, "alice_old", count=1)
    second = stack.user()
    assert "Now following @Alice" in await second.ask("/follow @alice")
    stack.x.add_post("alice_old", "Offer: data analyst, Paris")
    stack.x.add_post("Alice", "Offer: UX designer, Nantes")
    assert "data analyst" in (await first.wait_for(2))[1]
    assert "UX designer" in (await second.wait_for(2))[1]
    await stack.quiet("alice_old")
    assert not any("new owner" in t or "UX designer" in t for t in first.texts())
    assert not any("data analyst" in t for t in second.texts())
    assert "@alice_old" in await first.ask("/list")


async def test_a_group_that_became_a_supergroup_keeps_its_feed(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    stack.tg.add_chat(-4001, "group", title="Job club")
    stack.tg.set_member_status(-4001, 77, "administrator")
    stack.tg.send_message(
        -4001,
        "/follow@jobrelay_bot @acme_jobs",
        user_id=77,
        chat_type="group",
        chat_title="Job club",
    )
    await eventually(lambda: len(stack.tg.messages_for(-4001)) == 1, 15, "the group reply")
    await x_reads(stack.x, "acme_jobs", count=1)
    stack.tg.add_chat(-1009001, "supergroup", title="Job club")
    stack.tg.migrate(-4001, -1009001)
    stack.x.add_post("acme_jobs", "Offer for the club")
    await eventually(lambda: len(stack.tg.messages_for(-1009001)) == 1, 15, "the offer")
    assert "Offer for the club" in stack.tg.messages_for(-1009001)[0].text
    stack.x.add_post("acme_jobs", "Second offer for the club")
    await eventually(lambda: len(stack.tg.messages_for(-1009001)) == 2, 15, "the 2nd offer")


async def test_telegram_failures_delay_but_never_lose_an_offer(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower()
    stack.tg.fail_next(3, status=502)
    stack.x.add_post("acme_jobs", "Offer through a flaky Telegram")
    texts = await user.wait_for(2, timeout=30)
    assert "flaky Telegram" in texts[1]
    await stack.quiet("acme_jobs")
    assert len(user.received()) == 2


async def test_a_message_telegram_rejects_is_skipped_and_never_blocks_the_queue(
    stack: Stack,
) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower()
    stack.tg.fail_next(1, status=400, description="Bad Request: can't parse entities: test")
    stack.x.add_post("acme_jobs", "Offer that Telegram rejects")
    await eventually(lambda: stack.tg.stats["sendMessage:400"] == 1, 15, "the rejection")
    stack.x.add_post("acme_jobs", "Offer that goes through")
    texts = await user.wait_for(2)
    assert "Offer that goes through" in texts[1]
    await stack.quiet("acme_jobs")
    assert len(user.received()) == 2  # the rejected one is not retried in a loop
    assert "Telegram rejected delivery" in stack.bot.log


async def test_following_again_after_a_gap_does_not_flood_old_posts(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower()
    stack.x.add_post("acme_jobs", "Offer while followed")
    await user.wait_for(2)
    await user.ask("/unfollow @acme_jobs")
    for i in range(3):
        stack.x.add_post("acme_jobs", f"Offer {i} while nobody followed")
    await user.ask("/follow @acme_jobs")
    await x_reads(stack.x, "acme_jobs", count=1)
    stack.x.add_post("acme_jobs", "Offer after following again")
    texts = await user.wait_for(5)
    await stack.quiet("acme_jobs")
    assert "Offer after following again" in texts[4]
    assert not any("while nobody followed" in t for t in user.texts())


async def test_thirty_accounts_cost_two_searches_a_poll_and_each_post_is_read_once(
    stack: Stack,
) -> None:
    """30 accounts with 15-character handles fill two 512-character search queries: each poll
    costs two requests, not thirty, and every post is returned by X once, restart included."""
    accounts = [f"recruiter{n:02d}_abc" for n in range(30)]
    for account in accounts:
        stack.x.add_user(account)
    stack.bot.env["DEFAULT_DAILY_LIMIT"] = "50"
    await stack.bot.start()
    user = stack.user()
    await user.ask("/follow " + " ".join(f"@{a}" for a in accounts[:15]))
    await user.ask("/follow " + " ".join(f"@{a}" for a in accounts[15:]))
    await x_reads(stack.x, *accounts, count=1)
    stack.x.clear_requests()
    for account in accounts:
        stack.x.add_post(account, f"Offer from {account}")
    await user.wait_for(2 + 30, timeout=30)
    await stack.bot.stop()
    for account in accounts[::3]:
        stack.x.add_post(account, f"Second offer from {account}")
    await stack.bot.start()
    await user.wait_for(2 + 30 + 10, timeout=30)
    await stack.quiet(*accounts)
    searches = [r for r in stack.x.requests if r.path == "/2/tweets/search/recent"]
    queries = Counter(r.params["query"] for r in searches)
    print(f"{len(searches)} searches, {len(queries)} distinct queries for 30 accounts")
    assert len(queries) == 2
    assert all(len(query) <= 512 for query in queries)
    named = sorted(h for query in queries for h in re.findall(r"from:(\w+)", query))
    assert named == sorted(accounts)
    # Both queries are sent each poll (1 s): as many of one as of the other, give or take one.
    counts = list(queries.values())
    assert abs(counts[0] - counts[1]) <= 1
    assert stack.x.posts_returned == 40  # each post once, across the restart
    assert len(user.received()) == 2 + 40
