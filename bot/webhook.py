"""Telegram's updates by webhook: what Telegram POSTs to WEBHOOK_URL goes to the application's
update queue, as long polling's updates do (the same handlers, the same claim of each
update_id in `handled_updates`, so an update POSTed twice, or to two workers, is handled once).

The path is public: anybody can POST to it. A request is refused before its body is read
unless it carries the secret given to setWebhook (compared in constant time); the body is
bounded in size and in time; only then is it parsed. Telegram is answered as soon as the
update is queued: it waits for no handler, and retries only what was not answered 2xx.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.metrics import Metrics

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
# Telegram's updates are a few kilobytes (a message of 4096 characters with its entities);
# anything near this size is not from Telegram.
MAX_BODY_BYTES = 1024 * 1024
BODY_SECONDS = 10.0


def _refusal(status: int, text: str) -> web.Response:
    """A short plain answer; the connection is closed after it (the rest of the request, if
    any, is never read)."""
    response = web.Response(status=status, text=text + "\n")
    response.force_close()
    return response


class WebhookReceiver:
    """Takes the updates Telegram POSTs and queues them for the application."""

    def __init__(
        self,
        *,
        application: Application[Any, Any, Any, Any, Any, Any],
        secret: str,
        metrics: Metrics,
    ) -> None:
        self._application = application
        self._secret = secret.encode()
        self._metrics = metrics
        # Off until the application runs, and again from the stop on: Telegram is answered
        # 503 meanwhile and delivers the update again later (nothing is queued that no one
        # would handle).
        self.accepting = False

    def authentic(self, request: web.Request) -> bool:
        """Whether the request carries the webhook's secret (constant-time comparison)."""
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        return hmac.compare_digest(given, self._secret)

    async def handle(self, request: web.Request) -> web.Response:
        """One POST from Telegram (or from anybody)."""
        if not self.authentic(request):
            self._metrics.webhook_refused.labels(reason="secret").inc()
            return _refusal(403, "forbidden")
        if not self.accepting:
            self._metrics.webhook_refused.labels(reason="not_ready").inc()
            return _refusal(503, "not ready")
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            self._metrics.webhook_refused.labels(reason="size").inc()
            return _refusal(413, "too large")
        try:
            async with asyncio.timeout(BODY_SECONDS):
                body = await request.read()  # bounded by the server's client_max_size too
        except web.HTTPRequestEntityTooLarge:
            self._metrics.webhook_refused.labels(reason="size").inc()
            return _refusal(413, "too large")
        except TimeoutError:
            self._metrics.webhook_refused.labels(reason="body").inc()
            return _refusal(408, "too slow")
        update = self._parse(body)
        if update is None:
            self._metrics.webhook_refused.labels(reason="body").inc()
            return _refusal(400, "not an update")
        await self._application.update_queue.put(update)
        return web.Response(status=200)

    def _parse(self, body: bytes) -> Update | None:
        """The update in a body, or None (logged: only Telegram knows the secret, so a bad
        body means a bug or a changed API, worth a line)."""
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("no update_id")
            return Update.de_json(data, self._application.bot)
        except Exception as exc:
            log.warning("webhook: a request with the right secret carried no update (%s)", exc)
            return None
