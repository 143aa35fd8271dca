"""jobrelay: relays job offers posted on X to Telegram chats."""

import os

# Opt in to python-telegram-bot's timedelta durations now (the default from its next major).
os.environ.setdefault("PTB_TIMEDELTA", "true")
