"""Typed application state shared with handlers (python-telegram-bot's `bot_data`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram.ext import CallbackContext, ExtBot

from bot.admin import Admin
from bot.categories import Categories
from bot.clock import Clock
from bot.clubs import Clubs
from bot.config import Settings
from bot.follows import Follows
from bot.healthy import HealthyUse
from bot.throttle import Throttle
from bot.tracker import Tracker
from bot.updates import HandledUpdates


@dataclass(slots=True)
class Services:
    """Everything a handler may call."""

    settings: Settings
    clock: Clock
    follows: Follows
    categories: Categories
    healthy: HealthyUse
    admin: Admin
    clubs: Clubs
    throttle: Throttle
    handled: HandledUpdates
    tracker: Tracker


class AppState:
    """`bot_data`: holds the services once the application is wired."""

    def __init__(self) -> None:
        self._services: Services | None = None

    def bind(self, services: Services) -> None:
        """Attach the services (done once at start-up)."""
        self._services = services

    @property
    def services(self) -> Services:
        """The services; an error if the application was not wired."""
        if self._services is None:
            raise RuntimeError("services are not bound yet")
        return self._services


Context = CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], AppState]
