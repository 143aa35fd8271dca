"""A club's calm feed, with the bot's clock in the test's hands: a burst of offers merged
within Telegram's group limit, and the weekly digest pinned."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from bot.sandbox.telegram_api import SentMessage
from tests.e2e.harness import eventually, x_reads
from tests.e2e.live import PARIS, Live, live_bot, recent_paris

GROUP = -1001000000100
ADMIN = 901


async def _ask(live: Live, text: str) -> SentMessage:
    before = len(live.tg.messages_for(GROUP))
    live.tg.send_message(GROUP, text, user_id=ADMIN, chat_type="supergroup", chat_title="Club")
    await eventually(lambda: len(live.tg.messages_for(GROUP)) > before, 15, f"reply to {text}")
    return live.tg.messages_for(GROUP)[before]


async def _club(live: Live, *, bot_status: str = "member") -> None:
    live.tg.add_chat(GROUP, "supergroup", title="Club")
    live.tg.set_member_status(GROUP, ADMIN, "administrator")
    live.tg.set_bot_status(GROUP, bot_status)
    live.x.add_user("acme_jobs")
    assert "Now following" in (await _ask(live, "/follow @acme_jobs")).plain_text
    await x_reads(live.x, "acme_jobs", count=1)  # the first poll: what comes next is new


async def test_a_hundred_offers_reach_a_group_complete_within_its_limit(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        await _club(live)
        replies = len(live.tg.messages_for(GROUP))
        for n in range(100):
            live.x.add_post("acme_jobs", f"Offer #{n:03d}: we're hiring a web developer in Lyon")
        seen: list[str] = []

        def complete() -> bool:
            seen[:] = re.findall(
                r"Offer #(\d{3})",
                " ".join(m.plain_text for m in live.tg.messages_for(GROUP)[replies:]),
            )
            return len(seen) >= 100

        await live.quiet("acme_jobs")  # all read, the first round sent
        for _ in range(60):  # a round a minute on the bot's clock
            if complete():
                break
            live.advance(timedelta(seconds=61))
            await live.db.idle(now=live.clock.now, paced=False)  # the round is sent
        await live.quiet("acme_jobs")
        complete()
        assert sorted(seen) == [f"{n:03d}" for n in range(100)]  # each once, none lost
        pushed = live.tg.messages_for(GROUP)[replies:]
        print(
            f"100 offers reached the group in {len(pushed)} messages; at most "
            f"{live.tg.max_sends_in_window(GROUP, 60)} in any 60 s; "
            f"{live.tg.flood_errors[GROUP]} answered 429"
        )
        assert len(pushed) <= 20, len(pushed)  # merged, not a hundred messages
        assert live.tg.max_sends_in_window(GROUP, 60) <= 20
        assert live.tg.flood_errors[GROUP] == 0
        assert all(len(m.plain_text) <= 4096 for m in pushed)


def _last_monday(at: time) -> datetime:
    today = datetime.now(PARIS).date()
    days_ago = today.weekday() or 7  # a past Monday, within the week X keeps
    return recent_paris(at, days_ago=days_ago)


async def test_a_weekly_digest_is_sent_on_its_day_and_pinned(database_url: str) -> None:
    async with live_bot(database_url, _last_monday(time(8, 0))) as live:
        await _club(live, bot_status="administrator")
        reply = (await _ask(live, "/digest weekly mon 09:00")).plain_text
        assert "one digest every Monday at 09:00" in reply and "pin" in reply
        before = len(live.tg.messages_for(GROUP))
        for n in range(3):
            live.x.add_post("acme_jobs", f"Weekly offer {n}: hiring a designer in Paris, CDI")
        await live.quiet("acme_jobs")
        assert len(live.tg.messages_for(GROUP)) == before  # held for the digest
        live.advance_to(_last_monday(time(9, 0)))

        def digests() -> list[SentMessage]:
            return [
                m
                for m in live.tg.messages_for(GROUP)[before:]
                if m.plain_text.startswith("Your digest")
            ]

        # Monday 09:00 is also the week's summary: the two may come in either order.
        await eventually(lambda: len(digests()) > 0, 15, "the digest")
        digest = digests()[0]
        assert digest.plain_text.startswith("Your digest: 3 offers")
        await eventually(lambda: GROUP in live.tg.pinned, 10, "the pin")
        assert live.tg.pinned[GROUP] == digest.message_id
        assert live.tg.pin_notifications[GROUP] is False  # pinned silently


async def test_new_groups_start_in_the_operator_s_default_mode(database_url: str) -> None:
    async with live_bot(
        database_url, recent_paris(time(10, 0)), default_group_mode="digest"
    ) as live:
        await _club(live)
        settings = (await _ask(live, "/settings")).plain_text
        assert "Mode: one digest a day" in settings
        assert "Daily limit: 10 messages of offers" in settings  # a club's limit counts messages
        before = len(live.tg.messages_for(GROUP))
        live.x.add_post("acme_jobs", "Offer: hiring a data analyst in Lille, CDI")
        await live.quiet("acme_jobs")
        assert len(live.tg.messages_for(GROUP)) == before  # held for the daily digest
        user = live.user()
        assert "Mode: instant" in await user.ask("/settings")  # people are not clubs


async def test_a_rejected_merged_message_is_sent_offer_by_offer(database_url: str) -> None:
    """Telegram refusing a merged message loses nothing: each offer then goes alone."""
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        await _club(live)
        replies = len(live.tg.messages_for(GROUP))
        live.tg.fail_next(1, status=400, description="Bad Request: can't parse entities")
        for n in range(3):
            live.x.add_post("acme_jobs", f"Offer #{n:03d}: hiring a nurse in Lille")
        await eventually(
            lambda: len(live.tg.messages_for(GROUP)) >= replies + 3, 15, "three messages"
        )
        await live.quiet("acme_jobs")
        pushed = [m.plain_text for m in live.tg.messages_for(GROUP)[replies:]]
        assert len(pushed) == 3
        assert [re.findall(r"Offer #(\d{3})", text) for text in pushed] == [
            ["000"],
            ["001"],
            ["002"],
        ]
