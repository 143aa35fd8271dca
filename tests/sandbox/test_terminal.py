"""The sandbox's terminal: what the "phone" shows and what the user can do from it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from telegram import Bot

from bot.i18n import translator
from bot.keyboards import is_label
from bot.policy import ChatPolicy
from bot.sandbox.files import human_size
from bot.sandbox.telegram_api import MAX_DOWNLOAD_BYTES, SentMessage, TelegramStandIn
from bot.sandbox.terminal import Terminal
from bot.sandbox.x_api import XStandIn
from handlers.buttons import settings_keyboard

USER = 1001


@pytest.fixture
async def tg() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn() as standin:
        yield standin


def terminal_for(
    tg: TelegramStandIn, zone: str = "Europe/Paris", files_dir: Path = Path("sandbox-files")
) -> Terminal:
    return Terminal(
        tg,
        user_id=USER,
        language="en",
        stop=asyncio.Event(),
        x=XStandIn(),
        zone=ZoneInfo(zone),
        files_dir=files_dir,
    )


def bot_message(text: str, *, date: datetime, method: str = "sendMessage") -> SentMessage:
    return SentMessage(
        chat_id=USER,
        message_id=7,
        text=text,
        parse_mode=None,
        reply_markup=None,
        message_thread_id=None,
        method=method,
        date=date.timestamp(),
        disable_web_page_preview=False,
    )


def listing(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


# ------------------------------------------------------------------ one clock


async def test_message_times_are_shown_on_the_bots_clock_with_its_zone(
    tg: TelegramStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = terminal_for(tg, "Europe/Paris")
    at = datetime(2026, 12, 3, 6, 56, 12, tzinfo=UTC)
    tg.sent.append(bot_message("Paused until Thu 3 Dec 08:56", date=at))
    terminal.show_new()
    out = capsys.readouterr().out
    assert "07:56:12 CET jobrelay:" in out
    assert "06:56:12" not in out  # not the machine's (UTC) clock


async def test_the_banner_names_the_zone_times_are_shown_in(
    tg: TelegramStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal_for(tg, "America/Montreal").banner(
        accounts=["acme_jobs"], database="sqlite:///sandbox.db", poll_seconds=10, post_every=30
    )
    out = capsys.readouterr().out
    assert "Times are shown in America/Montreal, the bot's time zone (DEFAULT_TIMEZONE)" in out


# ------------------------------------------------------------------ files the bot sends


async def test_photos_and_documents_are_named_sized_and_saved(
    tg: TelegramStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = tmp_path / "sandbox-files"
    terminal = terminal_for(tg, files_dir=files)
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 3000
    opml = b'<?xml version="1.0"?><opml version="2.0"></opml>'
    tg.add_chat(USER)
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as bot:
        await bot.send_photo(USER, png, caption="Offers per day: pushed and held")
        await bot.send_document(USER, opml, filename="jobrelay.opml", caption="3 subscriptions.")
        await bot.send_document(USER, opml, filename="../../etc/jobrelay.opml")
    terminal.show_new()
    out = capsys.readouterr().out
    saved = listing(files)
    assert len(saved) == 3
    photo = next(p for p in saved if p.name.endswith("_photo.png"))
    documents = [p for p in saved if p.suffix == ".opml"]
    assert photo.read_bytes() == png
    assert [p.read_bytes() for p in documents] == [opml, opml]
    assert len(tg.sent) == 3 and tg.sent[2].file_name == "../../etc/jobrelay.opml"
    assert f"🖼 Photo (2.9 KB), saved as {photo}" in out
    assert f"📎 Document jobrelay.opml ({len(opml)} B), saved as " in out
    assert "Offers per day: pushed and held" in out
    assert "3 subscriptions." in out
    assert listing(tmp_path) == [files]  # a name cannot climb out of the directory


async def test_a_copy_never_overwrites_an_earlier_one(
    tg: TelegramStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = terminal_for(tg, "UTC", files_dir=tmp_path)
    at = datetime(2026, 12, 3, 6, 56, 12, tzinfo=UTC)
    for data in (b"first", b"second"):
        message = bot_message("", date=at, method="sendDocument")
        message.file_bytes, message.file_name = data, "jobrelay.opml"
        tg.sent.append(message)
    terminal.show_new()
    first = tmp_path / "2026-12-03_06-56-12_jobrelay.opml"
    second = tmp_path / "2026-12-03_06-56-12_jobrelay-2.opml"
    assert (first.read_bytes(), second.read_bytes()) == (b"first", b"second")
    assert f"saved as {second}" in capsys.readouterr().out


async def test_a_file_that_cannot_be_saved_is_still_shown_with_the_reason(
    tg: TelegramStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    terminal = terminal_for(tg, files_dir=blocker / "sandbox-files")
    tg.add_chat(USER)
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as bot:
        await bot.send_document(
            USER, b"<opml/>", filename="jobrelay.opml", caption="1 subscription."
        )
    terminal.show_new()
    out = capsys.readouterr().out
    assert "📎 Document jobrelay.opml (7 B), not saved (" in out
    assert "1 subscription." in out


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KB"), (1536, "1.5 KB"), (20 * 1024**2, "20.0 MB")],
)
def test_sizes_read_as_people_say_them(size: int, shown: str) -> None:
    assert human_size(size) == shown


# ------------------------------------------------------------------ files the user sends

OPML = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>mine</title></head><body>
<outline text="@acme_jobs" xmlUrl="https://x.com/acme_jobs"/>
</body></opml>
"""


async def downloaded(tg: TelegramStandIn, file_id: str) -> bytes:
    """What the bot gets for a file: getFile, then the download, through python-telegram-bot."""
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as bot:
        file = await bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())


async def test_send_with_a_caption_sends_the_file_as_a_document_the_bot_can_download(
    tg: TelegramStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "my subs.opml").write_bytes(OPML)
    terminal = terminal_for(tg)
    terminal.handle(f':send "{tmp_path / "my subs.opml"}" /import')
    [update] = tg.pending_updates
    message = update["message"]
    assert message["from"]["id"] == USER and message["chat"]["id"] == USER
    assert message["caption"] == "/import"
    assert message["document"]["file_name"] == "my subs.opml"
    assert message["document"]["file_size"] == len(OPML)
    assert await downloaded(tg, message["document"]["file_id"]) == OPML
    out = capsys.readouterr().out
    assert f"(you) sent the document my subs.opml ({len(OPML)} B) with the caption /import" in out


async def test_reply_answers_the_document_just_sent(
    tg: TelegramStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "subs.opml").write_bytes(OPML)
    terminal = terminal_for(tg)
    terminal.handle(f":send {tmp_path / 'subs.opml'}")
    terminal.handle(":reply /import")
    sent, answer = (u["message"] for u in tg.pending_updates)
    assert "caption" not in sent
    assert answer["text"] == "/import"
    assert answer["entities"][0]["type"] == "bot_command"
    assert answer["reply_to_message"]["message_id"] == sent["message_id"]
    assert answer["reply_to_message"]["document"]["file_name"] == "subs.opml"
    assert "(you) answered subs.opml with: /import" in capsys.readouterr().out


async def test_reply_answers_the_bots_last_document_too(
    tg: TelegramStandIn, tmp_path: Path
) -> None:
    terminal = terminal_for(tg, files_dir=tmp_path)
    tg.add_chat(USER)
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as bot:
        exported = await bot.send_document(USER, OPML, filename="jobrelay.opml")
    terminal.show_new()
    terminal.handle(":reply /import")
    [update] = tg.pending_updates
    assert update["message"]["reply_to_message"]["message_id"] == exported.message_id


async def test_reply_without_any_document_says_how_to_get_one(
    tg: TelegramStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal_for(tg).handle(":reply /import")
    assert tg.pending_updates == []
    assert "no document to answer yet: send one with :send FILE" in capsys.readouterr().out


def sparse(path: Path, size: int) -> Path:
    with path.open("wb") as file:
        file.truncate(size)
    return path


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda d: d / "missing.opml", "cannot send: no such file: {path}"),
        (lambda d: d, "cannot send: {path} is a directory: give the path of a file"),
        (
            lambda d: sparse(d / "big.bin", MAX_DOWNLOAD_BYTES + 1),
            "cannot send: {path} is 20.0 MB: a bot can download files of at most 20.0 MB",
        ),
        (lambda d: sparse(d / "empty.opml", 0), "{path} is empty: Telegram does not send empty"),
    ],
    ids=["missing", "directory", "over-20-MB", "empty"],
)
async def test_a_file_that_cannot_be_sent_is_refused_with_a_clear_line(
    tg: TelegramStandIn,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Path],
    said: str,
) -> None:
    path = make(tmp_path)
    terminal_for(tg).handle(f":send {path} /import")
    assert tg.pending_updates == []
    assert said.format(path=path) in capsys.readouterr().out


async def test_a_file_of_exactly_20_mb_is_sent(tg: TelegramStandIn, tmp_path: Path) -> None:
    path = sparse(tmp_path / "limit.bin", MAX_DOWNLOAD_BYTES)
    terminal_for(tg).handle(f":send {path}")
    [update] = tg.pending_updates
    assert update["message"]["document"]["file_size"] == MAX_DOWNLOAD_BYTES


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
async def test_an_unreadable_file_is_refused(
    tg: TelegramStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "secret.opml"
    path.write_bytes(OPML)
    path.chmod(0)
    terminal_for(tg).handle(f":send {path}")
    assert tg.pending_updates == []
    assert f"cannot send: cannot read {path}: Permission denied" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (":send", "usage: :send FILE [caption]"),
        (':send "unclosed.opml /import', 'cannot send: no closing " after the file name'),
        (":reply", "usage: :reply TEXT"),
        (":sned x.opml", "unknown sandbox command :sned"),
    ],
)
async def test_sandbox_commands_used_wrongly_say_how_to_use_them(
    tg: TelegramStandIn, capsys: pytest.CaptureFixture[str], line: str, said: str
) -> None:
    terminal_for(tg).handle(line)
    assert tg.pending_updates == []
    assert said in capsys.readouterr().out


async def test_a_caption_longer_than_telegrams_is_refused(
    tg: TelegramStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "subs.opml").write_bytes(OPML)
    terminal_for(tg).handle(f":send {tmp_path / 'subs.opml'} /import {'x' * 1020}")
    assert tg.pending_updates == []
    assert "caption is longer than Telegram's 1024 characters" in capsys.readouterr().out


# ------------------------------------------------------------------ buttons


def settings_message(tg: TelegramStandIn) -> SentMessage:
    """/settings as the bot sends it: the real keyboard, with the limit as a label."""
    tg.add_chat(USER)
    markup = settings_keyboard(translator("en"), ChatPolicy(daily_limit=10), False).to_dict()
    stored = tg.send_message(USER, "/settings", user_id=USER)  # a message the press points at
    message = bot_message("<b>Your settings</b>", date=datetime.now(UTC))
    message.message_id, message.reply_markup = stored["message_id"], markup
    tg.sent.append(message)
    return message


def presses(tg: TelegramStandIn) -> list[dict[str, Any]]:
    return [u["callback_query"] for u in tg.pending_updates if "callback_query" in u]


def test_the_settings_limit_is_the_only_label() -> None:
    markup = settings_keyboard(translator("en"), ChatPolicy(daily_limit=10), False)
    buttons = [b for row in markup.inline_keyboard for b in row]
    labels = [b.text for b in buttons if is_label(str(b.callback_data))]
    assert labels == ["Limit: 10/day"]
    assert not is_label("fb:i:42")


async def test_pressing_a_label_says_it_is_a_label_not_a_button(
    tg: TelegramStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    settings_message(tg)
    terminal = terminal_for(tg)
    terminal.show_new()
    out = capsys.readouterr().out
    assert "[1 −]  [2 Limit: 10/day]  [3 +]" in out
    terminal.handle(":press 2")
    assert "[2 Limit: 10/day] is a label, not a button" in capsys.readouterr().out
    terminal.handle(":press 3")
    out = capsys.readouterr().out
    assert "(you) pressed [3 +]" in out
    assert "is a label" not in out
    assert [q["data"] for q in presses(tg)] == [
        "st:noop",
        "st:limit:+",
    ]  # Telegram sends both; the bot ignores one


async def test_the_bots_answer_to_a_press_shows_as_a_toast(
    tg: TelegramStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    settings_message(tg)
    terminal = terminal_for(tg)
    terminal.show_new()
    terminal.handle(":press 3")
    [query] = presses(tg)
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as bot:
        await bot.answer_callback_query(query["id"], text="Saved")
    capsys.readouterr()
    terminal.show_new()
    assert "(toast after [+]) Saved" in capsys.readouterr().out
    terminal.show_new()
    assert "Saved" not in capsys.readouterr().out  # told once
