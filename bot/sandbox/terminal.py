"""A terminal that plays the Telegram app: you type as a user, you see what the phone receives."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import textwrap
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.keyboards import is_label
from bot.sandbox.files import (
    FileRefused,
    human_size,
    image_suffix,
    read_to_send,
    safe_file_name,
    save_copy,
)
from bot.sandbox.telegram_api import (
    SentMessage,
    TelegramStandIn,
    parse_telegram_html,
    utf16_length,
)
from bot.sandbox.x_api import XStandIn

BOLD = "\033[1m"
DIM = "\033[2m"
RESET = "\033[0m"

MAX_CAPTION_LENGTH = 1024  # Telegram's, in UTF-16 code units

HELP = """\
Type a command as a Telegram user would, e.g. /follow @acme_jobs, /list, /help.
Sandbox commands (not sent to the bot):
  :lang fr|en             speak to the bot in French or English
  :post @handle text...   post on X as that account (an offer, or anything else)
  :press N                press button N of the last message that has buttons (a label,
                          like [Limit: 10/day] in /settings, only shows a value)
  :send FILE [caption]    send a file from this machine as a document (20 MB at most),
                          e.g. :send subs.opml /import  (quote a path with spaces: "my subs.opml")
  :reply TEXT             answer the last document in this chat (one you sent, or the bot's,
                          e.g. /export's file) with TEXT, e.g. :reply /import
  :help                   this list
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
        # The last message with buttons: its id, and each button's label and callback data.
        self._buttons: tuple[int, list[tuple[str, str]]] | None = None
        self._presses: dict[str, str] = {}  # callback query id -> label, until the bot answers
        self._last_document: tuple[int, str] | None = None  # message id, file name

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
        schema: str = "",
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
            "Recruiters post news and events too: the bot relays them to the account's "
            "followers without an offer's details (🏷 categories, 👉 Apply), and never to "
            "category followers."
        )
        print(
            f"Times are shown in {self._zone.key}, the bot's time zone (DEFAULT_TIMEZONE); "
            "/timezone changes the bot's for this chat, not the terminal's."
        )
        print(f"Photos and documents the bot sends are saved in {self._files_dir}/")
        print(f"Database {database}: {schema}." if schema else f"Database {database}.")
        print(
            f"Each account is polled every {poll_seconds:g} s; "
            f"something new is posted about every {post_every:g} s."
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
        if message.method == "sendDocument":
            self._last_document = (message.message_id, message.file_name or "document")
        for line in body.splitlines() or ([] if media else [""]):
            print(textwrap.indent(line, "   ") if line else "")
        markup = message.reply_markup or {}
        buttons: list[tuple[str, str]] = []
        for row in markup.get("inline_keyboard", []):
            labels = []
            for button in row:
                buttons.append((str(button.get("text", "")), str(button.get("callback_data", ""))))
                labels.append(f"[{len(buttons)} {buttons[-1][0]}]")
            print("   " + "  ".join(labels))
        if buttons:
            self._buttons = (message.message_id, buttons)
        sys.stdout.flush()

    def _save(self, message: SentMessage) -> str:
        """Keep a copy of a photo or document the bot sent; returns the line that says what was
        sent and where the copy is."""
        data = message.file_bytes
        size = human_size(len(data or b""))
        if message.method == "sendPhoto":
            what = f"🖼 Photo ({size})"
            name = "photo" + image_suffix(data or b"")
        else:
            name = safe_file_name(message.file_name, "document")
            what = f"📎 Document {message.file_name or name} ({size})"
        if data is None:
            return f"{what}, sent by URL: nothing to save"
        stamp = datetime.fromtimestamp(message.date, self._zone).strftime("%Y-%m-%d_%H-%M-%S")
        try:
            target = save_copy(self._files_dir, f"{stamp}_{name}", data)
        except OSError as exc:
            return f"{what}, not saved ({exc.strerror or exc} in {self._files_dir})"
        return f"{what}, saved as {target}"

    def show_new(self) -> None:
        """Print what the bot sent this user since the last call."""
        mine = self._tg.messages_for(self._user_id)
        for message in mine[self._shown :]:
            self._show(message)
        self._shown = len(mine)
        for query_id, label in list(self._presses.items()):
            answer = self._tg.callback_answers.get(query_id)
            if answer is None:
                continue
            del self._presses[query_id]
            if answer.get("text"):  # what the phone shows over the chat for a moment
                kind = "alert" if answer.get("show_alert") else "toast"
                self.note(f"({kind} after [{label}]) {answer['text']}")

    async def _watch(self) -> None:
        while not self._stop.is_set():
            self.show_new()
            await asyncio.sleep(0.2)

    def handle(self, line: str) -> None:
        """One line typed by the user: a sandbox command, or a message to the bot."""
        line = line.strip()
        if not line:
            return
        if not line.startswith(":"):
            self._say(line)
            return
        word, _, argument = line.partition(" ")
        argument = argument.strip()
        if word in {":quit", ":q", ":exit"}:
            self._stop.set()
        elif word == ":lang":
            self._lang(argument)
        elif word == ":post":
            self._post(argument)
        elif word == ":press":
            self._press(argument)
        elif word == ":send":
            self._send(argument)
        elif word == ":reply":
            self._reply(argument)
        elif word == ":help":
            self.note(HELP)
        else:
            self.note(f"unknown sandbox command {word}\n{HELP}")

    def _say(self, text: str, *, reply_to: int | None = None) -> None:
        self._tg.send_message(
            self._user_id,
            text,
            user_id=self._user_id,
            language_code=self._language,
            first_name="Sandbox",
            username="sandbox_user",
            reply_to=reply_to,
        )

    def _lang(self, choice: str) -> None:
        if choice in {"fr", "en"}:
            self._language = choice
            self.note(f"you now speak {choice} to the bot")
        else:
            self.note("usage: :lang fr  or  :lang en")

    def _post(self, argument: str) -> None:
        handle, _, text = argument.partition(" ")
        try:
            self._x.add_post(handle.removeprefix("@"), text.strip() or "New job offer")
            self.note(f"(X) @{handle.removeprefix('@')} posted: {text.strip()}")
        except (KeyError, ValueError) as exc:
            self.note(f"cannot post: {exc}")

    def _send(self, argument: str) -> None:
        """`:send FILE [caption]`: the file as a document from this user, in this chat."""
        usage = "usage: :send FILE [caption], e.g. :send subs.opml /import"
        if not argument:
            self.note(usage)
            return
        try:
            raw_path, caption = _split_path(argument)
            if utf16_length(caption) > MAX_CAPTION_LENGTH:
                raise FileRefused(
                    f"the caption is longer than Telegram's {MAX_CAPTION_LENGTH} characters"
                )
            path = Path(raw_path).expanduser()
            data = read_to_send(path)
        except FileRefused as exc:
            self.note(f"cannot send: {exc}")
            return
        message = self._tg.send_message(
            self._user_id,
            caption,
            user_id=self._user_id,
            language_code=self._language,
            first_name="Sandbox",
            username="sandbox_user",
            document=(path.name, data),
        )
        self._last_document = (int(message["message_id"]), path.name)
        with_caption = f" with the caption {caption}" if caption else " (:reply TEXT answers it)"
        self.note(f"(you) sent the document {path.name} ({human_size(len(data))}){with_caption}")

    def _reply(self, text: str) -> None:
        """`:reply TEXT`: TEXT as an answer to the last document in this chat."""
        if not text:
            self.note("usage: :reply TEXT, e.g. :reply /import (answers the last document)")
            return
        if self._last_document is None:
            self.note(
                "no document to answer yet: send one with :send FILE, or get one from the bot "
                "(/export)"
            )
            return
        message_id, name = self._last_document
        try:
            self._say(text, reply_to=message_id)
        except ValueError as exc:  # the message is gone (deleted)
            self.note(f"cannot answer {name}: {exc}")
            return
        self.note(f"(you) answered {name} with: {text}")

    def _press(self, number: str) -> None:
        if self._buttons is None:
            self.note("no message with buttons yet")
            return
        message_id, buttons = self._buttons
        if not number.isdigit() or not 1 <= int(number) <= len(buttons):
            self.note(f"usage: :press N with N from 1 to {len(buttons)}")
            return
        label, data = buttons[int(number) - 1]
        # Telegram sends a press on a label too; the bot answers it with nothing.
        try:
            query = self._tg.press_button(
                self._user_id,
                message_id,
                data,
                user_id=self._user_id,
                language_code=self._language,
            )
        except LookupError:  # the bot deleted the message
            self.note("that message is gone: its buttons cannot be pressed any more")
            self._buttons = None
            return
        if is_label(data):
            self.note(
                f"[{number} {label}] is a label, not a button: it only shows a value, pressing "
                "it does nothing (press the buttons beside it)"
            )
            return
        self._presses[str(query["id"])] = label
        self.note(f"(you) pressed [{number} {label}]")

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


def _split_path(argument: str) -> tuple[str, str]:
    """`subs.opml /import` -> ("subs.opml", "/import"); a path with spaces is quoted:
    `"my subs.opml" /import`."""
    if argument[:1] in {'"', "'"}:
        end = argument.find(argument[0], 1)
        if end < 0:
            raise FileRefused(f"no closing {argument[0]} after the file name")
        return argument[1:end], argument[end + 1 :].strip()
    path, _, caption = argument.partition(" ")
    return path, caption.strip()
