"""The bot's HTTP server on PORT: /healthz, /metrics and, in webhook mode, Telegram's POSTs.

One small aiohttp server of our own rather than python-telegram-bot's `Updater.start_webhook`:
PTB's server (tornado, not installed) serves only the webhook path, while one PORT must serve
the webhook, /healthz and /metrics together; aiohttp is a dependency already.

The port faces the internet. Every request is cheap or bounded: the request line and headers
are capped in size and count, a connection that has not sent a whole request within
KEEPALIVE_SECONDS is closed (aiohttp's keep-alive timer runs from the connection's start, so
it is also the header timeout), bodies are read only for an authentic webhook POST (bounded
in size and time), /healthz and /metrics reuse their last answer for a second or two. Anything
else is 404 (405 for another method on a known path), in one short line, never a traceback.

A stranger's malformed request (a header over the limit, a bad method, broken framing) is
answered 400 by aiohttp and not logged: aiohttp logs it as an ERROR with a traceback, which
let anybody write 4 KB of log per request, as often as they liked. Connections are capped
(MAX_CONNECTIONS): each open one costs a file descriptor, and a stranger holding thousands
left the bot none to reach Telegram or the database; one over the cap is answered 503 and
closed at once.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.health import Health
from bot.metrics import CONTENT_TYPE, Metrics
from bot.webhook import MAX_BODY_BYTES, WebhookReceiver

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
MAX_LINE_BYTES = 4096  # the request line, and each header
MAX_HEADERS = 32
READS = frozenset({"GET", "HEAD"})
# Far above what Telegram (40 connections by default), a load balancer and a scraper open
# together, far below a process's file descriptors. (A burst of accepts may pass it by up to
# the listen backlog before the new connections are counted.)
MAX_CONNECTIONS = 512
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 5\r\nConnection: close\r\n\r\nbusy\n"
)


class _QuietBadRequests(logging.Filter):
    """Drops aiohttp's report of a malformed request (the client's fault, answered 400): a
    stranger controls how many there are. An error in our own handlers is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a malformed request's record."""
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, HttpProcessingError)


# aiohttp's messages about requests on this server (passed to aiohttp as its logger).
server_log = logging.getLogger("bot.web.server")
server_log.addFilter(_QuietBadRequests())


class _Busy(asyncio.Protocol):
    """A connection over MAX_CONNECTIONS: one short 503, then closed without reading."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Answer and close."""
        assert isinstance(transport, asyncio.Transport)
        transport.write(BUSY)
        transport.close()


class StartError(Exception):
    """The server cannot listen (port taken, address not available)."""


def _text(status: int, text: str, **headers: str) -> web.Response:
    return web.Response(
        status=status,
        text=text + "\n",
        headers={"Cache-Control": "no-store", **headers},
    )


class WebServer:
    """Serves /healthz, /metrics and the webhook path on HOST:PORT."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        health: Health,
        metrics: Metrics,
        webhook: WebhookReceiver | None = None,
        webhook_path: str = "/",
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._host = host
        self._port = port
        self._health = health
        self._metrics = metrics
        self._webhook = webhook
        self._webhook_path = webhook_path or "/"
        self._max_connections = max_connections
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one asked for, or the one picked for port 0)."""
        if self._listener is None or not self._listener.sockets:
            return self._port
        return int(self._listener.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen; StartError with a clear line when the address cannot be used."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._route)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=2.0,
            keepalive_timeout=KEEPALIVE_SECONDS,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_LINE_BYTES,
            max_headers=MAX_HEADERS,
            logger=server_log,
        )
        await runner.setup()
        server = runner.server
        assert server is not None

        def connection() -> asyncio.BaseProtocol:
            # (aiohttp's low-level server is a protocol factory; TCPSite would call it with
            # no cap, hence our own listener)
            if len(server.connections) >= self._max_connections:
                return _Busy()
            return server()

        try:
            self._listener = await asyncio.get_running_loop().create_server(
                connection, self._host, self._port
            )
        except OSError as exc:
            await runner.cleanup()
            raise StartError(
                f"cannot listen on HOST {self._host} PORT {self._port}: {exc.strerror or exc}"
            ) from None
        self._runner = runner
        what = "/healthz, /metrics" + (
            f" and the webhook {self._webhook_path}" if self._webhook else ""
        )
        log.info("serving %s on %s:%d", what, self._host, self.port)

    async def stop(self) -> None:
        """Stop listening and close the connections."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _route(self, request: web.Request) -> web.StreamResponse:
        response = await self._answer(request)
        if request.body_exists and response.status != 200:
            # A body nobody reads is not drained either: the connection just ends.
            response.force_close()
        return response

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if self._webhook is not None and path == self._webhook_path:
            if request.method != "POST":
                return _text(405, "method not allowed", Allow="POST")
            return await self._webhook.handle(request)
        if path == "/healthz":
            if request.method not in READS:
                return _text(405, "method not allowed", Allow="GET, HEAD")
            reason = await self._health.verdict()
            return _text(200, "ok") if reason is None else _text(503, reason)
        if path == "/metrics":
            if request.method not in READS:
                return _text(405, "method not allowed", Allow="GET, HEAD")
            body = await self._metrics.render()
            return web.Response(
                body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
            )
        return _text(404, "not found")
