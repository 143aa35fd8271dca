"""The operator's job boards: X accounts polled for category followers even when no chat
follows them by name (BOARDS_FILE, a TOML file: `accounts = ["@indeed_fr", "@apec"]`)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bot.arguments import parse_handle

MAX_BOARDS = 500


def load_boards(path: Path) -> list[str]:
    """The handles listed in a boards file; ValueError with a clear message when malformed."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid TOML ({exc})") from None
    accounts = data.get("accounts")
    if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
        raise ValueError(f'{path} needs a list of X handles: accounts = ["@indeed_fr", "@apec"]')
    handles: list[str] = []
    for account in accounts:
        handle = parse_handle(account)
        if handle is None:
            raise ValueError(f"{path}: {account!r} is not an X handle (like @acme_jobs)")
        if handle.lower() not in {h.lower() for h in handles}:
            handles.append(handle)
    if len(handles) > MAX_BOARDS:
        raise ValueError(f"{path} lists {len(handles)} accounts; at most {MAX_BOARDS}")
    return handles
