"""The sandbox's terminal: what the "phone" shows and what the user can do from it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from telegram import Bot

from bot.sandbox.telegram_api import SentMessage, TelegramStandIn
from bot.sandbox.terminal import Terminal, human_size
from bot.sandbox.x_api import XStandIn

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
