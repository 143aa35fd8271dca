"""Files between the sandbox's terminal and the bot: copies of what the bot sends, and files the
user sends from this machine (bounded like Telegram bounds what a bot may download)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from bot.sandbox.telegram_api import MAX_DOWNLOAD_BYTES

_UNSAFE_NAME_CHARS = re.compile(r"[^\w.-]+")
_IMAGE_SUFFIXES = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"GIF8": ".gif", b"RIFF": ".webp"}


class FileRefused(ValueError):
    """A file the terminal will not send; the message says why, in one line."""


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


def safe_file_name(name: str | None, fallback: str) -> str:
    """A name the bot gave a file, made safe to save under: no directories, no odd characters."""
    base = _UNSAFE_NAME_CHARS.sub("_", Path(name or "").name).strip("._")[:100]
    return base or fallback


def image_suffix(data: bytes) -> str:
    """`.png`, `.jpg`, … from an image's first bytes (`.bin` when unknown)."""
    return next((s for magic, s in _IMAGE_SUFFIXES.items() if data.startswith(magic)), ".bin")


def save_copy(directory: Path, name: str, data: bytes) -> Path:
    """Write `data` as directory/name, or name-2, name-3… if taken (an earlier copy is never
    overwritten); returns the path. OSError when the directory cannot be made or written."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    stem, suffix, number = target.stem, target.suffix, 1
    while True:
        try:
            with target.open("xb") as file:
                file.write(data)
        except FileExistsError:
            number += 1
            target = directory / f"{stem}-{number}{suffix}"
        else:
            return target


def read_to_send(path: Path) -> bytes:
    """The bytes of a file the user sends to the bot; FileRefused says why not (missing,
    unreadable, not a regular file, empty, or over the 20 MB a bot may download)."""
    limit = human_size(MAX_DOWNLOAD_BYTES)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FileRefused(f"no such file: {path}") from None
    except OSError as exc:
        raise FileRefused(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise FileRefused(f"{path} is a directory: give the path of a file")
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(f"{path} is not a regular file")
    too_big = (
        f"{path} is {{size}}: a bot can download files of at most {limit} from Telegram, "
        "so it would never get this one"
    )
    if info.st_size > MAX_DOWNLOAD_BYTES:
        raise FileRefused(too_big.format(size=human_size(info.st_size)))
    try:
        with path.open("rb") as file:
            data = file.read(MAX_DOWNLOAD_BYTES + 1)  # bounded, even if the file grew
    except OSError as exc:
        raise FileRefused(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise FileRefused(too_big.format(size=f"over {limit}"))
    if not data:
        raise FileRefused(f"{path} is empty: Telegram does not send empty files")
    return data
