"""/why explains how a pushed post was read; an operator exports the posts marked "not for
me" (the real bot against the stand-ins, on SQLite and PostgreSQL)."""

from __future__ import annotations

import json

from tests.e2e.harness import Stack, eventually

SOFTWARE = "We're hiring a Python developer (CDI) in Lyon, hybrid. Apply: https://jobs.acme.fr/1"
DIARY = "Ran 6 interviews today for our backend role. Tired but happy, great candidates!"


async def test_why_explains_a_pushed_offer_and_refuses_anything_else(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower(language="fr")
    assert "/why" in await user.ask("/why")  # not a reply: how to use it
    stack.x.add_post("acme_jobs", SOFTWARE)
    stack.x.add_post("acme_jobs", DIARY)
    await user.wait_for(4)
    offer = next(m for m in user.received() if "Python developer" in (m.plain_text or ""))
    diary = next(m for m in user.received() if "Ran 6 interviews" in (m.plain_text or ""))
    answer = await user.ask("/why", reply_to=offer.message_id)
    assert answer.startswith("Lu comme une offre"), answer
    assert "Logiciel" in answer and "Signaux les plus forts" in answer
    answer = await user.ask("/why", reply_to=diary.message_id)
    assert answer.startswith("Pas lu comme une offre"), answer
    assert "vous suivez sa source" in answer
    first = user.received()[0]  # the bot's reply to /follow: not an offer
    assert "n’est pas une offre" in await user.ask("/why", reply_to=first.message_id)
    # Someone else's chat: the offer's message id there is another message, not the offer.
    stranger = stack.user()
    while max((m.message_id for m in stranger.received()), default=0) < offer.message_id:
        await stranger.ask("/list")
    assert "not an offer I pushed" in await stranger.ask("/why", reply_to=offer.message_id)


async def test_an_operator_exports_the_posts_marked_not_for_me_without_chat_ids(
    stack: Stack,
) -> None:
    operator = stack.user()
    stack.bot.env["ADMIN_USER_IDS"] = str(operator.user_id)
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    users = [await stack.follower(), await stack.follower()]
    assert "Nobody has marked" in await operator.ask("/admin feedback export")
    stack.x.add_post("acme_jobs", SOFTWARE)
    for user in users:
        await user.wait_for(2)
        pushed = user.received()[1]
        assert pushed.reply_markup is not None
        buttons = pushed.reply_markup["inline_keyboard"][0]
        stack.tg.press_button(  # 👎 Not for me
            user.chat_id, pushed.message_id, buttons[2]["callback_data"], user_id=user.user_id
        )
    await eventually(
        lambda: sum(m.method == "editMessageReplyMarkup" for m in stack.tg.sent) == 2,
        15,
        "both presses",
    )
    before = len(operator.received())
    operator.say("/admin feedback export")
    await operator.wait_for(before + 1)
    document = operator.received()[before]
    assert document.file_name == "jobrelay-not-for-me.jsonl"
    assert document.file_bytes is not None
    exported = document.file_bytes.decode()
    rows = [json.loads(line) for line in exported.splitlines()]
    assert rows == [
        {
            "text": SOFTWARE,
            "source_kind": "x",
            "marked_not_for_me": 2,
            "read_as_offer": True,
            "categories": rows[0]["categories"],
        }
    ]
    assert "software" in rows[0]["categories"]
    assert not any(str(u.chat_id) in exported for u in users)
    stranger = stack.user()
    assert "feedback" not in await stranger.ask("/admin feedback export")  # not an operator


async def test_the_feedback_export_is_never_sent_into_a_group(stack: Stack) -> None:
    """An operator's /admin feedback export in a group put every chat's "not for me" posts
    before the group's members: it is sent only in a private chat."""
    operator = stack.user()
    stack.bot.env["ADMIN_USER_IDS"] = str(operator.user_id)
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower()
    stack.x.add_post("acme_jobs", SOFTWARE)
    await user.wait_for(2)
    pushed = user.received()[1]
    assert pushed.reply_markup is not None
    buttons = pushed.reply_markup["inline_keyboard"][0]
    stack.tg.press_button(
        user.chat_id, pushed.message_id, buttons[2]["callback_data"], user_id=user.user_id
    )
    await eventually(
        lambda: any(m.method == "editMessageReplyMarkup" for m in stack.tg.sent), 15, "the press"
    )
    group = -1001000000078
    stack.tg.add_chat(group, "supergroup", title="Club")
    stack.tg.set_member_status(group, operator.user_id, "administrator")
    stack.tg.send_message(
        group, "/admin feedback export", user_id=operator.user_id, chat_type="supergroup"
    )
    await eventually(lambda: len(stack.tg.messages_for(group)) >= 1, 15, "the group's answer")
    sent = stack.tg.messages_for(group)
    assert all(m.file_bytes is None for m in sent), "the export went to the group"
    assert "private chat" in (sent[0].plain_text or "")
