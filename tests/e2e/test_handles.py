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
