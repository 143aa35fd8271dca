"""Healthy use end to end: limits, digests, quiet hours, pauses, settings, stats and /forget,
with the bot's clock moved by the test (days, midnights and quiet windows without sleeping)."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime, time, timedelta

from PIL import Image
from sqlalchemy import select, text

from storage.db import create_engine
from storage.models import Chat
from tests.e2e.harness import eventually, eventually_async, x_reads
from tests.e2e.live import PARIS, Live, LiveUser, live_bot, recent_paris


async def _follower(live: Live, language: str = "en") -> LiveUser:
    with contextlib.suppress(ValueError):  # already on the X stand-in
        live.x.add_user("acme_jobs")
    user = live.user(language)
    await user.ask("/follow @acme_jobs")
    await x_reads(live.x, "acme_jobs", count=1)  # the first poll sets the cursor
    return user


def _offers(user: LiveUser) -> list[str]:
    return [t for t in user.texts() if t.startswith("@acme_jobs")]


def _digests(user: LiveUser) -> list[str]:
    return [t for t in user.texts() if t.startswith(("Your digest", "Votre récapitulatif"))]


async def test_a_limit_of_two_with_five_offers_gives_two_pushes_and_a_digest_of_three(
    database_url: str,
) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        assert "At most 2 instant offers a day" in await user.ask("/limit 2")
        for i in range(5):
            live.x.add_post("acme_jobs", f"Offer {i}")
        await eventually(lambda: len(_offers(user)) == 2, 15, "two pushes")
        await live.quiet("acme_jobs")
        assert [o.split("\n\n")[1] for o in _offers(user)] == ["Offer 0", "Offer 1"]
        assert "Today: 2 sent, 3 held" in await user.ask("/limit")
        live.advance_to(recent_paris(time(19, 0)))  # the digest time
        await eventually(lambda: len(_digests(user)) == 1, 15, "the digest")
        digest = _digests(user)[0]
        assert digest.startswith("Your digest: 3 offers")
        assert [
            line.split(" View on X")[0] for line in digest.splitlines() if line.startswith("•")
        ] == ["• Offer 2", "• Offer 3", "• Offer 4"]
        assert "@acme_jobs" in digest
        await live.ticks()
        assert len(_digests(user)) == 1 and len(_offers(user)) == 2  # nothing twice
        assert "Nothing pending" in await user.ask("/digest")


async def test_digest_now_sends_every_held_offer_once(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        await user.ask("/limit 0")
        live.x.add_post("acme_jobs", "Held offer A")
        live.x.add_post("acme_jobs", "Held offer B")
        await live.quiet("acme_jobs")
        assert _offers(user) == []
        assert "Here comes your digest" in await user.ask("/digest")
        await eventually(lambda: len(_digests(user)) == 1, 15, "the digest")
        assert "Held offer A" in _digests(user)[0] and "Held offer B" in _digests(user)[0]
        assert "Nothing pending" in await user.ask("/digest")


async def test_a_digest_part_telegram_rejects_is_sent_offer_by_offer(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        await user.ask("/limit 0")
        for name in ("A", "Faulty", "C"):
            live.x.add_post("acme_jobs", f"Held offer {name}")
        await live.quiet("acme_jobs")
        live.tg.reject_texts_containing("Held offer Faulty")
        assert "Here comes your digest" in await user.ask("/digest")
        await eventually(
            lambda: all(any(f"Held offer {n}" in t for t in user.texts()) for n in "AC"),
            20,
            "the offers sent one by one",
        )
        await live.ticks()
        texts = user.texts()
        assert sum("Held offer A" in t for t in texts) == 1
        assert sum("Held offer C" in t for t in texts) == 1
        assert not any("Held offer Faulty" in t for t in texts)  # only the faulty one is lost
        assert "Nothing pending" in await user.ask("/digest")  # and nothing is retried


async def test_quiet_hours_across_midnight_give_one_catch_up_digest(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(21, 50), days_ago=3)) as live:
        user = await _follower(live)
        assert "Quiet hours 22:00–07:00" in await user.ask("/quiet 22:00-07:00")
        live.advance_to(recent_paris(time(23, 30), days_ago=3))
        live.x.add_post("acme_jobs", "Late offer")
        await live.quiet("acme_jobs")
        live.advance_to(recent_paris(time(3, 0), days_ago=2))
        live.x.add_post("acme_jobs", "Night offer")
        await live.quiet("acme_jobs")
        assert _offers(user) == [] and _digests(user) == []
        live.advance_to(recent_paris(time(7, 0), days_ago=2))
        await eventually(lambda: len(_digests(user)) == 1, 15, "the catch-up digest")
        assert "Late offer" in _digests(user)[0] and "Night offer" in _digests(user)[0]
        live.x.add_post("acme_jobs", "Morning offer")
        await eventually(lambda: len(_offers(user)) == 1, 15, "a push after the window")
        await live.ticks()
        assert len(_digests(user)) == 1


async def test_a_timed_pause_ends_with_one_catch_up_digest(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(9, 0))) as live:
        user = await _follower(live, "fr")
        assert "En pause jusqu'au" in await user.ask("/pause 12h")
        live.x.add_post("acme_jobs", "Offre pendant la pause")
        await live.quiet("acme_jobs")
        assert _offers(user) == []
        live.advance(timedelta(hours=12))
        await eventually(lambda: len(_digests(user)) == 1, 15, "the catch-up digest")
        assert _digests(user)[0].startswith("Votre récapitulatif : 1 offre")
        assert "Offre pendant la pause" in _digests(user)[0]


async def test_pause_until_resume(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(9, 0))) as live:
        user = await _follower(live)
        assert "Paused" in await user.ask("/pause")
        live.x.add_post("acme_jobs", "Offer during the pause")
        await live.quiet("acme_jobs")
        live.advance(timedelta(days=5))
        await live.ticks()
        assert _digests(user) == []  # an open-ended pause waits for /resume
        assert "Welcome back" in await user.ask("/resume")
        await eventually(lambda: len(_digests(user)) == 1, 15, "the catch-up digest")
        assert "You were not paused" in await user.ask("/resume")


async def test_digest_only_mode_sends_one_digest_at_its_time(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(8, 0))) as live:
        user = await _follower(live)
        assert "one digest a day at 18:00" in await user.ask("/digest 18:00")
        live.x.add_post("acme_jobs", "Morning offer")
        live.x.add_post("acme_jobs", "Noon offer")
        await live.quiet("acme_jobs")
        assert _offers(user) == []
        live.advance_to(recent_paris(time(17, 59)))
        await live.ticks()
        assert _digests(user) == []
        live.advance_to(recent_paris(time(18, 0)))
        await eventually(lambda: len(_digests(user)) == 1, 15, "the daily digest")
        assert "Back to instant offers" in await user.ask("/digest off")
        live.x.add_post("acme_jobs", "Evening offer")
        await eventually(lambda: len(_offers(user)) == 1, 15, "an instant push again")


async def test_the_daily_counter_resets_at_local_midnight(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(23, 50), days_ago=3)) as live:
        user = await _follower(live)
        await user.ask("/limit 1")
        live.x.add_post("acme_jobs", "Offer before midnight")
        await eventually(lambda: len(_offers(user)) == 1, 15, "the first push")
        live.x.add_post("acme_jobs", "Second offer before midnight")
        await live.quiet("acme_jobs")
        assert len(_offers(user)) == 1
        live.advance_to(recent_paris(time(0, 1), days_ago=2))
        live.x.add_post("acme_jobs", "Offer after midnight")
        await eventually(lambda: len(_offers(user)) == 2, 15, "a push on the new day")
        assert "after midnight" in _offers(user)[1]
        # Telegram has the message a moment before the database records it as sent.
        await live.db.idle(now=live.clock.now, paced=False)
        assert "Today: 1 sent, 1 held" in await user.ask("/limit")


async def test_bad_values_get_clear_replies_and_change_nothing(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        before = await user.ask("/settings")
        for command, answer in [
            ("/limit -1", "whole number from 0 to 50"),
            ("/limit abc", "whole number from 0 to 50"),
            ("/limit 51", "whole number from 0 to 50"),
            ("/digest 25:00", "Give a time as HH:MM"),
            ("/quiet 9-5", "Give the quiet hours as HH:MM-HH:MM"),
            ("/quiet 22:00-22:00", "Give the quiet hours as HH:MM-HH:MM"),
            ("/timezone Mars/Olympus", "Unknown time zone"),
            ("/pause 0d", "Give a duration"),
            ("/pause soon", "Give a duration"),
        ]:
            reply = await user.ask(command)
            assert answer in reply, command
            assert "Nothing was changed" in reply, command
        assert await user.ask("/settings") == before


async def test_timezone_is_validated_and_shown(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live, "fr")
        assert "Europe/Paris" in await user.ask("/timezone")
        assert "Fuseau horaire réglé sur Asia/Tokyo" in await user.ask("/timezone asia/tokyo")
        assert "Fuseau horaire : Asia/Tokyo" in await user.ask("/settings")


async def test_the_first_time_set_names_the_chat_s_time_zone_once(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        first = await user.ask("/quiet 22:00-07:00")
        assert "Quiet hours 22:00–07:00" in first
        assert "Times are Europe/Paris time; /timezone America/Montreal" in first
        for command in ("/pause 1h", "/digest 18:00", "/quiet 23:00-07:00"):
            assert "Times are" not in await user.ask(command), command
        french = await _follower(live, "fr")
        chosen = await french.ask("/timezone America/Montreal")  # chosen, so known
        assert "Les heures sont" not in chosen
        assert "Les heures sont" not in await french.ask("/pause 2h")


async def test_ending_a_weekly_digest_brings_back_the_daily_time(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        await user.ask("/digest 18:00")
        assert "every Monday at 09:00" in await user.ask("/digest weekly mon 09:00")
        assert "Back to instant offers" in await user.ask("/digest off")
        settings = await user.ask("/settings")
        assert "offers over the limit come in a digest at 18:00" in settings, settings
        await user.ask("/digest weekly fri 08:00")
        await user.ask("/digest weekly sat 07:00")  # one weekly after another
        await user.ask("/digest off")
        assert "in a digest at 18:00" in await user.ask("/settings")
        await user.ask("/digest 20:30")  # a new daily time replaces the old one
        await user.ask("/digest off")
        assert "in a digest at 20:30" in await user.ask("/settings")


async def test_settings_buttons_edit_the_message_in_place(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        await user.ask("/settings")
        message = user.received()[-1]
        await user.press(message, "st:limit:+")
        await eventually(
            lambda: any(m.method == "editMessageText" for m in live.tg.sent),
            15,
            "the edited settings",
        )
        edited = [m for m in live.tg.sent if m.method == "editMessageText"][-1]
        assert edited.message_id == message.message_id
        assert "Daily limit: 15 instant offers" in (edited.plain_text or edited.text)
        await user.press(message, "st:mode:digest")
        await user.press(message, "st:quiet:night")
        await user.press(message, "st:pause:1d")
        await eventually(
            lambda: (
                "Paused until"
                in ([m for m in live.tg.sent if m.method == "editMessageText"][-1].plain_text)
            ),
            15,
            "the paused view",
        )
        view = await user.ask("/settings")
        assert "one digest a day at 19:00" in view
        assert "Quiet hours: 22:00–07:00" in view
        assert "Paused until" in view


async def test_feedback_buttons_and_stats_with_a_real_png(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        assert "Nothing yet this week" in await user.ask("/stats")
        await user.ask("/limit 1")
        live.x.add_post("acme_jobs", "Pushed offer")
        live.x.add_post("acme_jobs", "Held offer")
        await eventually(lambda: len(_offers(user)) == 1, 15, "the push")
        pushed = next(m for m in user.received() if (m.plain_text or "").startswith("@acme_jobs"))
        assert pushed.reply_markup is not None
        buttons = pushed.reply_markup["inline_keyboard"][0]
        assert [b["text"] for b in buttons] == ["⭐ Save", "✅ Applied", "👎 Not for me"]
        await user.press(pushed, buttons[0]["callback_data"])
        await eventually(
            lambda: any(m.method == "editMessageReplyMarkup" for m in live.tg.sent),
            15,
            "the ticked keyboard",
        )
        await live.quiet("acme_jobs")  # the held offer is held
        before = len(user.received())
        user.live.tg.send_message(user.chat_id, "/stats", user_id=user.user_id)
        # The chart is drawn in a worker thread, with matplotlib imported on first use: on a
        # loaded 2-vCPU machine that alone can take many seconds.
        await user.wait_for(before + 2, timeout=45)
        report, photo = user.received()[before], user.received()[before + 1]
        text_report = report.plain_text or report.text
        assert "Offers pushed: 1" in text_report
        assert "Offers held for a digest: 1" in text_report
        assert "1 received → 1 saved → 0 applied → 0 interviews" in text_report
        assert "What it took: 1 pushes and 0 digests" in text_report
        assert "Top sources: @acme_jobs (1)" in text_report
        assert photo.method == "sendPhoto" and photo.file_bytes
        image = Image.open(io.BytesIO(photo.file_bytes))
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200


async def test_forget_leaves_no_row_that_names_the_chat(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        await user.ask("/limit 1")
        live.x.add_post("acme_jobs", "One")
        live.x.add_post("acme_jobs", "Two")
        await eventually(lambda: len(_offers(user)) == 1, 15, "a push")
        await live.quiet("acme_jobs")  # the second offer is held
        question = await user.ask("/forget")
        assert "Are you sure?" in question
        prompt = user.received()[-1]
        assert prompt.reply_markup is not None
        yes, no = (b["callback_data"] for b in prompt.reply_markup["inline_keyboard"][0])
        await user.press(prompt, no)
        await eventually(
            lambda: any("Cancelled: nothing was deleted" in m.text for m in live.tg.sent),
            15,
            "the cancellation",
        )
        assert await _rows_naming(live.database_url, user.chat_id) > 0
        await user.ask("/forget")
        await user.press(user.received()[-1], yes)
        await eventually(
            lambda: any(
                "nothing about this chat is stored" in (m.plain_text or m.text)
                for m in live.tg.sent
            ),
            15,
            "the confirmation",
        )
        assert await _rows_naming(live.database_url, user.chat_id) == 0


async def _rows_naming(database_url: str, chat_id: int) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            total = 0
            for table, column in [
                ("chats", "id"),
                ("subscriptions", "chat_id"),
                ("deliveries", "chat_id"),
                ("digests", "chat_id"),
            ]:
                total += (
                    await connection.execute(
                        text(f"SELECT count(*) FROM {table} WHERE {column} = :c"), {"c": chat_id}
                    )
                ).scalar_one()
            return total
    finally:
        await engine.dispose()


async def test_monday_morning_summary(database_url: str) -> None:
    monday = recent_paris(time(8, 0), days_ago=0)
    while monday.astimezone(PARIS).weekday() != 0:
        monday -= timedelta(days=1)
    async with live_bot(database_url, monday - timedelta(days=1)) as live:
        user = await _follower(live)
        live.x.add_post("acme_jobs", "Sunday offer")
        await eventually(lambda: len(_offers(user)) == 1, 15, "a push")
        pushed = user.received()[-1]
        assert pushed.reply_markup is not None
        await user.press(pushed, pushed.reply_markup["inline_keyboard"][0][0]["callback_data"])
        live.advance_to(monday + timedelta(minutes=59))
        await live.ticks()
        assert not any("Your week" in t for t in user.texts())
        live.advance_to(monday + timedelta(hours=1))  # 09:00 local
        await eventually(
            lambda: any("Your week with jobrelay" in t for t in user.texts()),
            15,
            "the weekly summary",
        )
        summary = next(t for t in user.texts() if "Your week with jobrelay" in t)
        assert "Offers received: 1 (1 right away, 0 in digests)" in summary
        assert "1 received → 1 saved → 0 applied → 0 interviews" in summary
        await live.ticks()
        assert sum("Your week" in t for t in user.texts()) == 1


async def test_a_paused_chat_gets_its_weekly_summary_only_after_the_pause(
    database_url: str,
) -> None:
    monday = recent_paris(time(8, 0), days_ago=0)
    while monday.astimezone(PARIS).weekday() != 0:
        monday -= timedelta(days=1)
    async with live_bot(database_url, monday) as live:
        user = await _follower(live)
        live.x.add_post("acme_jobs", "Monday offer")
        await eventually(lambda: len(_offers(user)) == 1, 15, "a push")
        await user.ask("/pause")
        live.advance_to(monday + timedelta(hours=1))  # 09:00: the summary is due, but paused
        await live.ticks()
        assert not any("Your week" in t for t in user.texts())
        await user.ask("/resume")
        live.advance(timedelta(minutes=6))
        await eventually(
            lambda: any("Your week with jobrelay" in t for t in user.texts()),
            15,
            "the summary after the pause",
        )


async def test_a_sixty_day_pause_ends_with_one_weekly_summary_for_the_last_week(
    database_url: str,
) -> None:
    first = recent_paris(time(8, 0), days_ago=70).astimezone(PARIS).date()
    first -= timedelta(days=first.weekday())  # a Monday

    def paris(days: int, at: time) -> datetime:  # (the pause may cross a change of hour)
        return datetime.combine(first + timedelta(days=days), at, tzinfo=PARIS).astimezone(UTC)

    async with live_bot(database_url, paris(0, time(8, 0))) as live:
        user = await _follower(live)
        live.x.add_post("acme_jobs", "Offer before the pause")
        await eventually(lambda: len(_offers(user)) == 1, 15, "a push")
        assert "Paused until" in await user.ask("/pause 60d")
        # Nine Mondays at 09:00 during the pause, each after a week with an offer (held).
        for week in range(9):
            if week:
                live.advance_to(paris(7 * week - 1, time(8, 0)))  # the Sunday before
                live.x.add_post("acme_jobs", f"Offer of week {week}")
                await live.quiet("acme_jobs")
            if week == 8:  # something the last week's summary tells apart from the others
                await user.ask("/quiet 22:00-07:00")
            live.advance_to(paris(7 * week, time(9, 0)))
            await _weekly_summary_written(live, user.chat_id, after=live.clock.now())
        assert not any("Your week" in t for t in user.texts())
        live.advance_to(paris(60, time(9, 0)))  # the pause is over
        await eventually(lambda: len(_digests(user)) == 1, 15, "the catch-up digest")
        await live.ticks()
        summaries = [t for t in user.texts() if "Your week with jobrelay" in t]
        assert len(summaries) == 1, summaries
        assert "Quiet hours kept: 22:00–07:00" in summaries[0]  # the last week's
        assert "Offers received: 0" in summaries[0]
        assert all(f"Offer of week {week}" in _digests(user)[0] for week in range(1, 9))


async def _weekly_summary_written(live: Live, chat_id: int, after: datetime) -> None:
    """Wait until the bot has marked this week's summary of the chat as written."""

    async def written() -> bool:
        async with live.db.engine.connect() as connection:
            last = await connection.scalar(select(Chat.last_weekly_at).where(Chat.id == chat_id))
        return last is not None and last.replace(tzinfo=UTC) >= after - timedelta(seconds=1)

    await eventually_async(written, 15, "the weekly summary to be written")


async def test_in_a_group_only_the_asker_can_confirm_forget(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        live.x.add_user("acme_jobs")
        group = -4242
        live.tg.add_chat(group, "group", title="Job club")
        live.tg.set_member_status(group, 1, "administrator")
        live.tg.set_member_status(group, 2, "administrator")
        live.tg.send_message(group, "/follow @acme_jobs", user_id=1, chat_type="group")
        await eventually(lambda: len(live.tg.messages_for(group)) == 1, 15, "the follow reply")
        live.tg.send_message(group, "/forget", user_id=1, chat_type="group")
        await eventually(lambda: len(live.tg.messages_for(group)) == 2, 15, "the question")
        prompt = live.tg.messages_for(group)[-1]
        assert prompt.reply_markup is not None
        yes = prompt.reply_markup["inline_keyboard"][0][0]["callback_data"]
        live.tg.press_button(group, prompt.message_id, yes, user_id=2)
        await eventually(lambda: bool(live.tg.callback_answers), 15, "the refusal")
        answer = next(iter(live.tg.callback_answers.values()))
        assert "Only the person who sent /forget" in str(answer.get("text"))
        assert await _rows_naming(live.database_url, group) > 0


async def test_in_a_group_a_member_s_feedback_press_counts_for_nothing(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        live.x.add_user("acme_jobs")
        group = -4343
        live.tg.add_chat(group, "group", title="Job club")
        live.tg.set_member_status(group, 1, "administrator")
        live.tg.set_member_status(group, 2, "member")
        live.tg.send_message(group, "/follow @acme_jobs", user_id=1, chat_type="group")
        await eventually(lambda: len(live.tg.messages_for(group)) == 1, 15, "the follow reply")
        await x_reads(live.x, "acme_jobs", count=1)
        live.x.add_post("acme_jobs", "Développeur Python, CDI à Lyon")
        await eventually(lambda: len(live.tg.messages_for(group)) == 2, 15, "the offer")
        engine = create_engine(live.database_url)
        try:
            async with engine.connect() as connection:
                delivery_id = (
                    await connection.execute(
                        text("SELECT id FROM deliveries WHERE chat_id = :c"), {"c": group}
                    )
                ).scalar_one()
            offer = live.tg.messages_for(group)[-1]
            # A forged press by a member, on the offer's message.
            live.tg.press_button(group, offer.message_id, f"fb:i:{delivery_id}", user_id=2)
            await eventually(lambda: bool(live.tg.callback_answers), 15, "the refusal")
            answer = next(iter(live.tg.callback_answers.values()))
            assert "Only this group's administrators" in str(answer.get("text"))
            async with engine.connect() as connection:
                feedback = (
                    await connection.execute(
                        text("SELECT feedback FROM deliveries WHERE id = :d"), {"d": delivery_id}
                    )
                ).scalar_one()
            assert feedback is None
        finally:
            await engine.dispose()
