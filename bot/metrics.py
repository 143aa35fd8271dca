"""The bot's Prometheus figures: this process's counters, and the shared state read from the
database at scrape time so that every worker reports the same backlog, X reads and poll lag.

Each application has a registry of its own (not prometheus_client's global one): tests run
several bots in one process, and nothing another library registers leaks into /metrics.
Counters are per process (Prometheus sums them over the workers it scrapes); gauges that
describe the database are the same whichever worker is asked.
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from telegram._utils.types import ODVInput
from telegram.request import BaseRequest, HTTPXRequest, RequestData

from bot.budget import month_key
from bot.clock import Clock
from bot.sources.feeds import FEED_KINDS
from storage import figures
from storage.db import Sessions

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
# A scrape flood reads the database at most once per CACHE_SECONDS; a read that hangs (a
# database that stopped answering) is given up after QUERY_SECONDS.
CACHE_SECONDS = 2.0
QUERY_SECONDS = 5.0
# Bot API methods that put a message in a chat.
MESSAGE_METHODS = frozenset({"sendmessage", "sendphoto", "senddocument"})


class Metrics:
    """The counters the bot moves and the gauges a scrape reads from the database."""

    def __init__(self, *, sessions: Sessions, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock
        self.registry = CollectorRegistry()
        r = self.registry
        self.updates = Counter(
            "jobrelay_updates",
            "Telegram updates this process received (long polling or webhook), repeats included",
            registry=r,
        )
        self.messages_sent = Counter(
            "jobrelay_messages_sent",
            "Messages Telegram accepted from this process (offers, digests, replies)",
            registry=r,
        )
        self.telegram_429 = Counter(
            "jobrelay_telegram_429",
            "Bot API calls of this process that Telegram answered 429 Too Many Requests",
            registry=r,
        )
        self.webhook_refused = Counter(
            "jobrelay_webhook_refused",
            "Webhook requests refused before reaching the bot (secret, size, body, not ready)",
            ["reason"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "jobrelay_outbox_pending",
            "Outbox rows not delivered yet (waiting, retrying or being sent); held rows excluded",
            registry=r,
        )
        self.outbox_oldest_pending_seconds = Gauge(
            "jobrelay_outbox_oldest_pending_seconds",
            "Age of the oldest outbox row not delivered yet (0 when there is none)",
            registry=r,
        )
        self.x_posts_read_month = Gauge(
            "jobrelay_x_posts_read_month",
            "Posts read from X this UTC month (what X bills), all processes together",
            registry=r,
        )
        self.poll_lag_seconds = Gauge(
            "jobrelay_poll_lag_seconds",
            "How long the most overdue poll has been due (0 when none is)",
            ["kind"],
            registry=r,
        )
        self.database_up = Gauge(
            "jobrelay_database_up",
            "1 when the last read of the shared figures succeeded (they keep their last values "
            "while it is 0)",
            registry=r,
        )
        for kind in ("x", "feed"):
            self.poll_lag_seconds.labels(kind=kind)
        for reason in ("secret", "size", "body", "not_ready"):
            self.webhook_refused.labels(reason=reason)
        # time.monotonic() of the last message Telegram accepted: a sender busy with a long
        # burst is alive even though its run has not ended (see bot.health).
        self.last_message_at: float | None = None
        self._fresh_until = 0.0
        self._database_ok: bool | None = None
        self._refreshing = asyncio.Lock()

    def message_accepted(self) -> None:
        """Count one message Telegram took."""
        self.messages_sent.inc()
        self.last_message_at = time.monotonic()

    async def render(self) -> bytes:
        """The Prometheus text exposition, the shared figures at most CACHE_SECONDS old."""
        await self._refresh()
        return generate_latest(self.registry)

    async def _refresh(self) -> None:
        """Read the shared figures unless a recent scrape did; concurrent scrapes share one
        read (they wait on the lock, then find the figures fresh)."""
        if time.monotonic() < self._fresh_until:
            return
        async with self._refreshing:
            if time.monotonic() < self._fresh_until:
                return
            try:
                async with asyncio.timeout(QUERY_SECONDS):
                    await self._read()
            except Exception as exc:
                if self._database_ok is not False:  # once per outage, not once per scrape
                    log.warning(
                        "metrics: the shared figures cannot be read (%s)", type(exc).__name__
                    )
                self._database_ok = False
                self.database_up.set(0)
            else:
                self._database_ok = True
                self.database_up.set(1)
            finally:
                # A failure is cached too: a scrape flood during an outage waits for nothing.
                self._fresh_until = time.monotonic() + CACHE_SECONDS

    async def _read(self) -> None:
        now = self._clock.now()
        async with self._sessions() as session:
            shared = await figures.read(
                session, now=now, month=month_key(now), feed_kinds=FEED_KINDS
            )
        self.outbox_pending.set(shared.outbox_pending)
        self.outbox_oldest_pending_seconds.set(shared.outbox_oldest_pending_seconds)
        self.x_posts_read_month.set(shared.x_posts_read_month)
        self.poll_lag_seconds.labels(kind="x").set(shared.x_poll_lag_seconds)
        self.poll_lag_seconds.labels(kind="feed").set(shared.feed_poll_lag_seconds)


class CountingRequest(HTTPXRequest):
    """python-telegram-bot's HTTP client, counting what Telegram answers: messages accepted
    and 429s (BaseRequest.do_request is the documented seam for custom networking)."""

    def __init__(self, metrics: Metrics, *, connection_pool_size: int = 256) -> None:
        super().__init__(connection_pool_size=connection_pool_size)
        self._metrics = metrics

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one Bot API request; count its answer."""
        status, body = await super().do_request(
            url,
            method,
            request_data,
            read_timeout,
            write_timeout,
            connect_timeout,
            pool_timeout,
        )
        if status == 429:
            self._metrics.telegram_429.inc()
        elif 200 <= status < 300 and url.rsplit("/", 1)[-1].lower() in MESSAGE_METHODS:
            self._metrics.message_accepted()
        return status, body
