"""Builds and runs the bot: the Telegram application, the X source, the poller and the sender."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from telegram import BotCommand, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.admin import Admin
from bot.boards import Boards, load_boards
from bot.categories import Categories
from bot.classify import catalogue
from bot.clock import Clock, SystemClock
from bot.clubs import Clubs
from bot.config import Settings
from bot.context import AppState, Context, Services
from bot.delivery import Sender
from bot.digests import DigestWorker
from bot.feed_polling import FeedPoller
from bot.follows import Follows
from bot.health import Health
from bot.healthy import HealthyUse
from bot.i18n import languages, translator
from bot.liveness import Liveness, no_owner
from bot.metrics import CountingRequest, Metrics
from bot.ordering import PerChatUpdateProcessor
from bot.polling import Poller
from bot.receiver import UpdateReceiver
from bot.retention import Retention
from bot.send_gate import GatedRateLimiter, SendGate, gate_of, share_rate
from bot.shared_rate import SharedRate
from bot.single_flight import SingleFlight
from bot.sources.feeds import FeedFetcher
from bot.sources.x import XSource
from bot.throttle import Throttle
from bot.tracker import Tracker
from bot.updates import HandledUpdates
from bot.web import StartError, WebServer
from bot.webhook import WebhookReceiver
from handlers import register
from handlers.start import command_descriptions
from storage import leases
from storage.db import create_engine, create_session_factory, is_sqlite
from storage.sqlite_owner import SQLiteInUse, sole_process

log = logging.getLogger(__name__)

TelegramApp = Application[Any, Context, Any, Any, AppState, Any]
PRUNE_INTERVAL_SECONDS = 86_400.0
PRUNE_FIRST_SECONDS = 60.0
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]


class StartupError(Exception):
    """The bot cannot start; the message says why and what to do."""


class Receiving(enum.Enum):
    """How this process receives Telegram's updates."""

    POLLING = "polling"  # getUpdates (on PostgreSQL, by the one process elected)
    WEBHOOK = "webhook"  # Telegram POSTs to WEBHOOK_URL, served on PORT (every web process)
    NONE = "none"  # this process polls X and sends, nothing else


def receiving_mode(settings: Settings) -> Receiving:
    """Long polling by default; the webhook with WEBHOOK_URL and PORT. A process with
    WEBHOOK_URL but no PORT (a platform's worker beside its web processes) receives nothing:
    long polling would delete the webhook the web processes serve."""
    if not settings.receive_updates:
        return Receiving.NONE
    if settings.webhook_url is not None:
        return Receiving.WEBHOOK if settings.port is not None else Receiving.NONE
    return Receiving.POLLING


def file_url_for(api_url: str) -> str:
    """Bot API file URL matching a base URL (`.../bot` -> `.../file/bot`)."""
    base = api_url.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("bot")] + "file/bot"
    return base + "/file/bot"


def build_application(
    settings: Settings, token: str, metrics: Metrics | None = None
) -> TelegramApp:
    """The python-telegram-bot application with jobrelay's handlers and rate limits (this
    process's share of Telegram's ~30 messages/s: SEND_RATE_PER_SECOND).

    Requests that name a chat go one at a time, every 1/SEND_RATE_PER_SECOND s. AIORateLimiter's
    bucket lets `overall_max_rate` requests through at once before metering: 30 a second meant
    30 at once and 30 more within that same second, and a fifth of the sends of a
    6,000-message burst were answered 429 (BENCHMARKS.md). A bucket of one never lets more
    than the rate into any second. Outbox sends also pass the send gate (bot.send_gate).
    With `metrics`, Telegram's answers and the updates received are counted.
    """
    # getUpdates' timeout first: PTB refuses any request parameter once `request` is given.
    builder = ApplicationBuilder().get_updates_read_timeout(35)
    if metrics is not None:
        builder = builder.request(CountingRequest(metrics))
    application = (
        builder.token(token)
        .base_url(settings.telegram_api_url)
        .base_file_url(file_url_for(settings.telegram_api_url))
        .context_types(ContextTypes(bot_data=AppState))
        # Telegram: ~30 messages/s overall, 20/min per group; on a 429 everything pauses.
        .rate_limiter(
            GatedRateLimiter(
                SendGate(),
                overall_max_rate=1,
                overall_time_period=1 / settings.send_rate_per_second,
                group_max_rate=20,
                max_retries=2,
            )
        )
        .concurrent_updates(PerChatUpdateProcessor())
        .build()
    )
    register(application)
    if metrics is not None:

        async def count(_update: Update, _context: Context) -> None:
            metrics.updates.inc()

        # Before the throttle: every update received, whatever becomes of it.
        application.add_handler(TypeHandler(Update, count), group=-4)
    return application


async def register_commands(application: TelegramApp) -> None:
    """The command menu in every language (the default menu is English)."""
    for language in languages():
        commands = [
            BotCommand(name, text) for name, text in command_descriptions(translator(language))
        ]
        code = None if language == "en" else language
        await application.bot.set_my_commands(commands, language_code=code)


async def _initialize(application: TelegramApp, stop: asyncio.Event) -> bool:
    """`initialize()` with retries while Telegram is unreachable; False if stopped meanwhile."""
    delay = 1.0
    while not stop.is_set():
        try:
            await application.initialize()
            await register_commands(application)
            return True
        except InvalidToken:
            raise StartupError(
                "Telegram refused TELEGRAM_BOT_TOKEN: check it with @BotFather"
            ) from None
        except NetworkError as exc:
            log.warning("Telegram unreachable at start-up (%s); retrying in %.0f s", exc, delay)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                delay = min(delay * 2, 60)
    return False


async def _set_webhook(application: TelegramApp, settings: Settings, stop: asyncio.Event) -> None:
    """setWebhook (every web process sets the same one: it is idempotent), retried while
    Telegram is unreachable; a refused URL stops the bot with Telegram's reason."""
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    delay = 1.0
    while not stop.is_set():
        try:
            await application.bot.set_webhook(
                url=settings.webhook_url,
                secret_token=settings.webhook_secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("receiving Telegram's updates by webhook at %s", settings.webhook_url)
            return
        except BadRequest as exc:
            raise StartupError(f"Telegram refused WEBHOOK_URL: {exc.message}") from None
        except NetworkError as exc:
            log.warning("setWebhook failed (%s); retrying in %.0f s", exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 60)


async def serve(
    settings: Settings,
    *,
    token: str,
    stop: asyncio.Event,
    clock: Clock | None = None,
) -> None:
    """Run the bot until `stop` is set: updates, polling and delivery. On SQLite, as the
    file's only process (storage.sqlite_owner): it takes every lease it finds as its own."""
    if not is_sqlite(settings.database_url):
        await _serve(settings, token=token, stop=stop, clock=clock)
        return
    try:
        async with sole_process(settings.database_url):
            await _serve(settings, token=token, stop=stop, clock=clock)
    except SQLiteInUse as exc:  # (only ever raised as the block is entered)
        raise StartupError(str(exc)) from None


async def _serve(
    settings: Settings,
    *,
    token: str,
    stop: asyncio.Event,
    clock: Clock | None = None,
) -> None:
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    sessions = create_session_factory(engine)
    x: XSource | None = None
    if settings.x_bearer_token is not None:
        x = XSource(settings.x_bearer_token.get_secret_value(), settings.x_api_url)
        await x.start()
    metrics = Metrics(sessions=sessions, clock=clock)
    application = build_application(settings, token, metrics)
    # Several processes may share PostgreSQL: they beat (a dead one's leases are taken over
    # within seconds) and share one send rate, as Telegram counts per bot.
    liveness: Liveness | None = None
    if not is_sqlite(settings.database_url):
        liveness = Liveness(
            sessions=sessions,
            clock=clock,
            dead_after_seconds=settings.worker_dead_after_seconds,
        )
        share_rate(
            application.bot, SharedRate(engine, rate_per_second=settings.send_rate_per_second)
        )
    owner = liveness.owner if liveness is not None else no_owner
    if liveness is not None:
        # No outbox send leaves while the others may find this process dead (bot.liveness).
        gate_of(application.bot).fence = liveness.fresh
    liveness_stop = asyncio.Event()
    beating: asyncio.Task[None] | None = None
    fetcher = FeedFetcher(
        allow_private=settings.allow_private_feeds,
        host_map=settings.feed_hosts,
        parse_seconds=settings.feed_parse_seconds,
    )
    follows = Follows(
        sessions=sessions,
        clock=clock,
        x=x,
        default_timezone=settings.default_timezone,
        fetcher=fetcher,
        feed_interval_seconds=settings.poll_interval_seconds,
        lookups_per_user_per_day=settings.x_lookups_per_user_per_day,
        monthly_budget=settings.x_monthly_post_read_budget,
    )
    admin = Admin(
        sessions=sessions,
        clock=clock,
        admin_user_ids=settings.admin_user_ids,
        monthly_budget=settings.x_monthly_post_read_budget,
    )
    sender = Sender(
        sessions=sessions,
        clock=clock,
        bot=application.bot,
        lease_seconds=settings.delivery_lease_seconds,
        default_daily_limit=settings.default_daily_limit,
        concurrency=settings.send_concurrency,
        group_pace=timedelta(seconds=settings.group_pace_seconds),
        owner=owner,
    )
    delivering = SingleFlight("delivery", sender.drain)
    digest_worker = DigestWorker(
        sessions=sessions,
        clock=clock,
        bot=application.bot,
        default_daily_limit=settings.default_daily_limit,
    )
    digesting = SingleFlight("digests", digest_worker.tick)

    def settings_changed() -> None:
        digesting.kick()
        delivering.kick()

    healthy = HealthyUse(
        sessions=sessions,
        clock=clock,
        digests=digest_worker,
        default_daily_limit=settings.default_daily_limit,
        on_change=settings_changed,
    )
    categories = Categories(sessions=sessions, clock=clock, catalogue=catalogue())
    clubs = Clubs(
        sessions=sessions,
        clock=clock,
        default_timezone=settings.default_timezone,
        group_digest=settings.default_group_mode == "digest",
    )
    application.bot_data.bind(
        Services(
            settings=settings,
            clock=clock,
            follows=follows,
            categories=categories,
            healthy=healthy,
            admin=admin,
            clubs=clubs,
            throttle=Throttle(settings.commands_per_minute, settings.admin_user_ids),
            handled=HandledUpdates(sessions=sessions, clock=clock),
            tracker=Tracker(sessions=sessions, clock=clock),
        )
    )
    polling: SingleFlight | None = None
    if x is not None:
        poller = Poller(
            sessions=sessions,
            clock=clock,
            x=x,
            interval_seconds=settings.poll_interval_seconds,
            on_new_deliveries=delivering.kick,
            monthly_budget=settings.x_monthly_post_read_budget,
            operators=settings.admin_user_ids,
            silent_check=timedelta(seconds=settings.x_silent_account_check_seconds),
            curated_only=settings.category_sources == "curated",
            owner=owner,
        )
        polling = SingleFlight("polling", poller.tick)
    else:
        log.warning("X_BEARER_TOKEN is not set: /follow will say X is not configured")
    feed_poller = FeedPoller(
        sessions=sessions,
        clock=clock,
        fetcher=fetcher,
        interval_seconds=settings.poll_interval_seconds,
        on_new_deliveries=delivering.kick,
        pause_after_seconds=settings.feed_pause_after_seconds,
        curated_only=settings.category_sources == "curated",
        owner=owner,
    )
    feed_polling = SingleFlight("feeds", feed_poller.tick)
    retention = Retention(sessions=sessions, clock=clock, days=settings.retention_days)
    pruning = SingleFlight("retention", retention.prune)
    background: set[asyncio.Task[None]] = set()
    receiving: asyncio.Task[None] | None = None
    mode = receiving_mode(settings)
    loops = [("sender", delivering), ("feed poller", feed_polling)]
    if polling is not None:
        loops.append(("X poller", polling))
    health = Health(
        sessions=sessions,
        loops=loops,
        progress=lambda name: metrics.last_message_at if name == "sender" else None,
    )
    webhook: WebhookReceiver | None = None
    if mode is Receiving.WEBHOOK:
        assert settings.webhook_secret is not None
        webhook = WebhookReceiver(
            application=application,
            secret=settings.webhook_secret.get_secret_value(),
            metrics=metrics,
        )
    server: WebServer | None = None
    if settings.port is not None:
        server = WebServer(
            host=settings.host,
            port=settings.port,
            health=health,
            metrics=metrics,
            webhook=webhook,
            # (aiohttp gives each request's path decoded: %20 is a space there)
            webhook_path=unquote(urlsplit(settings.webhook_url or "").path),
        )

    async def start_receiving() -> None:
        assert application.updater is not None
        await application.updater.start_polling(
            allowed_updates=ALLOWED_UPDATES, error_callback=polling_failed
        )

    async def stop_receiving() -> None:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()

    if is_sqlite(settings.database_url):
        # An SQLite file serves one process: a lease found now is a killed run's, and would
        # hold its rows and polls until it ran out (a minute, five).
        async with sessions.begin() as session:
            released = await leases.release_all(session, now=clock.now())
        if released:
            log.info("released %d lease(s) left by a previous run", released)
    elif liveness is not None:

        def taken_over() -> None:
            for flight in (delivering, polling, feed_polling):
                if flight is not None:
                    flight.kick()

        liveness.on_takeover = taken_over
        await liveness.start()  # registered before any lease is taken
        beating = asyncio.create_task(liveness.run(liveness_stop))
    try:
        if server is not None:
            # Listening before Telegram is reached: a platform waits for the port to open;
            # /healthz says "starting" until the bot runs.
            try:
                await server.start()
            except StartError as exc:
                raise StartupError(str(exc)) from None
        if not await _initialize(application, stop):
            return
        try:
            await application.start()
            if mode is Receiving.NONE:
                if not settings.receive_updates:
                    log.info("RECEIVE_UPDATES=false: this process polls X and sends, nothing else")
                else:
                    log.warning(
                        "WEBHOOK_URL is set but PORT is not: Telegram's updates go to the web "
                        "processes; this one polls X and sends, nothing else"
                    )
            elif webhook is not None:
                # Every web process takes updates behind the load balancer: no election.
                webhook.accepting = True
                await _set_webhook(application, settings, stop)
            elif is_sqlite(settings.database_url):
                await start_receiving()  # an SQLite file serves one process
            else:
                # Several processes may share PostgreSQL: one of them receives (a lock says which).
                receiver = UpdateReceiver(engine=engine, start=start_receiving, stop=stop_receiving)
                receiving = asyncio.create_task(receiver.run(stop))
            job_queue = application.job_queue
            assert job_queue is not None
            job_queue.run_repeating(
                lambda _ctx: _kick(delivering),
                interval=settings.delivery_interval_seconds,
                first=0.1,
                name="delivery",
            )
            job_queue.run_repeating(
                lambda _ctx: _kick(digesting),
                interval=settings.digest_interval_seconds,
                first=0.3,
                name="digests",
            )
            if polling is not None:
                job_queue.run_repeating(
                    lambda _ctx: _kick(polling),
                    interval=min(settings.poll_interval_seconds / 2, 5.0),
                    first=0.2,
                    name="polling",
                )
            job_queue.run_repeating(
                lambda _ctx: _kick(feed_polling),
                interval=min(settings.poll_interval_seconds / 2, 5.0),
                first=0.25,
                name="feeds",
            )
            # Once a day, starting a minute after start-up (a bot restarted more often than
            # daily still prunes; several processes pruning at once only find less to do).
            job_queue.run_repeating(
                lambda _ctx: _kick(pruning),
                interval=PRUNE_INTERVAL_SECONDS,
                first=PRUNE_FIRST_SECONDS,
                name="retention",
            )
            if settings.boards_file is not None:
                boards = load_boards(settings.boards_file)
                background.add(asyncio.create_task(_sync_boards(follows, boards, stop)))
            me = application.bot.username
            health.phase = None
            log.info("jobrelay is running as @%s", me)
            await stop.wait()
            log.info("stopping")
        finally:
            health.phase = "stopping"
            if webhook is not None:
                # Telegram is answered 503 from now on and delivers again later (to another
                # worker, or to this one after its restart); what was queued is handled below.
                webhook.accepting = False
            # Unschedule our ticks first: a tick firing while the scheduler shuts down would be
            # cancelled mid-run (and APScheduler logs that as an error).
            if application.job_queue is not None:
                for job in application.job_queue.jobs():
                    job.schedule_removal()
            if receiving is not None:
                # It sees `stop` and lets its lock go; cancelled only if it cannot.
                try:
                    await asyncio.wait_for(receiving, 10)
                except Exception:
                    log.exception("the update receiver did not stop cleanly")
            await stop_receiving()
            if application.running:
                await application.stop()
            sender.stop()
            retention.stop()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if polling is not None:
                await polling.wait_idle()
            await feed_polling.wait_idle()
            await delivering.wait_idle()
            await digesting.wait_idle()
            await pruning.wait_idle()
            await application.shutdown()
    finally:
        if beating is not None:
            # Only now: a process still sending must keep beating, or the others would take
            # its rows over mid-send.
            liveness_stop.set()
            await asyncio.gather(beating, return_exceptions=True)
        if server is not None:
            await server.stop()
        if x is not None:
            await x.close()
        await fetcher.aclose()
        await engine.dispose()


def polling_failed(error: TelegramError) -> None:
    """getUpdates failed (python-telegram-bot retries it, every 1 to 30 s): one line, no
    traceback (the default callback logs each failure at ERROR with one)."""
    log.warning("receiving updates failed (%s: %s); retrying", type(error).__name__, error)


async def _sync_boards(follows: Follows, boards: Boards, stop: asyncio.Event) -> None:
    """Resolve the operator's job boards, retrying while X or a feed cannot answer."""
    delay = 5.0
    while not stop.is_set():
        try:
            if await follows.sync_boards(boards):
                return
        except Exception:
            log.exception("setting up the job boards failed; will retry")
        log.info("the job boards could not all be checked; retrying in %.0f s", delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 600.0)


async def _kick(flight: SingleFlight) -> None:
    flight.kick()
