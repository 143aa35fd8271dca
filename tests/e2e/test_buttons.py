"""Buttons pressed under messages Telegram no longer shows the bot (too old, deleted): the press
is acted on, answered, and its outcome arrives in a new message; a press Telegram delivers twice
is acted on once. SQLite and PostgreSQL."""

from __future__ import annotations

from bot.sandbox.telegram_api import SentMessage
from tests.e2e.harness import Stack, User, eventually
from tests.e2e.test_clubs import ADMIN, MEMBER, club


def _button(message: SentMessage, data_prefix: str) -> str:
    """The callback data of the first button of `message` whose data starts with the prefix."""
    assert message.reply_markup is not None
    return next(
        str(button["callback_data"])
        for row in message.reply_markup["inline_keyboard"]
        for button in row
        if button["callback_data"].startswith(data_prefix)
    )


def _labels(message: SentMessage) -> list[str]:
    assert message.reply_markup is not None
    return [button["text"] for row in message.reply_markup["inline_keyboard"] for button in row]


async def _press(
    stack: Stack, user: User, message: SentMessage, data: str, *, deleted: bool = False
) -> SentMessage:
    """Press a button under `message`, which Telegram no longer shows the bot (an
    InaccessibleMessage) or, `deleted`, which was deleted since (an edit is answered 400);
    the next message the bot sends to the chat, once the press was answered."""
    before = len(user.received())
    query = stack.tg.press_button(
        user.chat_id,
        message.message_id,
        data,
        user_id=user.user_id,
        language_code=user.language,
        inaccessible=not deleted,
    )
    if deleted:
        stack.tg.remove_message(user.chat_id, message.message_id)
    await eventually(lambda: query["id"] in stack.tg.callback_answers, 15, "the press answered")
    await eventually(lambda: len(user.received()) > before, 15, "a message after the press")
    answer = user.received()[before]
    assert answer.method == "sendMessage", answer
    return answer


async def test_forget_pressed_on_a_keyboard_too_old_to_edit_confirms_in_a_new_message(
    stack: Stack,
) -> None:
    """`/forget`'s button deleted the chat, then failed to edit the question (an
    InaccessibleMessage cannot be edited): the person never learnt it was done."""
    await stack.bot.start()
    user = stack.user()
    assert "Now following the category Software" in await user.ask("/follow software")
    await user.ask("/forget")
    question = user.received()[-1]
    done = await _press(stack, user, question, _button(question, "fg:yes:"))
    assert "Done: nothing about this chat is stored any more" in done.plain_text
    assert "You follow nothing yet" in await user.ask("/list")
    # Cancelling under a question that was deleted since says so in a new message too.
    await user.ask("/forget")
    question = user.received()[-1]
    cancelled = await _press(stack, user, question, _button(question, "fg:no:"), deleted=True)
    assert "Cancelled: nothing was deleted." in cancelled.plain_text


async def test_settings_pressed_on_a_keyboard_too_old_to_edit_come_as_a_new_message(
    stack: Stack,
) -> None:
    await stack.bot.start()
    user = stack.user("fr")
    await user.ask("/settings")
    panel = user.received()[-1]
    fresh = await _press(stack, user, panel, "st:limit:+")
    assert any("15" in label for label in _labels(fresh)), _labels(fresh)
    answers = list(stack.tg.callback_answers.values())
    assert answers[-1]["text"] == "Enregistré"
    assert "15" in await user.ask("/limit")
    # The new panel's own buttons work in place, as usual.
    before = len(user.received())
    stack.tg.press_button(
        user.chat_id, fresh.message_id, "st:limit:+", user_id=user.user_id, language_code="fr"
    )
    await eventually(lambda: len(user.received()) > before, 15, "the panel edited")
    assert user.received()[-1].method == "editMessageText"
    assert "20" in await user.ask("/limit")


async def test_a_category_pressed_under_a_deleted_or_old_keyboard_comes_as_a_new_keyboard(
    stack: Stack,
) -> None:
    await stack.bot.start()
    user = stack.user()
    await user.ask("/categories")
    keyboard = user.received()[-1]
    fresh = await _press(stack, user, keyboard, _button(keyboard, "ct:design"), deleted=True)
    assert "✅ Design" in _labels(fresh)
    fresher = await _press(stack, user, fresh, _button(fresh, "ct:design"))
    assert not any("✅" in label for label in _labels(fresher))
    assert "You follow nothing yet" in await user.ask("/list")


async def test_a_topic_s_old_category_keyboard_still_acts_on_that_topic(stack: Stack) -> None:
    """An InaccessibleMessage no longer says which forum topic it was in: the keyboard's
    buttons say it themselves."""
    await stack.bot.start()
    forum = club(stack, -1001000000009, forum=True)
    stack.tg.add_topic(forum.chat_id, 77, "Offres dev")
    shown = await forum.ask(ADMIN, "/categories", message_thread_id=77)
    before = len(forum.received())
    query = stack.tg.press_button(
        forum.chat_id,
        shown.message_id,
        _button(shown, "ct:software"),
        user_id=ADMIN,
        inaccessible=True,
    )
    await eventually(lambda: query["id"] in stack.tg.callback_answers, 15, "the press answered")
    await eventually(lambda: len(forum.received()) > before, 15, "a new keyboard")
    fresh = forum.received()[before]
    assert fresh.method == "sendMessage" and fresh.message_thread_id == 77
    listing = (await forum.ask(MEMBER, "/list")).plain_text
    assert "Software — 💬 Offres dev" in listing, listing


async def _answer(user: User, text: str) -> SentMessage:
    """Send `text`; the bot's next new message (edits of earlier ones are skipped)."""
    before = len(user.received())
    user.say(text)

    def answered() -> list[SentMessage]:
        return [m for m in user.received()[before:] if m.method == "sendMessage"]

    await eventually(lambda: bool(answered()), 15, f"a reply to {text!r}")
    return answered()[0]


async def test_a_press_delivered_twice_is_acted_on_once(stack: Stack) -> None:
    """Telegram delivers an update again to a receiver that takes over before the previous one
    confirmed it: a /categories toggle or a /settings "+" pressed once counted twice."""
    await stack.bot.start()
    user = stack.user()
    await user.ask("/categories")
    keyboard = user.received()[-1]
    stack.tg.press_button(
        user.chat_id, keyboard.message_id, _button(keyboard, "ct:design"), user_id=user.user_id
    )
    stack.tg.repeat_last_update()
    panel = await _answer(user, "/settings")
    stack.tg.press_button(user.chat_id, panel.message_id, "st:limit:+", user_id=user.user_id)
    again = stack.tg.repeat_last_update()
    assert again["update_id"] == stack.tg.pending_updates[-2]["update_id"]
    assert "Design" in (await _answer(user, "/list")).plain_text
    assert "Daily limit: 15" in (await _answer(user, "/limit")).plain_text
    assert len(stack.tg.callback_answers) == 2  # one answer per press
