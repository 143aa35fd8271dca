"""A handle is not an account: the bot follows X accounts by id, whatever handle they go by
(the real bot with a clock the test moves, against the stand-ins, on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import time, timedelta

from tests.e2e.live import live_bot, recent_paris


async def test_a_handle_not_seen_for_a_day_is_looked_up_again_before_a_follow(
    database_url: str,
) -> None:
    """@alice (followed by one chat, silent) renames herself and a new account takes the
    handle without posting: nothing in the searches tells. A day later, a /follow @alice
    looks the handle up again instead of trusting the stored one, and follows the new
    account; the first chat keeps following alice, under her new handle."""
    async with live_bot(database_url, recent_paris(time(10, 0), days_ago=3)) as live:
        live.x.add_user("alice", name="Alice Recruiting")
        first = live.user()
        assert "Now following @alice" in await first.ask("/follow @alice")
        await live.quiet("alice")
        live.x.rename_user("alice", "alice_old")
        live.x.add_user("Alice", name="Someone else")
        live.advance(timedelta(days=1, hours=1))
        lookups = live.x.request_count("/2/users/by/username")
        second = live.user()
        assert "Now following @Alice" in await second.ask("/follow @alice")
        assert live.x.request_count("/2/users/by/username") == lookups + 1
        live.x.add_post("alice_old", "Offer: data analyst, Paris")
        live.x.add_post("Alice", "Offer: UX designer, Nantes")
        assert "data analyst" in (await first.wait_for(2, timeout=20))[1]
        assert "UX designer" in (await second.wait_for(2, timeout=20))[1]
        await live.quiet("alice_old", "Alice")
        assert len(first.received()) == len(second.received()) == 2
        assert "@alice_old" in await first.ask("/list")


async def test_follows_of_a_quiet_handle_look_it_up_once_a_day_within_the_sender_s_lookups(
    database_url: str,
) -> None:
    """A stranger who sends /follow, /unfollow, /follow of a quiet handle again and again made
    the bot look it up at each /follow, outside any quota: the bot's X budget was theirs to
    burn. A lookup that finds the account confirms the handle for a day, and such lookups
    count against the sender's daily lookups (past them, the stored source stands)."""
    async with live_bot(
        database_url, recent_paris(time(10, 0), days_ago=3), x_lookups_per_user_per_day=2
    ) as live:
        for handle in ("alice", "bob", "carol"):
            live.x.add_user(handle, name=handle.title())
        first = live.user()
        assert "Now following" in await first.ask("/follow @alice @bob @carol")
        await live.quiet("alice")
        live.advance(timedelta(days=1, hours=1))
        lookups = live.x.request_count("/2/users/by/username")
        stranger = live.user()
        for _ in range(3):
            assert "Now following @alice" in await stranger.ask("/follow @alice")
            assert "alice" in await stranger.ask("/unfollow @alice")
        assert live.x.request_count("/2/users/by/username") == lookups + 1
        # One lookup of the stranger's two is left: @bob is looked up, @carol stands as stored.
        assert "Now following" in await stranger.ask("/follow @bob @carol")
        assert live.x.request_count("/2/users/by/username") == lookups + 2
        assert "@carol" in await stranger.ask("/list")
