"""Logging set-up: one line per event, library chatter turned down, secrets never printed."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

REDACTED = "[REDACTED]"


class RedactSecrets(logging.Filter):
    """Replaces every configured secret in a record's final message by [REDACTED]."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        if not self._secrets:
            return True
        message = record.getMessage()
        text = message
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, REDACTED)
        if text != message:
            record.msg, record.args = text, None
        return True


def configure_logging(
    secrets: Iterable[str] = (), level: int = logging.INFO, file: str | None = None
) -> None:
    """Log to stderr; the httpx logger (URLs carry the bot token) and tweepy's
    debug output (headers carry the bearer token) are kept above the levels that print them."""
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact = RedactSecrets(secrets)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    handlers: list[logging.Handler] = [console]
    if file is not None:
        handlers.append(logging.FileHandler(file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redact)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(logging.INFO if file is not None else level)
    for noisy in (
        "httpx",
        "httpcore",
        "tweepy",
        "apscheduler",
        "aiosqlite",
        "asyncio",
        "alembic",  # one line per revision and per connection: migrations report in one line
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
