"""A terminal that plays the Telegram app: you type as a user, you see what the phone receives."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.sandbox.telegram_api import SentMessage, TelegramStandIn, parse_telegram_html
from bot.sandbox.x_api import XStandIn

BOLD = "\033[1m"
DIM = "\033[2m"
RESET = "\033[0m"

_UNSAFE_NAME_CHARS = re.compile(r"[^\w.-]+")
_IMAGE_SUFFIXES = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"GIF8": ".gif", b"RIFF": ".webp"}


def human_size(size: int) -> str:
    """`812 B`, `23.4 KB`, `1.5 MB` (1 KB = 1024 bytes, as Telegram counts)."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} GB"


def _safe_file_name(name: str | None, fallback: str) -> str:
    """A name the bot gave a file, made safe to save under: no directories, no odd characters."""
    base = _UNSAFE_NAME_CHARS.sub("_", Path(name or "").name).strip("._")[:100]
    return base or fallback


def _image_suffix(data: bytes) -> str:
    return next((s for magic, s in _IMAGE_SUFFIXES.items() if data.startswith(magic)), ".bin")


HELP = """\
Type a command as a Telegram user would, e.g. /follow @acme_jobs, /list, /help.
Sandbox commands (not sent to the bot):
  :lang fr|en             speak to the bot in French or English
  :post @handle text...   post an offer on X as that account
  :press N                press button N of the last message that has buttons
  :quit                   stop the sandbox"""


class Terminal:
    """Reads lines from stdin and prints the bot's messages to this user as they arrive."""

    def __init__(
        self,
        tg: TelegramStandIn,
        *,
        user_id: int,
        language: str,
        stop: asyncio.Event,
        x: XStandIn,
        zone: ZoneInfo,
        files_dir: Path,
    ) -> None:
        self._tg = tg
        self._zone = zone  # the bot's DEFAULT_TIMEZONE: the terminal's clock agrees with it
        self._files_dir = files_dir.resolve()  # copies of the photos and documents the bot sends
        self._x = x
        self._user_id = user_id
        self._language = language
        self._stop = stop
        self._shown = 0
        self._colour = sys.stdout.isatty()
        self._buttons: tuple[int, list[str]] | None = None  # message id, callback data

    def _style(self, text: str, style: str) -> str:
        return f"{style}{text}{RESET}" if self._colour else text

    def banner(
        self,
        *,
        accounts: list[str],
        database: str,
        poll_seconds: float,
        post_every: float,
        feeds: Sequence[str] = (),
    ) -> None:
        """What the sandbox is and how to use it."""
        print(self._style("jobrelay sandbox", BOLD))
        print(
            "The real bot, talking to local stand-ins of Telegram and X (nothing leaves this "
            "machine)."
        )
        print(f"Recruiter accounts on the X stand-in: {', '.join('@' + a for a in accounts)}")
        print(
            "Try /follow @acme_jobs, or /follow software (or /categories): @emploi_board is a "
            "job board, read for category followers."
        )
        if feeds:
            print(f"Feeds on the feed stand-in: {', '.join(feeds)} (try /follow {feeds[0]})")
        print(
            f"Times are shown in {self._zone.key}, the bot's time zone (DEFAULT_TIMEZONE); "
            "/timezone changes the bot's for this chat, not the terminal's."
        )
        print(f"Photos and documents the bot sends are saved in {self._files_dir}/")
        print(
            f"Database {database}; each account is polled every {poll_seconds:g} s; "
            f"a new offer is posted about every {post_every:g} s."
        )
        print(HELP)
        print()
        sys.stdout.flush()

    def note(self, text: str) -> None:
        """A line about the sandbox itself (dimmed)."""
        print(self._style(text, DIM), flush=True)

    def _stamp(self, epoch: float) -> str:
        """`07:56:12 CET`: a moment on the bot's clock, with its zone's abbreviation."""
        return datetime.fromtimestamp(epoch, self._zone).strftime("%H:%M:%S %Z")

    def _show(self, message: SentMessage) -> None:
        stamp = self._stamp(message.date)
        try:
            body = (
                parse_telegram_html(message.text) if message.parse_mode == "HTML" else message.text
            )
        except ValueError:
            body = message.text
        edited = " (edited)" if message.method.startswith("edit") else ""
        print(self._style(f"📱 {stamp} jobrelay{edited}:", BOLD))
        media = message.method in {"sendPhoto", "sendDocument"}
        if media:
            print("   " + self._save(message))
        for line in body.splitlines() or ([] if media else [""]):
            print(textwrap.indent(line, "   ") if line else "")
        markup = message.reply_markup or {}
        data: list[str] = []
        for row in markup.get("inline_keyboard", []):
            labels = []
            for button in row:
                data.append(str(button.get("callback_data", "")))
                labels.append(f"[{len(data)} {button.get('text', '')}]")
            print("   " + "  ".join(labels))
        if data:
            self._buttons = (message.message_id, data)
        sys.stdout.flush()

    def _save(self, message: SentMessage) -> str:
        """Keep a copy of a photo or document the bot sent; returns the line that says what was
        sent and where the copy is."""
        data = message.file_bytes
        if message.method == "sendPhoto":
            what = f"🖼 Photo ({human_size(len(data or b''))})"
            name = "photo" + _image_suffix(data or b"")
        else:
            name = _safe_file_name(message.file_name, "document")
            what = f"📎 Document {message.file_name or name} ({human_size(len(data or b''))})"
        if data is None:
            return f"{what}, sent by URL: nothing to save"
        stamp = datetime.fromtimestamp(message.date, self._zone).strftime("%Y-%m-%d_%H-%M-%S")
        try:
            self._files_dir.mkdir(parents=True, exist_ok=True)
            target = self._files_dir / f"{stamp}_{name}"
            stem, suffix, number = target.stem, target.suffix, 1
            while True:
                try:
                    with target.open("xb") as file:  # never overwrite an earlier copy
                        file.write(data)
                    break
                except FileExistsError:
                    number += 1
                    target = target.with_name(f"{stem}-{number}{suffix}")
        except OSError as exc:
            return f"{what}, not saved ({exc.strerror or exc} in {self._files_dir})"
        return f"{what}, saved as {target}"

    def show_new(self) -> None:
        """Print what the bot sent this user since the last call."""
        mine = self._tg.messages_for(self._user_id)
        for message in mine[self._shown :]:
            self._show(message)
        self._shown = len(mine)

    async def _watch(self) -> None:
        while not self._stop.is_set():
            self.show_new()
            await asyncio.sleep(0.2)

    def handle(self, line: str) -> None:
        """One line typed by the user: a sandbox command, or a message to the bot."""
        line = line.strip()
        if not line:
            return
        if line in {":quit", ":q", ":exit"}:
            self._stop.set()
            return
        if line.startswith(":lang"):
            choice = line.removeprefix(":lang").strip()
            if choice in {"fr", "en"}:
                self._language = choice
                self.note(f"you now speak {choice} to the bot")
            else:
                self.note("usage: :lang fr  or  :lang en")
            return
        if line.startswith(":post"):
            handle, _, text = line.removeprefix(":post").strip().partition(" ")
            try:
                self._x.add_post(handle.removeprefix("@"), text.strip() or "New job offer")
                self.note(f"(X) @{handle.removeprefix('@')} posted: {text.strip()}")
            except (KeyError, ValueError) as exc:
                self.note(f"cannot post: {exc}")
            return
        if line.startswith(":press"):
            self._press(line.removeprefix(":press").strip())
            return
        if line.startswith(":"):
            self.note(HELP)
            return
        self._tg.send_message(
            self._user_id,
            line,
            user_id=self._user_id,
            language_code=self._language,
            first_name="Sandbox",
            username="sandbox_user",
        )

    def _press(self, number: str) -> None:
        if self._buttons is None:
            self.note("no message with buttons yet")
            return
        message_id, data = self._buttons
        if not number.isdigit() or not 1 <= int(number) <= len(data):
            self.note(f"usage: :press N with N from 1 to {len(data)}")
            return
        self._tg.press_button(
            self._user_id,
            message_id,
            data[int(number) - 1],
            user_id=self._user_id,
            language_code=self._language,
        )

    async def run(self) -> None:
        """Serve the terminal until stopped; end of input leaves the bot running."""
        watcher = asyncio.create_task(self._watch())
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        pending = bytearray()

        def readable() -> None:
            # Raw reads: a buffered readline could keep lines the event loop never hears about.
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:
                if pending:
                    lines.put_nowait(pending.decode(errors="replace"))
                    pending.clear()
                lines.put_nowait(None)
                return
            pending.extend(chunk)
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending[:] = rest
                lines.put_nowait(line.decode(errors="replace"))

        try:
            loop.add_reader(sys.stdin.fileno(), readable)
        except (ValueError, OSError, NotImplementedError):
            self.note("(no terminal input: watching only)")
            await self._stop.wait()
        else:
            try:
                while not self._stop.is_set():
                    line = await lines.get()
                    if line is None:
                        loop.remove_reader(sys.stdin.fileno())
                        self.note("(end of input: the bot keeps running; Ctrl-C to stop)")
                        await self._stop.wait()
                        break
                    self.handle(line)
            finally:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(sys.stdin.fileno())
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await asyncio.sleep(0)
