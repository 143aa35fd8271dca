"""Tests of the Telegram Bot API stand-in, driven by the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberRestricted,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from bot.sandbox.telegram_api import (
    DEFAULT_GROUP_USER_ID,
    GROUP_ANONYMOUS_BOT_ID,
    GROUP_SENDS_PER_MINUTE,
    MAX_DOWNLOAD_BYTES,
    SentMessage,
    TelegramHTMLError,
    TelegramStandIn,
    parse_telegram_html,
    parse_telegram_html_with_entities,
    utf16_length,
)

TOKEN = "123456:TEST-TOKEN"


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without it PTB 22 emits a deprecation warning whenever it builds a RetryAfter.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def standin() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn(TOKEN) as server:
        yield server


@pytest.fixture
async def bot(standin: TelegramStandIn) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=standin.base_url, base_file_url=standin.base_file_url) as b:
        yield b


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    standin: TelegramStandIn,
    method: str,
    *,
    token: str = TOKEN,
    **params: Any,
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{standin.base_url}{token}/{method}", json=params) as response:
        return response.status, await response.json()


# ------------------------------------------------------------------ basics


async def test_get_me_through_ptb(bot: Bot, standin: TelegramStandIn) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == "jobrelay_bot"
    assert me.can_join_groups is True
    assert standin.stats["getMe"] >= 1
    assert standin.base_url == f"http://127.0.0.1:{standin.port}/bot"
    assert standin.base_file_url == f"http://127.0.0.1:{standin.port}/file/bot"


async def test_wrong_token_is_invalid_token(standin: TelegramStandIn) -> None:
    wrong = Bot("999:WRONG", base_url=standin.base_url)
    with pytest.raises(InvalidToken):
        await wrong.initialize()
    await wrong.shutdown()
    assert standin.stats["getMe:401"] == 1


async def test_raw_401_404_and_get_requests(
    standin: TelegramStandIn, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, standin, "getMe", token="1:nope")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body = await call(http, standin, "noSuchMethod")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    async with http.get(f"{standin.base_url}{TOKEN}/getme") as response:  # case-insensitive
        assert response.status == 200
        assert (await response.json())["result"]["username"] == "jobrelay_bot"
    standin.add_chat(42)
    url = f"{standin.base_url}{TOKEN}/sendMessage"
    async with http.get(url, params={"chat_id": "42", "text": "via GET"}) as response:
        assert response.status == 200
    status, body = await call(http, standin, "sendMessage", chat_id=42, text="via JSON")
    assert status == 200
    assert body["ok"] is True
    assert body["result"]["text"] == "via JSON"
    assert [m.text for m in standin.messages_for(42)] == ["via GET", "via JSON"]


async def test_misc_methods(bot: Bot, standin: TelegramStandIn) -> None:
    assert await bot.delete_webhook() is True
    info = await bot.get_webhook_info()
    assert info.url == ""
    assert info.pending_update_count == 0
    standin.send_message(42, "hi")
    message = await bot.send_message(42, "hello")
    assert await bot.send_chat_action(42, "typing") is True
    assert await bot.pin_chat_message(42, message.message_id) is True
    assert await bot.delete_message(42, message.message_id) is True
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(42, message.message_id)
    assert standin.pinned == {42: message.message_id}
    assert standin.deleted == [(42, message.message_id)]
    assert standin.chat_actions == [(42, "typing")]


# ------------------------------------------------------------------ an Application end to end


async def test_application_command_button_and_edit(standin: TelegramStandIn) -> None:
    received: list[list[str]] = []

    async def on_follow(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        received.append(list(context.args or []))
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Undo", callback_data="undo:x")]])
        await update.effective_message.reply_html("Following <b>@x</b>", reply_markup=keyboard)

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Done")
        await query.edit_message_text(f"Undone ({query.data})")

    application = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(standin.base_url)
        .base_file_url(standin.base_file_url)
        .build()
    )
    application.add_handler(CommandHandler("follow", on_follow))
    application.add_handler(CallbackQueryHandler(on_button))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=5)

        user_message = standin.send_message(42, "/follow @x", username="alice")
        assert user_message["entities"] == [{"type": "bot_command", "offset": 0, "length": 7}]
        [reply] = await standin.wait_for_messages(42, 1)
        assert reply.text == "Following <b>@x</b>"
        assert reply.plain_text == "Following @x"
        assert reply.parse_mode == "HTML"
        assert reply.message_id == user_message["message_id"] + 1
        assert reply.reply_markup is not None

        standin.send_message(-1001, "/follow@jobrelay_bot @y", user_id=7, chat_type="supergroup")
        await standin.wait_for_messages(-1001, 1)

        standin.press_button(42, reply.message_id, "undo:x")
        messages = await standin.wait_for_messages(42, 2)

        await application.updater.stop()
        await application.stop()

    assert received == [["@x"], ["@y"]]
    assert messages[1].method == "editMessageText"
    assert messages[1].text == "Undone (undo:x)"
    assert [a["text"] for a in standin.callback_answers.values()] == ["Done"]
    edited = standin.get_message(42, reply.message_id)
    assert edited is not None
    assert edited["text"] == "Undone (undo:x)"
    assert "reply_markup" not in edited  # editing without a keyboard removes it
    assert not standin.pending_updates  # PTB confirmed everything on shutdown


# ------------------------------------------------------------------ sendMessage & HTML


async def test_send_message_with_valid_html_is_recorded(bot: Bot, standin: TelegramStandIn) -> None:
    standin.send_message(42, "/start")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Open", url="https://x.com/a")]])
    text = '<b>Job</b> &amp; <a href="https://x.com/a?b=1&c=2">link</a> 😀 <i>x</i>'
    message = await bot.send_message(
        42,
        text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )
    assert message.text == "Job & link 😀 x"
    assert message.message_id == 2
    assert [(e.type, e.offset, e.length) for e in message.entities] == [
        ("bold", 0, 3),
        ("text_link", 6, 4),
        ("italic", 14, 1),
    ]
    assert message.entities[1].url == "https://x.com/a?b=1&c=2"
    [sent] = standin.sent
    assert sent.chat_id == 42
    assert sent.method == "sendMessage"
    assert sent.text == text
    assert sent.parse_mode == "HTML"
    assert sent.disable_web_page_preview is True
    assert sent.reply_markup == markup.to_dict()
    assert sent.message_thread_id is None
    assert abs(sent.date - time.time()) < 5
    assert standin.stats["sendMessage"] == 1


@pytest.mark.parametrize(
    "text",
    [
        "<foo>x</foo>",
        "<b>bold",
        "text</b>",
        "<b><i>x</b></i>",
        "a &nbsp; b",
        "1 < 2",
        "AT&T",
        '<span class="x">y</span>',
        "<a>no href</a>",
        "<br/>",
    ],
)
async def test_invalid_html_is_bad_request(bot: Bot, standin: TelegramStandIn, text: str) -> None:
    standin.add_chat(42)
    with pytest.raises(BadRequest) as info:
        await bot.send_message(42, text, parse_mode=ParseMode.HTML)
    assert "can't parse entities" in info.value.message.lower()
    assert standin.sent == []
    assert standin.stats["sendMessage:400"] == 1


async def test_plain_text_is_not_parsed(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(42)
    message = await bot.send_message(42, "1 < 2 & <foo>")
    assert message.text == "1 < 2 & <foo>"


async def test_message_length_limits(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(42)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(42, "a" * 4097)
    await bot.send_message(42, "a" * 4096)
    await bot.send_message(42, "&amp;" * 4096, parse_mode=ParseMode.HTML)  # decodes to 4096
    await bot.send_message(42, "<b>" + "a" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(42, "😀" * 2049)  # 4098 UTF-16 code units
    await bot.send_message(42, "😀" * 2048)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(42, "<b> </b>", parse_mode=ParseMode.HTML)
    assert len(standin.sent) == 4


async def test_unknown_chat_and_bad_markup(bot: Bot, standin: TelegramStandIn) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(777, "hello")
    standin.add_chat(777)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(777, "hello", reply_markup=too_long)
    with pytest.raises(BadRequest, match=r"(?i)unsupported parse_mode"):
        await bot.send_message(777, "hello", parse_mode="XML")
    assert standin.stats["sendMessage:400"] == 3


async def test_edit_message_text_checks(bot: Bot, standin: TelegramStandIn) -> None:
    user_message = standin.send_message(42, "hi")
    message = await bot.send_message(42, "<b>v1</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("<b>v1</b>", 42, message.message_id, parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.edit_message_text("<b>v2", 42, message.message_id, parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
        await bot.edit_message_text("x", 42, user_message["message_id"])
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", 42, 999)
    edited = await bot.edit_message_text("<i>v2</i>", 42, message.message_id, parse_mode="HTML")
    assert isinstance(edited, type(message))
    assert edited.text == "v2"
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="b")]])
    await bot.edit_message_reply_markup(42, message.message_id, reply_markup=markup)
    assert [m.method for m in standin.messages_for(42)] == [
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
    ]


# ------------------------------------------------------------------ faults


async def test_blocked_chat_is_forbidden(bot: Bot, standin: TelegramStandIn) -> None:
    standin.send_message(42, "hi")
    standin.add_chat(-100500, "supergroup", title="Jobs")
    standin.block(42)
    standin.block(-100500)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(42, "hello")
    with pytest.raises(Forbidden, match=r"(?i)bot was kicked from the supergroup chat"):
        await bot.send_message(-100500, "hello")
    assert standin.stats["sendMessage:403"] == 2
    standin.unblock(42)
    await bot.send_message(42, "hello again")
    assert [m.text for m in standin.sent] == ["hello again"]


async def test_migrated_group_raises_chat_migrated(bot: Bot, standin: TelegramStandIn) -> None:
    standin.send_message(-42, "hi", user_id=7, chat_type="group", chat_title="Old group")
    standin.migrate(-42, -100042)
    with pytest.raises(ChatMigrated) as info:
        await bot.send_message(-42, "hello")
    assert info.value.new_chat_id == -100042
    await bot.send_message(-100042, "hello")
    chat = await bot.get_chat(-100042)
    assert chat.type == "supergroup"
    assert chat.title == "Old group"


async def test_global_flood_limit(bot: Bot, standin: TelegramStandIn) -> None:
    for chat_id in range(1, 32):
        standin.add_chat(chat_id)
    errors: list[RetryAfter] = []
    for chat_id in range(1, 32):
        try:
            await bot.send_message(chat_id, "job")
        except RetryAfter as exc:
            errors.append(exc)
    assert errors
    assert standin.stats["sendMessage:429"] == len(errors)
    assert standin.stats["sendMessage"] == 31 - len(errors) <= 30
    assert all(e.retry_after.total_seconds() >= 1 for e in errors)  # type: ignore[union-attr]


async def test_group_flood_limit_per_minute(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(-1001, "supergroup")
    for i in range(20):
        await bot.send_message(-1001, f"job {i}")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(-1001, "job 21")
    assert 50 <= info.value.retry_after.total_seconds() <= 60  # type: ignore[union-attr]
    standin.add_chat(5)
    await bot.send_message(5, "private chats are not limited per minute")
    standin.flood_limits = False
    await bot.send_message(-1001, "limits off")


async def test_flood_error_wire_format(
    standin: TelegramStandIn, http: aiohttp.ClientSession
) -> None:
    standin.add_chat(-1001, "supergroup")
    for _ in range(20):
        assert (await call(http, standin, "sendMessage", chat_id=-1001, text="x"))[0] == 200
    status, body = await call(http, standin, "sendMessage", chat_id=-1001, text="x")
    retry = body["parameters"]["retry_after"]
    assert status == 429
    assert body == {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {retry}",
        "parameters": {"retry_after": retry},
    }


async def test_fail_next_then_success(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(42)
    standin.fail_next(1, 502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(42, "first try")
    await bot.send_message(42, "second try")
    assert [m.text for m in standin.sent] == ["second try"]
    assert standin.stats["sendMessage:502"] == 1


async def test_delay_simulates_a_hang(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(42)
    standin.set_delay(0.4)
    with pytest.raises(TimedOut):
        await bot.send_message(42, "slow", read_timeout=0.1)
    # Like the real API, the message is still delivered although the client gave up.
    await standin.wait_for_messages(42, 1, timeout=2)
    standin.set_delay(0)
    await bot.send_message(42, "fast")


async def test_lowering_the_delay_ends_the_hang_of_waiting_calls(
    bot: Bot, standin: TelegramStandIn
) -> None:
    standin.add_chat(42)
    standin.set_delay(30)
    started = time.monotonic()
    send = asyncio.create_task(bot.send_message(42, "held", read_timeout=10))
    await asyncio.sleep(0.3)
    assert not send.done() and standin.sent == []
    standin.set_delay(0)
    await asyncio.wait_for(send, 3)
    assert time.monotonic() - started < 3
    assert [m.text for m in standin.sent] == ["held"]
    assert standin.abandoned == {}


async def test_a_call_abandoned_during_a_hang_is_kept_or_dropped(
    bot: Bot, standin: TelegramStandIn
) -> None:
    standin.add_chat(42)
    standin.set_delay(30)  # kept by default, as Telegram does with a request it received
    with pytest.raises(TimedOut):
        await bot.send_message(42, "kept", read_timeout=0.2)
    standin.set_delay(30, keep_abandoned=False)
    with pytest.raises(TimedOut):
        await bot.send_message(42, "dropped", read_timeout=0.2)
    await asyncio.sleep(0.1)  # both clients have hung up by now
    standin.set_delay(0)
    await standin.wait_until(lambda: sum(standin.abandoned.values()) == 2, timeout=3)
    assert standin.abandoned == {"kept": 1, "dropped": 1}
    assert [m.text for m in standin.sent] == ["kept"]
    await bot.send_message(42, "after the hang")
    assert [m.text for m in standin.sent] == ["kept", "after the hang"]


async def test_a_chat_action_hangs_like_a_send_and_is_counted_apart(
    bot: Bot, standin: TelegramStandIn
) -> None:
    standin.add_chat(42)
    standin.set_delay(30)
    with pytest.raises(TimedOut):
        await bot.send_chat_action(42, "typing", read_timeout=0.2)
    await asyncio.sleep(0.1)
    standin.set_delay(0)
    await standin.wait_until(lambda: bool(standin.abandoned), timeout=3)
    assert standin.abandoned == {"kept action": 1}
    assert standin.chat_actions == [(42, "typing")] and standin.sent == []


async def test_an_outage_fails_every_method_until_it_ends(
    bot: Bot, standin: TelegramStandIn
) -> None:
    standin.add_chat(42)
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    standin.set_outage(502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await asyncio.wait_for(poll, 2)  # a waiting long poll fails too
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.get_updates()
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(42, "lost")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.get_me()
    standin.send_message(42, "/start")  # users still write meanwhile
    assert standin.stats["getUpdates:502"] == 2
    assert standin.stats["sendMessage:502"] == 1
    standin.set_outage(None)
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.text == "/start"
    await bot.send_message(42, "after the outage")
    assert [m.text for m in standin.sent] == ["after the outage"]


async def test_wait_for_messages_timeout_is_helpful(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(42)
    standin.add_chat(43)
    await bot.send_message(43, "elsewhere")
    with pytest.raises(BadRequest):
        await bot.send_message(42, "<b>", parse_mode="HTML")
    with pytest.raises(TimeoutError) as info:
        await standin.wait_for_messages(42, 1, timeout=0.1)
    text = str(info.value)
    assert "chat 42" in text
    assert "got 0" in text
    assert "43: 1" in text
    assert "can't parse entities" in text
    with pytest.raises(TimeoutError, match="not met"):
        await standin.wait_until(lambda: False, timeout=0.05)
    await standin.wait_until(lambda: standin.stats["sendMessage"] == 1, timeout=0.05)


# ------------------------------------------------------------------ chats, members, commands


async def test_chat_member_roster(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(-100777, "supergroup", title="Recruiters", username="recruiters")
    standin.set_member_status(-100777, 1, "creator")
    standin.set_member_status(-100777, 2, "administrator")
    standin.set_member_status(-100777, 3, "member")
    standin.set_member_status(-100777, 4, "restricted")
    standin.set_member_status(-100777, 5, "kicked")
    expected = {
        1: ChatMemberOwner,
        2: ChatMemberAdministrator,
        3: ChatMemberMember,
        4: ChatMemberRestricted,
        5: ChatMemberBanned,
        6: ChatMemberLeft,  # never seen: left
    }
    for user_id, cls in expected.items():
        member = await bot.get_chat_member(-100777, user_id)
        assert type(member) is cls
        assert member.user.id == user_id
    assert isinstance(await bot.get_chat_member(-100777, bot.id), ChatMemberMember)
    admins = await bot.get_chat_administrators("@recruiters")
    assert [(type(a), a.user.id) for a in admins] == [
        (ChatMemberOwner, 1),
        (ChatMemberAdministrator, 2),
    ]
    chat = await bot.get_chat(-100777)
    assert (chat.title, chat.type, chat.username) == ("Recruiters", "supergroup", "recruiters")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.get_chat_member(-1009999, 1)
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.get_chat(31337)


async def test_set_my_commands_per_language(bot: Bot, standin: TelegramStandIn) -> None:
    await bot.set_my_commands([BotCommand("follow", "Follow a recruiter")])
    await bot.set_my_commands(
        [BotCommand("follow", "Suivre un recruteur"), BotCommand("list", "Liste")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="fr",
    )
    assert standin.commands[("default", "")] == [
        {"command": "follow", "description": "Follow a recruiter"}
    ]
    assert [c["command"] for c in standin.commands[("all_private_chats", "fr")]] == [
        "follow",
        "list",
    ]
    commands = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="fr")
    assert [c.description for c in commands] == ["Suivre un recruteur", "Liste"]
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Follow-Me", "bad")])
    await bot.delete_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="fr")
    assert ("all_private_chats", "fr") not in standin.commands
    assert await bot.get_my_commands(language_code="de") == ()


# ------------------------------------------------------------------ the bot's own membership


async def test_set_bot_status_queues_my_chat_member(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(-5, "group", title="Small group")
    standin.send_message(-5, "hi", user_id=9, chat_type="group", first_name="Ana")
    payload = standin.set_bot_status(-5, "administrator", by_user_id=9)
    bot_user = {"id": 123456, "is_bot": True, "first_name": "JobRelay", "username": "jobrelay_bot"}
    assert payload["chat"] == {"id": -5, "type": "group", "title": "Small group"}
    assert payload["from"] == {
        "id": 9,
        "is_bot": False,
        "first_name": "Ana",
        "language_code": "en",
    }
    assert abs(payload["date"] - time.time()) < 5
    assert payload["old_chat_member"] == {"status": "member", "user": bot_user}
    assert payload["new_chat_member"]["status"] == "administrator"
    assert payload["new_chat_member"]["user"] == bot_user
    assert payload["new_chat_member"]["can_pin_messages"] is True

    standin.set_bot_status(-5, "kicked")  # by the chat's default user
    _message, promoted, kicked = await bot.get_updates()
    assert promoted.my_chat_member is not None
    assert promoted.my_chat_member.from_user.id == 9
    assert type(promoted.my_chat_member.old_chat_member) is ChatMemberMember
    assert type(promoted.my_chat_member.new_chat_member) is ChatMemberAdministrator
    assert promoted.my_chat_member.new_chat_member.user.id == bot.id
    assert kicked.my_chat_member is not None
    assert kicked.my_chat_member.from_user.id == DEFAULT_GROUP_USER_ID
    assert type(kicked.my_chat_member.old_chat_member) is ChatMemberAdministrator
    assert type(kicked.my_chat_member.new_chat_member) is ChatMemberBanned
    assert type(await bot.get_chat_member(-5, bot.id)) is ChatMemberBanned

    with pytest.raises(Forbidden, match=r"^Forbidden: bot was kicked from the group chat$"):
        await bot.send_message(-5, "still here?")
    with pytest.raises(Forbidden, match=r"bot was kicked from the group chat"):
        await bot.send_chat_action(-5, "typing")
    assert standin.stats["sendMessage:403"] == 1
    standin.set_bot_status(-5, "member")
    await bot.send_message(-5, "back")
    assert [m.text for m in standin.sent] == ["back"]


async def test_bot_that_left_a_supergroup_cannot_write(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(-100500, "supergroup", title="Jobs")
    message = await bot.send_message(-100500, "before")
    standin.set_bot_status(-100500, "left")
    assert type(await bot.get_chat_member(-100500, bot.id)) is ChatMemberLeft
    expected = r"^Forbidden: bot was kicked from the supergroup chat$"
    with pytest.raises(Forbidden, match=expected):
        await bot.send_message(-100500, "after")
    with pytest.raises(Forbidden, match=expected):
        await bot.edit_message_text("edited", -100500, message.message_id)
    with pytest.raises(Forbidden, match=expected):
        await bot.send_document(-100500, b"x", filename="x.txt")
    assert (await bot.get_chat(-100500)).title == "Jobs"  # reads still work
    [update] = await bot.get_updates()
    assert update.my_chat_member is not None
    assert update.my_chat_member.chat.type == "supergroup"


async def test_bot_status_is_validated(standin: TelegramStandIn) -> None:
    standin.add_chat(-5, "group")
    standin.add_chat(-1007, "channel")
    with pytest.raises(ValueError, match="creator"):
        standin.set_bot_status(-5, "creator")
    with pytest.raises(ValueError, match="restricted"):
        standin.set_bot_status(-1007, "restricted")
    with pytest.raises(ValueError, match="administrator"):
        standin.set_bot_status(42, "administrator")  # private chats: member or kicked
    with pytest.raises(ValueError, match="bogus"):
        standin.set_bot_status(-5, "bogus")
    assert standin.pending_updates == []


async def test_private_chat_kicked_means_blocked(bot: Bot, standin: TelegramStandIn) -> None:
    standin.send_message(42, "/start", first_name="Bob")
    payload = standin.set_bot_status(42, "kicked")
    assert payload["from"]["id"] == 42
    assert payload["chat"]["type"] == "private"
    with pytest.raises(Forbidden, match=r"^Forbidden: bot was blocked by the user$"):
        await bot.send_message(42, "hello")
    standin.set_bot_status(42, "member")
    await bot.send_message(42, "hello")
    updates = await bot.get_updates()
    assert [type(u.my_chat_member.new_chat_member) for u in updates if u.my_chat_member] == [
        ChatMemberBanned,
        ChatMemberMember,
    ]


async def test_channel_posts_need_an_admin_bot(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(-1007001, "channel", title="Jobs channel", username="jobschannel")
    # Default for channels: the bot is an administrator (bots only join channels as admins).
    member = await bot.get_chat_member(-1007001, bot.id)
    assert type(member) is ChatMemberAdministrator
    assert member.can_post_messages is True
    assert [a.user.id for a in await bot.get_chat_administrators(-1007001)] == [bot.id]
    post = await bot.send_message("@jobschannel", "job 1")
    assert post.sender_chat is not None
    assert post.sender_chat.id == -1007001

    standin.set_bot_status(-1007001, "member")
    expected = r"^Forbidden: bot is not a member of the channel chat$"
    with pytest.raises(Forbidden, match=expected):
        await bot.send_message(-1007001, "job 2")
    with pytest.raises(Forbidden, match=expected):
        await bot.edit_message_text("job 1 (edited)", -1007001, post.message_id)
    for status in ("left", "kicked"):
        standin.set_bot_status(-1007001, status)
        with pytest.raises(Forbidden, match=expected):
            await bot.send_photo(-1007001, b"\x89PNG")
    standin.set_bot_status(-1007001, "administrator")
    await bot.send_message(-1007001, "job 2")
    assert [m.text for m in standin.messages_for(-1007001)] == ["job 1", "job 2"]
    assert standin.stats["sendMessage:403"] == 1
    assert standin.stats["sendPhoto:403"] == 2


async def test_restricted_bot_cannot_send(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(-100500, "supergroup")
    message = await bot.send_message(-100500, "before")
    standin.set_bot_status(-100500, "restricted")
    member = await bot.get_chat_member(-100500, bot.id)
    assert isinstance(member, ChatMemberRestricted)
    assert member.can_send_messages is False
    with pytest.raises(BadRequest, match=r"(?i)not enough rights to send text messages"):
        await bot.send_message(-100500, "after")
    with pytest.raises(BadRequest, match=r"(?i)not enough rights to send photos to the chat"):
        await bot.send_photo(-100500, b"\x89PNG")
    await bot.edit_message_text("edited", -100500, message.message_id)  # own messages: yes


# ------------------------------------------------------------------ anonymous admins & topics


async def test_anonymous_admin_message(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(-100321, "supergroup", title="Recruiters")
    raw = standin.send_message(-100321, "/follow @x", anonymous_admin=True)
    assert raw["from"] == {
        "id": GROUP_ANONYMOUS_BOT_ID,
        "is_bot": True,
        "first_name": "Group",
        "username": "GroupAnonymousBot",
    }
    assert raw["sender_chat"] == {"id": -100321, "type": "supergroup", "title": "Recruiters"}
    [update] = await bot.get_updates()
    message = update.message
    assert message is not None
    assert message.from_user is not None
    assert message.from_user.id == 1087968824
    assert message.from_user.username == "GroupAnonymousBot"
    assert message.sender_chat is not None
    assert message.sender_chat.id == -100321
    assert update.effective_sender == message.sender_chat
    assert GROUP_ANONYMOUS_BOT_ID not in standin._members.get(-100321, {})
    with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
        await bot.edit_message_text("x", -100321, message.message_id)
    standin.add_chat(-1007, "channel")
    for chat_id in (42, -1007):
        with pytest.raises(ValueError, match="anonymous"):
            standin.send_message(chat_id, "x", anonymous_admin=True)


async def test_forum_topics(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(-100321, "supergroup", title="Forum", is_forum=True)
    standin.add_topic(-100321, 3, "Remote jobs")
    standin.add_topic(-100321, 4, "Paris")
    raw = standin.send_message(-100321, "/list", user_id=9, message_thread_id=3)
    assert raw["message_id"] == 5  # ids continue after the topics' creation messages
    assert raw["message_thread_id"] == 3
    assert raw["is_topic_message"] is True
    topic = raw["reply_to_message"]
    assert topic["message_id"] == 3
    assert topic["message_thread_id"] == 3
    assert topic["chat"] == raw["chat"]
    assert topic["forum_topic_created"] == {"name": "Remote jobs", "icon_color": 7322096}
    standin.send_message(-100321, "in general", user_id=9)

    in_topic, in_general = await bot.get_updates()
    message = in_topic.message
    assert message is not None
    assert message.is_topic_message is True
    assert message.message_thread_id == 3
    assert message.reply_to_message is not None
    assert message.reply_to_message.forum_topic_created is not None
    assert message.reply_to_message.forum_topic_created.name == "Remote jobs"
    assert message.reply_to_message.forum_topic_created.icon_color == 7322096
    assert in_general.message is not None
    assert in_general.message.message_thread_id is None
    assert not in_general.message.is_topic_message

    reply = await message.reply_text("topic reply")  # PTB keeps the thread of a topic message
    assert reply.message_thread_id == 3
    assert reply.is_topic_message is True
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.forum_topic_created is not None
    await bot.send_message(-100321, "paris", message_thread_id=4)
    await in_general.message.reply_text("general reply")
    with pytest.raises(BadRequest, match=r"^Message thread not found$"):
        await bot.send_message(-100321, "nowhere", message_thread_id=99)
    assert standin.stats["sendMessage:400"] == 1
    assert [(m.text, m.message_thread_id) for m in standin.sent] == [
        ("topic reply", 3),
        ("paris", 4),
        ("general reply", None),
    ]
    with pytest.raises(ValueError, match="add_topic"):
        standin.send_message(-100321, "x", user_id=9, message_thread_id=99)


async def test_add_topic_is_validated(
    standin: TelegramStandIn, http: aiohttp.ClientSession
) -> None:
    standin.add_chat(-100321, "supergroup", is_forum=True)
    standin.add_chat(-100322, "supergroup")
    with pytest.raises(ValueError, match="not a forum"):
        standin.add_topic(-100322, 3, "x")
    with pytest.raises(ValueError, match="not a forum"):
        standin.add_topic(-100999, 3, "x")
    with pytest.raises(ValueError, match="General"):
        standin.add_topic(-100321, 1, "x")
    standin.send_message(-100321, "first", user_id=9)  # message 1
    standin.send_message(-100321, "second", user_id=9)  # message 2
    with pytest.raises(ValueError, match="not a topic"):
        standin.add_topic(-100321, 2, "x")
    standin.add_topic(-100321, 7, "Seven")
    standin.add_topic(-100321, 7, "Seven, renamed")  # adding it again renames it
    status, body = await call(
        http, standin, "sendMessage", chat_id=-100321, text="x", message_thread_id=7
    )
    assert status == 200
    assert body["result"]["message_id"] == 8
    assert body["result"]["reply_to_message"]["forum_topic_created"]["name"] == "Seven, renamed"
    status, body = await call(
        http, standin, "sendMessage", chat_id=-100321, text="x", message_thread_id=2
    )
    assert (status, body["description"]) == (400, "Bad Request: message thread not found")


# ------------------------------------------------------------------ pinning


async def test_pinning_needs_admin_rights(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(-100500, "supergroup")
    message = await bot.send_message(-100500, "Pin me")
    rights = r"^Not enough rights to manage pinned messages in the chat$"
    with pytest.raises(BadRequest, match=rights):  # default: a plain member
        await bot.pin_chat_message(-100500, message.message_id)
    assert standin.pinned == {}

    standin.set_bot_status(-100500, "administrator")
    assert await bot.pin_chat_message(-100500, message.message_id) is True
    assert standin.pinned == {-100500: message.message_id}
    assert standin.pin_notifications == {-100500: True}
    assert await bot.pin_chat_message(-100500, message.message_id, disable_notification=True)
    assert standin.pin_notifications == {-100500: False}

    payload = standin.set_bot_can_pin(-100500, False)
    assert payload is not None
    assert payload["old_chat_member"]["can_pin_messages"] is True
    assert payload["new_chat_member"]["can_pin_messages"] is False
    assert standin.set_bot_can_pin(-100500, False) is None  # nothing changed
    member = await bot.get_chat_member(-100500, bot.id)
    assert isinstance(member, ChatMemberAdministrator)
    assert member.can_pin_messages is False
    with pytest.raises(BadRequest, match=rights):
        await bot.pin_chat_message(-100500, message.message_id)
    standin.set_bot_can_pin(-100500, True)
    await bot.pin_chat_message(-100500, message.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to pin not found"):
        await bot.pin_chat_message(-100500, 999)
    assert standin.stats["pinChatMessage:400"] == 3

    standin.add_chat(-4, "group")
    assert standin.set_bot_can_pin(-4, False) is None  # not an admin: no update
    standin.set_bot_status(-4, "administrator")
    group_message = await bot.send_message(-4, "x")
    with pytest.raises(BadRequest, match=rights):  # the right was kept for the promotion
        await bot.pin_chat_message(-4, group_message.message_id)


async def test_pinning_in_private_chats_and_channels(bot: Bot, standin: TelegramStandIn) -> None:
    standin.send_message(42, "hi")
    standin.add_chat(-1007001, "channel")
    private = await bot.send_message(42, "private")
    post = await bot.send_message(-1007001, "post")
    await bot.pin_chat_message(42, private.message_id, disable_notification=True)
    await bot.pin_chat_message(-1007001, post.message_id)
    assert standin.pinned == {42: private.message_id, -1007001: post.message_id}
    assert standin.pin_notifications == {42: False, -1007001: True}


# ------------------------------------------------------------------ flood observability


async def test_max_sends_in_window_and_flood_errors(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(-1001, "supergroup", username="jobs")
    standin.add_chat(42)
    for i in range(GROUP_SENDS_PER_MINUTE):
        await bot.send_message(-1001, f"job {i}")
    first = await bot.send_message(42, "private")
    await bot.edit_message_text("edits do not count", 42, first.message_id)
    for _ in range(2):
        with pytest.raises(RetryAfter):
            await bot.send_message("@jobs", "one too many")
    standin.fail_next(1, 429, "Too Many Requests")  # any 429 answer counts
    with pytest.raises(NetworkError, match="Too Many Requests"):
        await bot.send_message(42, "also counted")
    assert standin.max_sends_in_window(-1001) == GROUP_SENDS_PER_MINUTE
    assert standin.max_sends_in_window(42) == 1
    assert standin.max_sends_in_window(777) == 0
    assert standin.flood_errors == {-1001: 2, 42: 1}
    assert standin.stats["sendMessage:429"] == 3


def test_max_sends_in_window_slides(standin: TelegramStandIn) -> None:
    def record(chat_id: int, date: float, method: str = "sendMessage") -> None:
        standin.sent.append(
            SentMessage(
                chat_id=chat_id,
                message_id=len(standin.sent) + 1,
                text="x",
                parse_mode=None,
                reply_markup=None,
                message_thread_id=None,
                method=method,
                date=date,
                disable_web_page_preview=False,
            )
        )

    for date in (0.0, 10.0, 59.0, 60.0, 61.0, 62.0, 200.0):
        record(-1001, 1000.0 + date)
    record(-1001, 1061.5, "editMessageText")
    record(-1002, 1061.5)
    # [10, 70) holds 10, 59, 60, 61, 62; a send exactly 60 s later starts a new window.
    assert standin.max_sends_in_window(-1001) == 5
    assert standin.max_sends_in_window(-1001, 60.0) == 5
    assert standin.max_sends_in_window(-1001, 2.5) == 3  # 60, 61 and 62
    assert standin.max_sends_in_window(-1001, 2.0) == 2  # 60 and 62 are 2 s apart
    assert standin.max_sends_in_window(-1001, 1.0) == 1
    assert standin.max_sends_in_window(-1001, 1000.0) == 7


# ------------------------------------------------------------------ getUpdates


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    bot: Bot, standin: TelegramStandIn
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.1)
    assert not poll.done()
    started = time.monotonic()
    standin.send_message(42, "hello", language_code="fr", first_name="Ana", username="ana")
    updates = await asyncio.wait_for(poll, 3)
    assert time.monotonic() - started < 1
    [update] = updates
    assert update.message is not None
    assert update.message.text == "hello"
    assert update.message.chat.type == "private"
    assert update.message.from_user is not None
    assert update.message.from_user.language_code == "fr"
    assert update.message.from_user.username == "ana"


async def test_long_poll_times_out_empty(
    standin: TelegramStandIn, http: aiohttp.ClientSession
) -> None:
    started = time.monotonic()
    status, body = await call(http, standin, "getUpdates", timeout=0.2)
    assert (status, body) == (200, {"ok": True, "result": []})
    assert 0.15 < time.monotonic() - started < 2


async def test_offset_confirms_updates(bot: Bot, standin: TelegramStandIn) -> None:
    for i in range(3):
        standin.send_message(42, f"m{i}")
    first = await bot.get_updates(limit=2)
    assert [u.message.text for u in first if u.message] == ["m0", "m1"]
    assert first[1].update_id == first[0].update_id + 1
    again = await bot.get_updates(offset=first[-1].update_id + 1)
    assert [u.message.text for u in again if u.message] == ["m2"]
    assert [u["message"]["text"] for u in standin.pending_updates] == ["m2"]
    assert await bot.get_updates(offset=again[-1].update_id + 1) == ()
    assert standin.pending_updates == []
    assert standin.stats["getUpdates"] == 3


async def test_group_and_forum_messages(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(-100321, "supergroup", title="Forum", is_forum=True)
    standin.send_message(-100321, "/list", user_id=9, message_thread_id=5)
    standin.send_message(-5, "hi", user_id=9, chat_type="group", chat_title="Small group")
    standin.enqueue_update(
        {
            "my_chat_member": {
                "chat": {"id": -5, "type": "group", "title": "Small group"},
                "from": {"id": 9, "is_bot": False, "first_name": "Test"},
                "date": int(time.time()),
                "old_chat_member": {
                    "status": "left",
                    "user": {"id": 123456, "is_bot": True, "first_name": "JobRelay"},
                },
                "new_chat_member": {
                    "status": "member",
                    "user": {"id": 123456, "is_bot": True, "first_name": "JobRelay"},
                },
            }
        }
    )
    forum, group, member_update = await bot.get_updates()
    assert forum.message is not None
    assert forum.message.is_topic_message is True
    assert forum.message.message_thread_id == 5
    assert forum.message.chat.title == "Forum"
    assert group.message is not None
    assert group.message.chat.type == "group"
    assert group.message.chat.title == "Small group"
    assert member_update.my_chat_member is not None
    assert member_update.update_id == group.update_id + 1
    reply = await bot.send_message(-100321, "topic reply", message_thread_id=5)
    assert reply.message_thread_id == 5
    assert standin.sent[0].message_thread_id == 5


async def test_press_button_produces_callback_query(bot: Bot, standin: TelegramStandIn) -> None:
    standin.send_message(42, "/start")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])
    message = await bot.send_message(42, "Sure?", reply_markup=keyboard)
    standin.press_button(42, message.message_id, "yes", language_code="de")
    updates = await bot.get_updates()
    query = updates[-1].callback_query
    assert query is not None
    assert query.data == "yes"
    assert query.from_user.id == 42
    assert query.from_user.language_code == "de"
    assert query.message is not None
    assert query.message.message_id == message.message_id
    assert await bot.answer_callback_query(query.id, "ok") is True
    with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
        await bot.answer_callback_query(query.id)
    with pytest.raises(LookupError):
        standin.press_button(42, 999, "yes")


async def test_edits_forwards_old_keyboards_and_repeated_updates(
    bot: Bot, standin: TelegramStandIn
) -> None:
    typed = standin.send_message(42, "/pause 3d")
    standin.edit_message(42, typed["message_id"], "/pause 2d")
    standin.send_message(42, "/unfollow all", forwarded_from=7)
    updates = await bot.get_updates()
    edited, forwarded = updates[1], updates[2]
    assert edited.edited_message is not None and edited.message is None
    assert edited.edited_message.message_id == typed["message_id"]
    assert edited.edited_message.text == "/pause 2d" and edited.edited_message.edit_date
    assert edited.edited_message.entities[0].type == "bot_command"
    assert forwarded.message is not None and forwarded.message.forward_origin is not None
    assert forwarded.message.forward_origin.sender_user.id == 7  # type: ignore[attr-defined]
    await bot.get_updates(offset=forwarded.update_id + 1)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])
    message = await bot.send_message(42, "Sure?", reply_markup=keyboard)
    standin.press_button(42, message.message_id, "yes", inaccessible=True)
    standin.repeat_last_update()
    first, second = await bot.get_updates()
    assert first.update_id == second.update_id
    query = first.callback_query
    assert query is not None and query.message is not None
    assert not query.message.is_accessible  # date 0: InaccessibleMessage on the wire
    with pytest.raises(BadRequest, match=r"(?i)message can.t be edited"):
        await bot.edit_message_text("Done", chat_id=42, message_id=message.message_id)
    other = await bot.send_message(42, "Other", reply_markup=keyboard)
    standin.remove_message(42, other.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("Done", chat_id=42, message_id=other.message_id)


async def test_concurrent_get_updates_conflict(
    bot: Bot, standin: TelegramStandIn, http: aiohttp.ClientSession
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    # A second bot instance polling terminates the first long poll, as on Telegram.
    assert await call(http, standin, "getUpdates", timeout=0) == (200, {"ok": True, "result": []})
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 3)


async def test_delete_webhook_can_drop_pending_updates(bot: Bot, standin: TelegramStandIn) -> None:
    standin.send_message(42, "old")
    assert (await bot.get_webhook_info()).pending_update_count == 1
    await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates() == ()


# ------------------------------------------------------------------ files


async def test_send_photo_and_document_keep_bytes(bot: Bot, standin: TelegramStandIn) -> None:
    standin.add_chat(42)
    photo = await bot.send_photo(42, b"\x89PNG fake", caption="<b>Logo</b>", parse_mode="HTML")
    assert photo.caption == "Logo"
    document = await bot.send_document(42, b"%PDF-1.4 fake", filename="offer.pdf")
    assert document.document is not None
    assert document.document.file_name == "offer.pdf"
    first, second = standin.sent
    assert (first.method, first.file_bytes, first.caption) == (
        "sendPhoto",
        b"\x89PNG fake",
        "<b>Logo</b>",
    )
    assert (second.method, second.file_bytes) == ("sendDocument", b"%PDF-1.4 fake")
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(42, b"x", caption="c" * 1025)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_document(42, b"x", caption="<u>x", parse_mode="HTML")


async def test_user_document_can_be_downloaded(bot: Bot, standin: TelegramStandIn) -> None:
    standin.send_message(42, "my cv", document=("cv.txt", b"hello cv"))
    [update] = await bot.get_updates()
    assert update.message is not None
    assert update.message.caption == "my cv"
    assert update.message.document is not None
    file = await update.message.document.get_file()
    assert bytes(await file.download_as_bytearray()) == b"hello cv"


async def test_sent_documents_keep_their_name_and_photos_have_none(
    bot: Bot, standin: TelegramStandIn
) -> None:
    standin.add_chat(42)
    await bot.send_photo(42, b"\x89PNG fake")
    await bot.send_document(42, b"<opml/>", filename="jobrelay.opml")
    photo, document = standin.sent
    assert (photo.file_name, photo.mime_type) == (None, None)
    assert document.file_name == "jobrelay.opml"
    assert document.mime_type is not None


async def test_a_document_captioned_with_a_command_carries_its_entity(
    bot: Bot, standin: TelegramStandIn
) -> None:
    standin.send_message(42, "/import in @club", document=("subs.opml", b"<opml/>"))
    standin.send_message(42, "my cv", document=("cv.txt", b"cv"))
    first, second = await bot.get_updates()
    assert first.message is not None and second.message is not None
    assert [(e.type, e.offset, e.length) for e in first.message.caption_entities] == [
        ("bot_command", 0, 7)
    ]
    assert second.message.caption_entities == ()


async def test_get_file_refuses_files_over_20_mb_like_telegram(
    bot: Bot, standin: TelegramStandIn
) -> None:
    standin.send_message(42, "", document=("big.bin", b"x" * (MAX_DOWNLOAD_BYTES + 1)))
    standin.send_message(42, "", document=("limit.bin", b"x" * MAX_DOWNLOAD_BYTES))
    big, limit = await bot.get_updates()
    assert big.message is not None and big.message.document is not None
    assert limit.message is not None and limit.message.document is not None
    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        await big.message.document.get_file()
    file = await limit.message.document.get_file()
    assert file.file_size == MAX_DOWNLOAD_BYTES


# ------------------------------------------------------------------ speed


async def test_many_sends_without_limits() -> None:
    async with TelegramStandIn(TOKEN, flood_limits=False) as server:
        server.add_chat(-1001, "supergroup")
        async with aiohttp.ClientSession() as http:

            async def send(i: int) -> int:
                async with http.post(
                    f"{server.base_url}{TOKEN}/sendMessage",
                    data={"chat_id": "-1001", "text": f"<b>job</b> {i}", "parse_mode": "HTML"},
                ) as response:
                    return response.status

            started = time.monotonic()
            statuses = await asyncio.gather(*(send(i) for i in range(500)))
            elapsed = time.monotonic() - started
    assert set(statuses) == {200}
    assert len(server.messages_for(-1001)) == 500
    assert [m.message_id for m in server.sent] == list(range(1, 501))
    assert elapsed < 5


# ------------------------------------------------------------------ parse_telegram_html


@pytest.mark.parametrize(
    ("html", "plain"),
    [
        ("plain text", "plain text"),
        ("<b>bold <i>both</i></b> <u>u</u> <s>s</s>", "bold both u s"),
        ("<B>upper</B>", "upper"),
        ("&lt;b&gt; &amp; &quot;", '<b> & "'),
        ("&amp;lt;", "&lt;"),
        ("&#60;&#x3C;&#X3c;&#128512;", "<<<😀"),
        ('<a href="https://x.com/?a=1&amp;b=2">x</a>', "x"),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st"),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', "👍"),
        ('<pre><code class="language-python">x = 1</code></pre>', "x = 1"),
        ("<blockquote expandable>q</blockquote>", "q"),
        ("a > b", "a > b"),
        ("<b>x</>", "x"),
        ("", ""),
    ],
)
def test_parse_telegram_html_valid(html: str, plain: str) -> None:
    assert parse_telegram_html(html) == plain


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("é <foo>", 'Unsupported start tag "foo" at byte offset 3'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<br/>", 'Unsupported start tag "br/" at byte offset 0'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ('<a href="x>y</a>', "Unclosed start tag at byte offset 0"),
        ("<a href=https://x.com>y</a>", "Unexpected end of name token at byte offset 8"),
        ("a &nbsp; b", 'Unsupported entity "nbsp" at byte offset 2'),
        ("&LT;", 'Unsupported entity "LT"'),
        ("Q&A", 'Character "&" at byte offset 1 must be escaped as "&amp;"'),
        ("&amp", 'Character "&" at byte offset 0'),
        ("&#0;", 'Invalid numeric entity "&#0;"'),
        ("&#xD800;", "Invalid numeric entity"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler"'),
        ("<a>x</a>", 'Tag "a" must have a non-empty "href" attribute'),
        ('<tg-emoji emoji-id="abc">x</tg-emoji>', "valid custom emoji identifier"),
        ("<b =x>y</b>", 'Empty attribute name in the tag "b"'),
    ],
)
def test_parse_telegram_html_errors(html: str, error: str) -> None:
    with pytest.raises(TelegramHTMLError) as info:
        parse_telegram_html(html)
    assert error in info.value.detail
    assert info.value.description.startswith("Bad Request: can't parse entities: ")


def test_parse_telegram_html_entities_use_utf16_offsets() -> None:
    plain, entities = parse_telegram_html_with_entities(
        '😀<b>x</b> <pre><code class="language-py">y</code></pre><code>z</code>'
    )
    assert plain == "😀x yz"
    assert entities == [
        {"type": "bold", "offset": 2, "length": 1},
        {"type": "pre", "offset": 4, "length": 1, "language": "py"},
        {"type": "code", "offset": 5, "length": 1},
    ]
    assert utf16_length("😀") == 2
    assert utf16_length(parse_telegram_html("<i>😀😀</i>")) == 4


async def test_a_client_that_hangs_up_mid_request_is_no_error_of_the_stand_in(
    standin: TelegramStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """A bot killed with -9 while sending leaves a request with half its body: the stand-in
    drops it quietly (no traceback in the test's log) and serves the next one."""
    reader, writer = await asyncio.open_connection(standin.host, standin.port)
    writer.write(
        f"POST /bot{TOKEN}/sendMessage HTTP/1.1\r\nHost: {standin.host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n"
        "chat_id=1&text=half a bo".encode()
    )
    await writer.drain()
    await asyncio.sleep(0.05)  # the handler is reading the body
    writer.transport.abort()  # a connection reset, as a killed process leaves it
    async with Bot(TOKEN, base_url=standin.base_url) as bot:
        assert (await bot.get_me()).is_bot
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    del reader
