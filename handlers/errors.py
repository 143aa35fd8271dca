"""The one error handler: log the failure with its traceback, tell the user something went wrong."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.context import Context
from handlers.clubs import addressed
from handlers.common import reply, translator_for

log = logging.getLogger(__name__)


async def on_error(update: object, context: Context) -> None:
    """Log every unhandled error; apologise in the chat when the update was addressed to the
    bot; and stop there: a step that runs before every command (noting the chat, claiming the
    update) failed, so the command must not run on what it left undone (a /follow with no
    chat row would fail again, on a foreign key, and apologise twice)."""
    log.error("unhandled error while processing an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None and addressed(update):
        t = translator_for(update)
        try:
            await reply(
                update,
                t.gettext("Something went wrong on our side; please try again in a minute."),
            )
        except Exception:  # the chat itself may be the problem; the log already has it
            log.debug("could not send the apology", exc_info=True)
    raise ApplicationHandlerStop
