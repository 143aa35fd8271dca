"""A terminal that plays the Telegram app: you type as a user, you see what the phone receives."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import textwrap
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.sandbox.telegram_api import SentMessage, TelegramStandIn, parse_telegram_html
from bot.sandbox.x_api import XStandIn

BOLD = "\033[1m"
DIM = "\033[2m"
RESET = "\033[0m"

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
    ) -> None:
        self._tg = tg
        self._zone = zone  # the bot's DEFAULT_TIMEZONE: the terminal's clock agrees with it
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
        for line in body.splitlines() or [""]:
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
