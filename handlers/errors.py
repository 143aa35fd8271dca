"""The one error handler: log the failure with its traceback, tell the user something went wrong."""

from __future__ import annotations

import logging

from telegram import Update

from bot.context import Context
from handlers.common import reply, translator_for

log = logging.getLogger(__name__)


async def on_error(update: object, context: Context) -> None:
    """Log every unhandled error; apologise in the chat when there is one."""
    log.error("unhandled error while processing an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None:
        t = translator_for(update)
        try:
            await reply(
                update,
                t.gettext("Something went wrong on my side; please try again in a moment."),
            )
        except Exception:  # the chat itself may be the problem; the log already has it
            log.debug("could not send the apology", exc_info=True)
