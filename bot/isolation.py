"""One chat's failure inside a batch (the sender's claim, the digests, the weekly summaries) is
that chat's alone: logged with the chat's id, the chat skipped and tried again later, the
batch carried on."""

from __future__ import annotations

import logging


class ChatFailures:
    """Reports the chats a batch had to skip: the first failure of a chat (per kind of error)
    as a warning with its traceback, the same failure again at debug level only, so a chat
    that fails at every tick (a time zone this host cannot load) does not flood the log."""

    def __init__(self, log: logging.Logger, work: str) -> None:
        self._log = log
        self._work = work
        self._reported: dict[int, str] = {}

    def failed(self, chat_id: int, error: Exception, then: str) -> None:
        """`work` failed for this chat; `then` says what becomes of it (it is never lost)."""
        kind = f"{type(error).__name__}: {error}"
        first = self._reported.get(chat_id) != kind
        self._reported[chat_id] = kind
        self._log.log(
            logging.WARNING if first else logging.DEBUG,
            "%s for chat %s failed (%s); %s",
            self._work,
            chat_id,
            kind,
            then,
            exc_info=error if first else None,
        )

    def recovered(self, chat_id: int) -> None:
        """The chat works again: a new failure is reported in full."""
        self._reported.pop(chat_id, None)
