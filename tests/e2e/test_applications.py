"""From offer to application, end to end (real bot, Telegram and X stand-ins, SQLite and
PostgreSQL, the bot's clock moved by the test): ⭐ ✅ 👎 under pushes and digests, /saved,
/applied, status updates, /export applications, the follow-up and the funnel; and presses
that must change nothing (forged, another chat's, a group member's, a flood)."""

from __future__ import annotations

import csv
import io
from datetime import time, timedelta
from typing import Any

from sqlalchemy import text

from bot.sandbox.telegram_api import SentMessage
from storage.db import create_engine
from tests.e2e.harness import eventually, eventually_async, x_reads
from tests.e2e.live import PARIS, Live, LiveUser, live_bot, recent_paris
from tests.e2e.test_healthy import _follower, _offers


def _keyboard(live: Live, chat_id: int, message_id: int) -> list[dict[str, Any]]:
    """The buttons of a message as the chat sees it now (after the bot's edits)."""
    message = live.tg.get_message(chat_id, message_id) or {}
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [button for row in rows for button in row]


def _labels(live: Live, chat_id: int, message_id: int) -> list[str]:
    return [b["text"] for b in _keyboard(live, chat_id, message_id)]


def _data(live: Live, chat_id: int, message_id: int, prefix: str) -> list[str]:
    return [
        b["callback_data"]
        for b in _keyboard(live, chat_id, message_id)
        if b["callback_data"].startswith(prefix)
    ]


async def _press(
    live: Live, chat_id: int, message_id: int, data: str, *, user_id: int, language: str = "en"
) -> str:
    """Press a button; the toast it was answered with."""
    query = live.tg.press_button(chat_id, message_id, data, user_id=user_id, language_code=language)
    await eventually(lambda: query["id"] in live.tg.callback_answers, 15, f"the answer to {data}")
    return str(live.tg.callback_answers[query["id"]].get("text") or "")


async def _pushes(live: Live, user: LiveUser, posts: list[str]) -> list[SentMessage]:
    """Post offers on @acme_jobs; the pushes that brought them, in order."""
    for post in posts:
        live.x.add_post("acme_jobs", post)
    await eventually(lambda: len(_offers(user)) >= len(posts), 20, "the pushes")
    return [m for m in user.received() if (m.plain_text or "").startswith("@acme_jobs")]


async def _reply(live: Live, user: LiveUser, command: str) -> SentMessage:
    """The bot's reply to a command (a new message or a document; the edits of earlier
    presses that may land meanwhile are skipped)."""
    before = len(user.received())
    live.tg.send_message(user.chat_id, command, user_id=user.user_id, language_code=user.language)

    def replies() -> list[SentMessage]:
        return [m for m in user.received()[before:] if not m.method.startswith("edit")]

    await eventually(lambda: bool(replies()), 15, f"a reply to {command!r}")
    return replies()[0]


async def _sql(live: Live, statement: str, **params: object) -> list[Any]:
    engine = create_engine(live.database_url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_save_applied_and_not_for_me_under_a_push_are_shown_in_place_and_undone(
    database_url: str,
) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        (push,) = await _pushes(live, user, ["Python developer, remote"])
        chat, mid, uid = user.chat_id, push.message_id, user.user_id
        assert _labels(live, chat, mid) == ["⭐ Save", "✅ Applied", "👎 Not for me"]
        save, applied, not_for_me = _data(live, chat, mid, "fb:")
        assert await _press(live, chat, mid, save, user_id=uid) == "Saved: /saved lists it."
        await eventually(lambda: "✔ ⭐ Saved" in _labels(live, chat, mid), 15, "⭐ ticked")
        assert "Python developer, remote" in (await _reply(live, user, "/saved")).plain_text
        assert await _press(live, chat, mid, save, user_id=uid) == "No longer saved."
        await eventually(lambda: "⭐ Save" in _labels(live, chat, mid), 15, "⭐ unticked")
        assert "Nothing saved yet" in (await _reply(live, user, "/saved")).plain_text
        # ✅ on an offer never saved saves it as applied; ⭐ then keeps the application.
        toast = await _press(live, chat, mid, applied, user_id=uid)
        assert toast == "Marked as applied: /applied lists it."
        await eventually(lambda: "✔ ✅ Applied" in _labels(live, chat, mid), 15, "✅ ticked")
        assert "press ✅ Applied first" in await _press(live, chat, mid, save, user_id=uid)
        assert "press ✅ Applied first" in await _press(live, chat, mid, not_for_me, user_id=uid)
        listing = (await _reply(live, user, "/applied")).plain_text
        assert "Python developer, remote" in listing and "applied 20" in listing
        assert "(still saved)" in await _press(live, chat, mid, applied, user_id=uid)
        assert "Python developer, remote" in (await _reply(live, user, "/saved")).plain_text
        # 👎 drops the save; pressed again it is undone.
        assert await _press(live, chat, mid, not_for_me, user_id=uid) == "Noted: not for you."
        await eventually(
            lambda: _labels(live, chat, mid) == ["⭐ Save", "✅ Applied", "✔ 👎 Not for me"],
            15,
            "👎 ticked",
        )
        assert "Nothing saved yet" in (await _reply(live, user, "/saved")).plain_text
        assert await _press(live, chat, mid, not_for_me, user_id=uid) == "“Not for me” undone."
        # A push sent before this change carries 👍 Interested ("fb:i:"): it saves.
        legacy = save.replace("fb:s:", "fb:i:")
        assert await _press(live, chat, mid, legacy, user_id=uid) == "Saved: /saved lists it."
        # In French too.
        assert (
            await _press(live, chat, mid, save, user_id=uid, language="fr")
            == "N'est plus enregistrée."
        )


async def test_saved_and_applied_pages_statuses_and_the_csv_show_exactly_those_offers(
    database_url: str,
) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        await user.ask("/limit 20")
        posts = [f"Offer number {i}" for i in range(7)]
        posts.append('=HYPERLINK("https://evil.example", "click") Data analyst')
        pushes = await _pushes(live, user, posts)
        chat, uid = user.chat_id, user.user_id
        for push in pushes:
            (save,) = _data(live, chat, push.message_id, "fb:s:")
            await _press(live, chat, push.message_id, save, user_id=uid)
            live.advance(timedelta(minutes=1))  # newest first needs distinct times
        # 8 saved: two pages, the newest first.
        first = await _reply(live, user, "/saved")
        assert "Your saved offers (8)" in first.plain_text
        assert "1. @acme_jobs · today" in first.plain_text
        assert first.plain_text.index("Data analyst") < first.plain_text.index("Offer number 6")
        assert "Offer number 2" not in first.plain_text
        assert "1/2" in _labels(live, chat, first.message_id)
        (forward,) = _data(live, chat, first.message_id, "tk:p:s:1")
        await _press(live, chat, first.message_id, forward, user_id=uid)
        await eventually(
            lambda: "Offer number 0" in str(live.tg.get_message(chat, first.message_id)),
            15,
            "page 2",
        )
        # Forged pages: past the end shows the last one; a huge number is only answered.
        for forged in ("tk:p:s:9999", "tk:p:s:" + "9" * 30, "tk:p:x:1", "tk:x:1:z:0"):
            await _press(live, chat, first.message_id, forged, user_id=uid)
        assert "Offer number 0" in str(live.tg.get_message(chat, first.message_id))
        # ✅ 1 in /saved (the newest: the analyst offer) makes it an application.
        fresh = await _reply(live, user, "/saved")
        applied_data = _data(live, chat, fresh.message_id, "tk:x:")[0]
        assert applied_data.split(":")[3] == "a"
        assert await _press(live, chat, fresh.message_id, applied_data, user_id=uid) == "Saved"
        await eventually(
            lambda: "Your saved offers (7)" in str(live.tg.get_message(chat, fresh.message_id)),
            15,
            "/saved edited",
        )
        live.advance(timedelta(minutes=1))
        (second,) = _data(live, chat, pushes[3].message_id, "fb:a:")
        await _press(live, chat, pushes[3].message_id, second, user_id=uid)
        applications = await _reply(live, user, "/applied")
        assert "Your applications (2)" in applications.plain_text
        assert applications.plain_text.index("Offer number 3") < applications.plain_text.index(
            "Data analyst"
        )
        # 🗣 for the second application (the analyst one): an interview.
        buttons = _data(live, chat, applications.message_id, "tk:x:")
        interview = [d for d in buttons if d.split(":")[3] == "i"][1]
        await _press(live, chat, applications.message_id, interview, user_id=uid)
        await eventually(
            lambda: "🗣 interview" in str(live.tg.get_message(chat, applications.message_id)),
            15,
            "the status shown",
        )
        # ✅ under the push no longer undoes an application that went further.
        (analyst,) = _data(live, chat, pushes[-1].message_id, "fb:a:")
        toast = await _press(live, chat, pushes[-1].message_id, analyst, user_id=uid)
        assert toast == "Its status (interview, offer, answer) is changed from /applied."
        document = await _reply(live, user, "/export applications")
        assert document.method == "sendDocument" and document.file_bytes is not None
        assert document.file_name == "jobrelay-applications.csv"
        assert document.file_bytes.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(document.file_bytes.decode("utf-8-sig"))))
        assert rows[0] == ["date applied", "source", "text excerpt", "link", "status"]
        assert [(r[1], r[4]) for r in rows[1:]] == [
            ("acme_jobs", "applied"),
            ("acme_jobs", "interview"),
        ]
        assert rows[1][2] == "Offer number 3"
        # The formula a post began with stays text in a spreadsheet.
        assert rows[2][2].startswith("'=HYPERLINK(")
        assert all(r[0].startswith("20") and r[3].startswith("https://") for r in rows[1:])
        assert "2 applications" in (document.caption or "")


async def test_presses_on_another_chat_s_offer_or_list_change_nothing(
    database_url: str,
) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        alice = await _follower(live)
        bob = live.user()
        await bob.ask("/follow @acme_jobs")
        (push,) = await _pushes(live, alice, ["Python developer, remote"])
        await eventually(lambda: len(_offers(bob)) == 1, 15, "bob's push")
        (alice_save,) = _data(live, alice.chat_id, push.message_id, "fb:s:")
        await _press(live, alice.chat_id, push.message_id, alice_save, user_id=alice.user_id)
        alice_list = await _reply(live, alice, "/saved")
        alice_app = _data(live, alice.chat_id, alice_list.message_id, "tk:x:")[0]
        # Bob forges Alice's delivery and application ids under his own messages.
        bob_push = next(m for m in bob.received() if m.plain_text.startswith("@acme_jobs"))
        forged = alice_save.replace("fb:s:", "fb:a:")
        toast = await _press(live, bob.chat_id, bob_push.message_id, forged, user_id=bob.user_id)
        assert toast == "This offer is no longer stored."
        toast = await _press(live, bob.chat_id, bob_push.message_id, alice_app, user_id=bob.user_id)
        assert toast == "This offer is no longer stored."
        for data in ("fb:s:" + "9" * 11, "fb:s:²", "fb:a:-1", "fb:d:3000000000", "fb:x:1"):
            assert (
                await _press(live, bob.chat_id, bob_push.message_id, data, user_id=bob.user_id)
                == ""
            )
        rows = await _sql(live, "SELECT chat_id, status FROM applications")
        assert [(r[0], r[1]) for r in rows] == [(alice.chat_id, "saved")]
        assert "Nothing saved yet" in (await _reply(live, bob, "/saved")).plain_text


async def test_in_a_group_only_administrators_save_and_the_club_sees_its_own_list(
    database_url: str,
) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        live.x.add_user("acme_jobs")
        group = -4545
        live.tg.add_chat(group, "group", title="Job club")
        live.tg.set_member_status(group, 1, "administrator")
        live.tg.set_member_status(group, 2, "member")
        live.tg.send_message(group, "/follow @acme_jobs", user_id=1, chat_type="group")
        await eventually(lambda: len(live.tg.messages_for(group)) == 1, 15, "the follow reply")
        await x_reads(live.x, "acme_jobs", count=1)
        live.x.add_post("acme_jobs", "Développeur Python, CDI à Lyon")
        await eventually(lambda: len(live.tg.messages_for(group)) == 2, 15, "the offer")
        offer = live.tg.messages_for(group)[-1]
        (save,) = _data(live, group, offer.message_id, "fb:s:")
        toast = await _press(live, group, offer.message_id, save, user_id=2)
        assert "Only this group's administrators" in toast
        assert await _sql(live, "SELECT id FROM applications") == []
        assert await _press(live, group, offer.message_id, save, user_id=1) == (
            "Saved: /saved lists it."
        )
        live.tg.send_message(group, "/saved", user_id=2, chat_type="group")  # anyone may look

        def lists() -> list[SentMessage]:
            return [
                m
                for m in live.tg.messages_for(group)
                if m.method == "sendMessage" and "Your saved offers" in m.plain_text
            ]

        await eventually(lambda: bool(lists()), 15, "/saved")
        listing = lists()[0]
        assert "Développeur Python" in listing.plain_text
        remove = next(
            d for d in _data(live, group, listing.message_id, "tk:x:") if d.endswith(":r:0")
        )
        toast = await _press(live, group, listing.message_id, remove, user_id=2)
        assert "Only this group's administrators" in toast
        assert len(await _sql(live, "SELECT id FROM applications")) == 1


async def test_a_flood_of_presses_is_throttled_and_counted_once(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0)), commands_per_minute=5) as live:
        user = await _follower(live)
        (push,) = await _pushes(live, user, ["Python developer, remote"])
        (save,) = _data(live, user.chat_id, push.message_id, "fb:s:")
        queries = [
            live.tg.press_button(user.chat_id, push.message_id, save, user_id=user.user_id)
            for _ in range(12)
        ]
        await eventually(
            lambda: any(
                "Slow down" in str(live.tg.callback_answers.get(q["id"], {}).get("text"))
                for q in queries
            ),
            15,
            "the slow-down answer",
        )
        await live.ticks(2)
        # The presses served toggled the save (the /follow and /limit counted too); never a
        # second row for one offer.
        rows = await _sql(live, "SELECT count(*) FROM applications")
        assert rows[0][0] in (0, 1)


async def test_a_chat_keeps_a_bounded_number_of_offers_and_is_told_so(database_url: str) -> None:
    """Each saved offer outlives retention: a script saving every offer it is sent would pin
    the offers table without end. Past MAX_TRACKED, ⭐ and ✅ refuse (and save nothing)."""
    from bot.tracker import MAX_TRACKED

    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        (push,) = await _pushes(live, user, ["Python developer, remote"])
        (source_id,) = (await _sql(live, "SELECT id FROM sources"))[0]
        engine = create_engine(live.database_url)
        try:
            async with engine.begin() as connection:
                now = live.clock.now()
                await connection.execute(
                    text(
                        "INSERT INTO offers (source_id, external_id, author, text, url, "
                        "created_at) VALUES (:s, :e, 'acme_jobs', 'Kept', :u, :c)"
                    ),
                    [
                        {"s": source_id, "e": f"kept{i}", "u": f"https://x.com/k/{i}", "c": now}
                        for i in range(MAX_TRACKED)
                    ],
                )
                await connection.execute(
                    text(
                        "INSERT INTO applications (chat_id, offer_id, status, saved_at, "
                        "status_at) SELECT :chat, id, 'saved', :now, :now "
                        "FROM offers WHERE external_id LIKE 'kept%'"
                    ),
                    {"chat": user.chat_id, "now": now},
                )
        finally:
            await engine.dispose()
        for prefix in ("fb:s:", "fb:a:"):
            (data,) = _data(live, user.chat_id, push.message_id, prefix)
            toast = await _press(live, user.chat_id, push.message_id, data, user_id=user.user_id)
            assert f"You keep {MAX_TRACKED} offers already" in toast
        rows = await _sql(live, "SELECT count(*) FROM applications")
        assert rows[0][0] == MAX_TRACKED
        # Removing one from /saved makes room again.
        await _sql(
            live,
            "DELETE FROM applications WHERE offer_id IN (SELECT id FROM offers "
            "WHERE external_id = 'kept0')",
        )
        (save,) = _data(live, user.chat_id, push.message_id, "fb:s:")
        toast = await _press(live, user.chat_id, push.message_id, save, user_id=user.user_id)
        assert toast.startswith("Saved")


def _digest_messages(user: LiveUser) -> list[SentMessage]:
    return [m for m in user.received() if m.plain_text.startswith("Your digest")]


async def test_a_digest_has_a_star_per_offer_that_saves_it(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        await user.ask("/limit 1")
        await _pushes(live, user, ["Pushed offer"])
        live.x.add_post("acme_jobs", "Held Python offer, remote")
        live.x.add_post("acme_jobs", "Held sales offer")
        await live.quiet("acme_jobs")
        live.advance_to(recent_paris(time(19, 0)))
        await eventually(lambda: bool(_digest_messages(user)), 15, "the digest")
        digest = _digest_messages(user)[0]
        chat, mid = user.chat_id, digest.message_id
        assert _labels(live, chat, mid) == ["⭐ Held Python offer, remote", "⭐ Held sales offer"]
        python, _ = _data(live, chat, mid, "fb:d:")
        assert len(python.encode()) <= 64
        toast = await _press(live, chat, mid, python, user_id=user.user_id)
        assert toast == "Saved: /saved lists it."
        await eventually(
            lambda: (
                _labels(live, chat, mid)
                == ["✔ ⭐ Held Python offer, remote", "⭐ Held sales offer"]
            ),
            15,
            "the ⭐ ticked",
        )
        listing = (await _reply(live, user, "/saved")).plain_text
        assert "Held Python offer" in listing and "sales" not in listing
        await _press(live, chat, mid, python, user_id=user.user_id)  # again: undone
        await eventually(
            lambda: _labels(live, chat, mid)[0] == "⭐ Held Python offer, remote", 15, "unticked"
        )


async def test_a_saved_offer_not_applied_to_is_followed_up_once_in_a_digest_never_in_quiet_hours(
    database_url: str,
) -> None:
    day0 = recent_paris(time(10, 0), days_ago=6)
    async with live_bot(database_url, day0) as live:
        user = await _follower(live)
        await user.ask("/limit 1")
        assert "18:30–20:00" in await user.ask("/quiet 18:30-20:00")  # the 19:00 digest waits
        (push,) = await _pushes(live, user, ["Remote Python developer"])
        (save,) = _data(live, user.chat_id, push.message_id, "fb:s:")
        await _press(live, user.chat_id, push.message_id, save, user_id=user.user_id)

        async def a_day_with_a_digest(day: int) -> str:
            """A pushed and a held offer on day `day`; the digest that comes after quiet
            hours end (none during them)."""
            live.advance_to(day0 + timedelta(days=day))
            before = len(_digest_messages(user))
            live.x.add_post("acme_jobs", f"Day {day} first")
            live.x.add_post("acme_jobs", f"Day {day} second")
            await live.quiet("acme_jobs")
            live.advance_to(day0 + timedelta(days=day, hours=9))  # 19:00, quiet
            await live.ticks()
            assert len(_digest_messages(user)) == before
            live.advance_to(day0 + timedelta(days=day, hours=10))  # 20:00
            await eventually(lambda: len(_digest_messages(user)) > before, 15, "the digest")
            return _digest_messages(user)[before].plain_text

        first = await a_day_with_a_digest(1)  # saved a day ago: not yet
        assert "⏰" not in first
        reminded = await a_day_with_a_digest(3)
        assert "⏰ Saved a few days ago, not applied yet:" in reminded
        assert "Remote Python developer" in reminded
        assert "/saved lists them" in reminded
        later = await a_day_with_a_digest(4)  # once only
        assert "⏰" not in later
        assert sum("⏰" in t for t in user.texts()) == 1
        # Still saved, and the follow-up came in no message of its own.
        assert all(
            t.startswith(("@acme_jobs", "Your digest")) for t in user.texts()[3:] if "⏰" in t
        )


async def test_an_export_of_thousands_of_applications_is_bounded_and_says_so(
    database_url: str,
) -> None:
    from bot.tracker import EXPORT_EVERY, MAX_EXPORT_ROWS

    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        # An export with nothing to send does not count against the once a minute.
        empty = await _reply(live, user, "/export applications")
        assert "No applications to export yet" in empty.plain_text
        (push,) = await _pushes(live, user, ["Python developer, remote"])
        (applied,) = _data(live, user.chat_id, push.message_id, "fb:a:")
        await _press(live, user.chat_id, push.message_id, applied, user_id=user.user_id)
        # MAX_EXPORT_ROWS more applications, written straight into the database.
        (source_id,) = (await _sql(live, "SELECT id FROM sources"))[0]
        engine = create_engine(live.database_url)
        try:
            async with engine.begin() as connection:
                now = live.clock.now()
                await connection.execute(
                    text(
                        "INSERT INTO offers (source_id, external_id, author, text, url, "
                        "created_at) VALUES (:s, :e, 'acme_jobs', :t, :u, :c)"
                    ),
                    [
                        {
                            "s": source_id,
                            "e": f"bulk{i}",
                            "t": f"+cmd|calc {i}",
                            "u": f"https://x.com/b/{i}",
                            "c": now,
                        }
                        for i in range(MAX_EXPORT_ROWS)
                    ],
                )
                await connection.execute(
                    text(
                        "INSERT INTO applications (chat_id, offer_id, status, saved_at, "
                        "applied_at, status_at) SELECT :chat, id, 'applied', :old, :old, :old "
                        "FROM offers WHERE external_id LIKE 'bulk%'"
                    ),
                    {"chat": user.chat_id, "old": now - timedelta(days=30)},
                )
        finally:
            await engine.dispose()
        document = await _reply(live, user, "/export applications")
        assert document.file_bytes is not None
        rows = list(csv.reader(io.StringIO(document.file_bytes.decode("utf-8-sig"))))
        assert len(rows) == 1 + MAX_EXPORT_ROWS
        assert rows[1][2] == "Python developer, remote"  # the newest first
        assert rows[2][2].startswith("'+cmd|calc")  # a formula stays text
        assert f"Only the newest {MAX_EXPORT_ROWS} of {MAX_EXPORT_ROWS + 1}" in (
            document.caption or ""
        )
        # Each export reads thousands of offers and uploads megabytes: once a minute a chat.
        for _ in range(3):
            again = await _reply(live, user, "/export applications")
            assert again.file_bytes is None
            assert "You exported your applications a moment ago" in (again.plain_text or "")
        live.clock.advance(EXPORT_EVERY)
        later = await _reply(live, user, "/export applications")
        assert later.file_bytes is not None


async def test_the_monday_summary_carries_the_follow_up_and_the_funnel(database_url: str) -> None:
    monday = recent_paris(time(8, 0), days_ago=0)
    while monday.astimezone(PARIS).weekday() != 0:
        monday -= timedelta(days=1)
    async with live_bot(database_url, monday - timedelta(days=4)) as live:  # Thursday 08:00
        user = await _follower(live)
        saved, applied = await _pushes(live, user, ["Remote Python developer", "Data engineer"])
        for push, prefix in ((saved, "fb:s:"), (applied, "fb:a:")):
            (data,) = _data(live, user.chat_id, push.message_id, prefix)
            await _press(live, user.chat_id, push.message_id, data, user_id=user.user_id)
        live.advance_to(monday + timedelta(hours=1))  # 09:00 local
        await eventually(
            lambda: any("Your week with jobrelay" in t for t in user.texts()), 15, "the summary"
        )
        summary = next(t for t in user.texts() if "Your week with jobrelay" in t)
        assert "2 received → 2 saved → 1 applied → 0 interviews" in summary
        assert "What it took: 2 pushes and 0 digests" in summary
        assert "⏰ Saved a few days ago, not applied yet:" in summary
        assert "Remote Python developer" in summary.split("⏰")[1]
        assert "Data engineer" not in summary.split("⏰")[1]  # applied: no follow-up
        stats = (await _reply(live, user, "/stats")).plain_text
        assert "2 received → 2 saved → 1 applied → 0 interviews" in stats


async def test_a_follow_up_in_a_summary_replaced_during_a_long_pause_is_not_lost(
    database_url: str,
) -> None:
    """A summary held by a pause is replaced by the next week's: the follow-up it carried (marked
    as mentioned when it was written) must move to the new one, not vanish with it."""
    monday = recent_paris(time(8, 0), days_ago=0)
    while monday.astimezone(PARIS).weekday() != 0:
        monday -= timedelta(days=1)
    monday -= timedelta(days=7)
    async with live_bot(database_url, monday - timedelta(days=4)) as live:  # Thursday 08:00
        user = await _follower(live)
        (push,) = await _pushes(live, user, ["Remote Python developer"])
        (save,) = _data(live, user.chat_id, push.message_id, "fb:s:")
        await _press(live, user.chat_id, push.message_id, save, user_id=user.user_id)
        await _reply(live, user, "/pause")

        async def last_weekly() -> object:
            rows = await _sql(
                live, "SELECT last_weekly_at FROM chats WHERE id = :c", c=user.chat_id
            )
            return rows[0][0]

        async def written_after(before: object) -> None:
            async def changed() -> bool:
                return await last_weekly() not in (None, before)

            await eventually_async(changed, 15, "a weekly summary written")

        live.advance_to(monday + timedelta(hours=1))  # Monday 09:00: held by the pause
        await written_after(None)
        first = await last_weekly()
        # An offer during the pause (held): the chat is still active, so a summary is due.
        live.advance_to(monday + timedelta(days=2))
        live.x.add_post("acme_jobs", "Data engineer, Airflow")

        async def held() -> bool:
            rows = await _sql(live, "SELECT count(*) FROM deliveries WHERE offer_id IS NOT NULL")
            return int(rows[0][0]) == 2

        await eventually_async(held, 20, "the offer held by the pause")
        live.advance_to(monday + timedelta(days=7, hours=1))  # next Monday: replaces it
        await written_after(first)
        assert not any("Your week with jobrelay" in t for t in user.texts())  # still paused
        await _reply(live, user, "/resume")
        live.advance(timedelta(minutes=10))  # past the summary's next try (put off by the pause)
        await eventually(
            lambda: any("Your week with jobrelay" in t for t in user.texts()), 15, "the summary"
        )
        summaries = [t for t in user.texts() if "Your week with jobrelay" in t]
        assert len(summaries) == 1
        assert "⏰ Saved a few days ago, not applied yet:" in summaries[0]
        assert "Remote Python developer" in summaries[0].split("⏰")[1]


PYTHON = [
    "Remote Python developer at Acme: Django, FastAPI, PostgreSQL",
    "Remote Python developer for the Globex data team (pandas, Airflow)",
    "Remote Python developer, anywhere in Europe, Initech",
    "Remote senior Python developer, Django REST, Hooli",
    "Remote Python developer to build a scraping platform at Stark",
]
OTHER = [
    "Account executive for our Lyon office, B2B sales of industrial pumps",
    "Commercial sédentaire H/F à Nantes, CDI, vente de mobilier de bureau",
    "Java Spring developer on site in Lille, banking project",
    "Payroll officer in Bordeaux, on site, SAP experience wanted",
    "Store manager for our Marseille shop, retail experience",
]


async def test_ranking_gives_the_day_s_pushes_to_what_the_chat_saves_and_the_rest_to_the_digest(
    database_url: str,
) -> None:
    # Day 1 is a Monday: its weekly summary is sent first, and takes none of the day's pushes.
    monday = recent_paris(time(10, 0), days_ago=2)
    while monday.astimezone(PARIS).weekday() != 0:
        monday -= timedelta(days=1)
    day0 = monday - timedelta(days=1)
    async with live_bot(database_url, day0) as live:
        user = await _follower(live)
        await user.ask("/limit 20")
        # Cold start: today's order. The person saves the three Python offers.
        first = [PYTHON[0], OTHER[0], PYTHON[1], OTHER[1], PYTHON[2]]
        pushes = await _pushes(live, user, first)
        assert [p.plain_text.split("\n\n")[1] for p in pushes] == first
        for push in pushes:
            if "Python" in push.plain_text:
                (save,) = _data(live, user.chat_id, push.message_id, "fb:s:")
                await _press(live, user.chat_id, push.message_id, save, user_id=user.user_id)
        # The next day, two pushes at most: an offer of each kind comes, twice over.
        live.advance_to(day0 + timedelta(days=1))
        await user.ask("/limit 2")
        before = len(_offers(user))
        for post in (OTHER[2], OTHER[3], PYTHON[3], PYTHON[4]):
            live.x.add_post("acme_jobs", post)
        await eventually(lambda: len(_offers(user)) >= before + 2, 15, "two pushes")
        await live.quiet("acme_jobs")
        pushed = [t.split("\n\n")[1] for t in _offers(user)[before:]]
        assert sorted(pushed) == sorted([PYTHON[3], PYTHON[4]])
        # The others wait for the digest; nothing lost, nothing twice.
        assert "Today: 2 sent, 2 held" in await user.ask("/limit")
        live.advance_to(day0 + timedelta(days=1, hours=9))  # 19:00
        await eventually(lambda: bool(_digest_messages(user)), 15, "the digest")
        digest = _digest_messages(user)[0].plain_text
        assert OTHER[2] in digest and OTHER[3] in digest
        rows = await _sql(
            live,
            "SELECT count(*), count(DISTINCT offer_id) FROM deliveries WHERE kind = 'offer'",
        )
        assert rows[0][0] == rows[0][1] == 9
        # Ranking off (/settings): the arrival order again.
        panel = await _reply(live, user, "/settings")
        assert "✅ Best first (learned from ⭐)" in _labels(live, user.chat_id, panel.message_id)
        await _press(live, user.chat_id, panel.message_id, "st:rank:off", user_id=user.user_id)
        await eventually(
            lambda: "✅ In arrival order" in _labels(live, user.chat_id, panel.message_id),
            15,
            "ranking off",
        )
        live.advance_to(day0 + timedelta(days=2))
        before = len(_offers(user))
        live.x.add_post("acme_jobs", OTHER[4])
        await live.quiet("acme_jobs")
        live.x.add_post("acme_jobs", "Remote Python developer for a climate startup, Django")
        await live.quiet("acme_jobs")
        assert [t.split("\n\n")[1] for t in _offers(user)[before:]] == [
            OTHER[4],
            "Remote Python developer for a climate startup, Django",
        ]


async def test_three_not_for_me_on_one_source_offer_a_one_tap_mute(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        pushes = await _pushes(live, user, OTHER[:3])
        for push in pushes:
            (no,) = _data(live, user.chat_id, push.message_id, "fb:n:")
            await _press(live, user.chat_id, push.message_id, no, user_id=user.user_id)
        await eventually(
            lambda: any("Stop following it?" in t for t in user.texts()), 15, "the mute offer"
        )
        offer = next(m for m in user.received() if "Stop following it?" in m.plain_text)
        assert "You marked 3 offers of @acme_jobs as not for you" in offer.plain_text
        (mute,) = _data(live, user.chat_id, offer.message_id, "mu:")
        assert _labels(live, user.chat_id, offer.message_id) == ["🔇 Stop following @acme_jobs"]
        await _press(live, user.chat_id, offer.message_id, mute, user_id=user.user_id)
        assert "You follow nothing yet" in (await _reply(live, user, "/list")).plain_text
        assert sum("Stop following it?" in t for t in user.texts()) == 1


async def test_undoing_and_redoing_the_third_not_for_me_offers_the_mute_once(
    database_url: str,
) -> None:
    """The mute offer is a message of its own: a loop of 👎 presses on the third offer must not
    make the bot send one each time."""
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        pushes = await _pushes(live, user, OTHER[:3])
        for push in pushes:
            (no,) = _data(live, user.chat_id, push.message_id, "fb:n:")
            await _press(live, user.chat_id, push.message_id, no, user_id=user.user_id)
        await eventually(
            lambda: any("Stop following it?" in t for t in user.texts()), 15, "the mute offer"
        )
        last = pushes[-1]
        (no,) = _data(live, user.chat_id, last.message_id, "fb:n:")
        for _ in range(4):  # undone, redone: the third 👎 again and again
            await _press(live, user.chat_id, last.message_id, no, user_id=user.user_id)
        # Updates are handled in order: once /list is answered, every press above was.
        await _reply(live, user, "/list")
        assert sum("Stop following it?" in t for t in user.texts()) == 1
