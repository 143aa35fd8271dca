"""Issue #6: delivery under faults. The real bot is killed, Telegram fails or hangs, and
afterwards every message has arrived, and none twice unless the fault makes a copy
unavoidable (Telegram accepted it but the bot never heard so); such copies are counted,
printed and bounded."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import re
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.sandbox.telegram_api import SentMessage, TelegramStandIn
from storage.db import create_engine
from storage.models import Delivery, DeliveryStatus, Offer
from tests.e2e.harness import (
    BotProcess,
    MutedUpdates,
    Stack,
    User,
    eventually,
    log_records,
    x_reads,
)


class Ledger:
    """Which offer reached which chat, and when each copy was accepted by the stand-in."""

    def __init__(self, tg: TelegramStandIn, offers: list[str]) -> None:
        self.tg = tg
        self.offers = offers
        self.copies: dict[tuple[int, int], list[float]] = defaultdict(list)
        self.messages: list[tuple[int, SentMessage]] = []  # (offer index, copy)
        self._scanned = 0

    def update(self) -> Ledger:
        sent = self.tg.sent
        end = len(sent)
        for message in sent[self._scanned : end]:
            for index, marker in enumerate(self.offers):
                if marker in message.text:
                    self.copies[(message.chat_id, index)].append(message.date)
                    self.messages.append((index, message))
        self._scanned = end
        return self

    @property
    def total(self) -> int:
        """Every copy of every offer sent so far."""
        return sum(len(dates) for dates in self.update().copies.values())

    def missing(self, users: list[User]) -> set[tuple[int, int]]:
        self.update()
        wanted = {(u.chat_id, i) for u in users for i in range(len(self.offers))}
        return wanted - set(self.copies)

    def duplicates(self) -> dict[tuple[int, int], list[float]]:
        return {key: dates for key, dates in self.update().copies.items() if len(dates) > 1}

    def in_order(self, users: list[User], account: Callable[[int], object] | None = None) -> bool:
        """Each chat got each account's offers (first copies) in the order they were posted
        (`account(i)` names the account of offer i; by default all are one account's)."""
        for user in users:
            firsts = sorted(
                (dates[0], i) for (chat, i), dates in self.copies.items() if chat == user.chat_id
            )
            by_account: dict[object, list[int]] = defaultdict(list)
            for _, i in firsts:
                by_account[account(i) if account else None].append(i)
            if any(order != sorted(order) for order in by_account.values()):
                return False
        return True


async def _followers(stack: Stack, count: int, handle: str = "acme_jobs") -> list[User]:
    """`count` users who follow @handle, once the bot has answered them all and polled."""
    users = [stack.user() for _ in range(count)]
    for user in users:
        user.say(f"/follow @{handle}")
    await eventually(
        lambda: all(len(u.received()) >= 1 for u in users), 60, f"{count} follow replies"
    )
    await x_reads(stack.x, handle, count=1)  # a poll: what is posted next is new
    return users


def _seed() -> int:
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"fault seed {seed} (FAULT_SEED={seed} replays these kill moments)")
    return seed


async def _recorded_sends(database_url: str) -> set[tuple[int, int]]:
    """(chat, Telegram message id) of every offer the database says was sent."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Delivery.chat_id, Delivery.message_id)
                .join(Offer, Offer.id == Delivery.offer_id)
                .where(Delivery.status == DeliveryStatus.SENT)
            )
            return {(int(chat), int(message)) for chat, message in rows if message is not None}
    finally:
        await engine.dispose()


async def _restart_and_find_orphans(
    stack: Stack, ledger: Ledger, users: list[User]
) -> tuple[int, list[SentMessage]]:
    """After a kill -9: how many sends the database had recorded, then, once the restarted
    bot delivered every offer, the copies Telegram accepted that the database never recorded."""
    recorded_at_kill = len(await _recorded_sends(stack.database_url))
    await stack.bot.start()
    await eventually(lambda: not ledger.missing(users), 30, "every offer delivered")
    # Every post is delivered: the rows still out would show up now. (Not quiet():
    # on PostgreSQL a poll the kill cut keeps its group leased for minutes.)
    await stack.db.idle()
    assert not ledger.missing(users)
    recorded = await _recorded_sends(stack.database_url)
    orphans = [m for _, m in ledger.update().messages if (m.chat_id, m.message_id) not in recorded]
    return recorded_at_kill, orphans


class TooManyDuplicates(Exception):
    """More extra copies than the issue allows (raised apart from the other checks, so an
    exception for it never hides a lost message)."""


async def test_kill_9_at_twenty_random_moments_of_a_thousand_deliveries(stack: Stack) -> None:
    """250 subscribers x 4 offers at full speed: SEND_CONCURRENCY 32 and the bot's own
    30 messages/s limiter; the stand-in's flood limits are off, so no 429 slows it down.
    kill -9 at 20 random moments (a random number of deliveries, then up to 0.5 s more)
    and a restart after each. Afterwards every offer has reached every subscriber, and the
    only extra copies are sends Telegram accepted but the database never recorded, each
    accepted in the instant before a kill; the issue allows one per kill."""
    rng = random.Random(_seed())
    stack.tg.flood_limits = False
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    users = await _followers(stack, 250)
    offers = [f"Offer {i} of the kill run" for i in range(4)]
    ledger = Ledger(stack.tg, offers)
    total = len(users) * len(offers)
    started = time.monotonic()
    for offer in offers:
        stack.x.add_post("acme_jobs", offer)
    # Random moments: a random number of deliveries, then a random fraction of a second.
    thresholds = sorted(rng.sample(range(10, total - 50), 20))
    moments = []  # deliveries seen when each kill -9 landed
    for threshold in thresholds:

        def reached(goal: int = threshold) -> bool:
            return ledger.total >= goal

        await eventually(reached, 60, f"{threshold} deliveries")
        await asyncio.sleep(rng.uniform(0, 0.5))
        assert ledger.missing(users), "delivery ended before the 20 kills"
        moments.append(ledger.total)
        await stack.bot.kill()
        await stack.bot.start()
    await eventually(lambda: not ledger.missing(users), 90, "every offer delivered")
    elapsed = time.monotonic() - started
    # Every post is delivered: the rows still out would show up now. (Not quiet():
    # on PostgreSQL a poll the kill cut keeps its group leased for minutes.)
    await stack.db.idle()
    assert not ledger.missing(users)
    assert ledger.in_order(users)
    recorded = await _recorded_sends(stack.database_url)
    kills = stack.bot.kill_times
    ledger.update()
    # Exactly one copy of each (chat, offer) is the one the database recorded.
    for key in ledger.copies:
        chat, index = key
        known = [m for i, m in ledger.messages if i == index and m.chat_id == chat]
        assert sum((chat, m.message_id) in recorded for m in known) == 1, key
    orphans = [m for _, m in ledger.messages if (m.chat_id, m.message_id) not in recorded]
    per_kill = [0] * len(kills)
    lead = []  # how long before its kill each orphan was accepted
    for message in orphans:
        # Accepted just before a kill (or handled by the stand-in right after it, the
        # request having left before), never anywhere else.
        kill = min(range(len(kills)), key=lambda k: abs(kills[k] - message.date))
        assert -0.5 <= kills[kill] - message.date <= 2.0, (message, kills)
        per_kill[kill] += 1
        lead.append(kills[kill] - message.date)
    print(
        f"kill -9 x{len(kills)} at deliveries {moments} of {total} ({elapsed:.1f} s): "
        f"{len(orphans)} duplicate(s), per kill {per_kill}, accepted at most "
        f"{max(lead, default=0):.3f} s before their kill; at most "
        f"{_busiest_second(stack.tg)} messages in one second"
    )
    if len(orphans) > len(kills):
        raise TooManyDuplicates(f"{len(orphans)} duplicates after {len(kills)} kills")


async def test_kill_9_just_after_telegram_accepted_ten_sends_doubles_at_most_one(
    stack: Stack,
) -> None:
    """The worst instant, made deterministic: kill -9 the moment Telegram has accepted the
    10th message of the burst that starts a delivery to 50 subscribers. Nothing is lost;
    the extra copies are the accepted sends the database had not recorded yet; the issue
    allows one."""
    stack.tg.flood_limits = False
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    users = await _followers(stack, 50)
    ledger = Ledger(stack.tg, ["Offer sent in a burst"])
    stack.x.add_post("acme_jobs", "Offer sent in a burst")
    await stack.tg.wait_until(lambda: ledger.total >= 10, timeout=30)
    await stack.bot.kill()
    await asyncio.sleep(0.5)  # a request that left before the kill is handled by the stand-in
    accepted = ledger.total
    recorded_at_kill, orphans = await _restart_and_find_orphans(stack, ledger, users)
    print(
        f"kill -9 after Telegram accepted {accepted} sends, {recorded_at_kill} of them "
        f"recorded: {len(orphans)} duplicate(s)"
    )
    assert all(m.date <= stack.bot.kill_times[0] + 0.5 for m in orphans)
    assert len(orphans) == accepted - recorded_at_kill
    if len(orphans) > 1:
        raise TooManyDuplicates(f"{len(orphans)} duplicates after one kill")


@contextlib.asynccontextmanager
async def _database_not_recording(database_url: str) -> AsyncIterator[None]:
    """Another transaction holds the deliveries against writes (SQLite's one write lock; a
    PostgreSQL table lock that still lets readers read) while the block runs: the bot's
    records of its sends wait, as behind a long write or a slow disk."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(
            database_url.removeprefix("sqlite:///"),
            timeout=10,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            await asyncio.to_thread(connection.execute, "BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    pg = await asyncpg.connect(dsn)
    try:
        async with pg.transaction():
            await pg.execute("LOCK TABLE deliveries IN SHARE ROW EXCLUSIVE MODE")
            yield
    finally:
        await pg.close()


async def test_kill_9_while_the_database_is_slow_to_record_doubles_at_most_one(
    stack: Stack,
) -> None:
    """The database stops recording for 1.5 s in the middle of a delivery to 60 subscribers,
    and the bot is killed before it records again. Telegram may only have accepted what the
    bot could record, plus the one send answered as the database stalled: at most one copy
    after the restart (before the send gate: every send the limiter let go meanwhile, up to
    SEND_CONCURRENCY)."""
    stack.tg.flood_limits = False
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    users = await _followers(stack, 60)
    ledger = Ledger(stack.tg, ["Offer sent while the database stalls"])
    stack.x.add_post("acme_jobs", "Offer sent while the database stalls")
    await stack.tg.wait_until(lambda: ledger.total >= 5, timeout=30)
    async with _database_not_recording(stack.database_url):
        during = ledger.total
        await asyncio.sleep(1.5)  # the stall the scenario is about
        await stack.bot.kill()
        await asyncio.sleep(0.5)  # a request that left before the kill is handled
        accepted = ledger.total
    recorded_at_kill, orphans = await _restart_and_find_orphans(stack, ledger, users)
    print(
        f"database stalled 1.5 s after {during} sends, then kill -9: Telegram accepted "
        f"{accepted - during} more meanwhile, {recorded_at_kill} of {accepted} recorded: "
        f"{len(orphans)} duplicate(s)"
    )
    assert len(orphans) == accepted - recorded_at_kill
    if len(orphans) > 1:
        raise TooManyDuplicates(f"{len(orphans)} duplicates after one kill")


def _exactly_once(
    ledger: Ledger, users: list[User], account: Callable[[int], object] | None = None
) -> None:
    assert not ledger.missing(users), f"lost: {sorted(ledger.missing(users))}"
    assert not ledger.duplicates(), f"doubled: {ledger.duplicates()}"
    assert ledger.in_order(users, account)


class LoggedTraceback(Exception):
    """The bot logged a traceback for a fault it handles."""


POLLING_TRACEBACK = "telegram.ext.Updater: Exception happened while polling for updates."


async def test_telegram_answering_502_for_a_while_delays_but_never_loses_or_doubles(
    stack: Stack,
) -> None:
    """Every Bot API method (getUpdates included) answers 502 Bad Gateway for 10 s while
    offers arrive and a user writes; afterwards every offer arrives once and the user's
    command is answered once. The outage should leave no traceback in the log."""
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    users = await _followers(stack, 20)
    offers = [f"Offer {i} through a Telegram outage" for i in range(3)]
    ledger = Ledger(stack.tg, offers)
    stack.tg.set_outage(502)
    for offer in offers:
        stack.x.add_post("acme_jobs", offer)
    late = stack.user()
    late.say("/follow @acme_jobs")
    await asyncio.sleep(10)
    assert ledger.total == 0 and not late.received()
    refused = stack.tg.stats["sendMessage:502"], stack.tg.stats["getUpdates:502"]
    stack.tg.set_outage(None)
    ended = time.monotonic()
    await eventually(lambda: not ledger.missing(users), 60, "every offer after the outage")
    resumed = time.monotonic() - ended
    await late.wait_for(1, timeout=60)
    answered = time.monotonic() - ended
    await stack.quiet("acme_jobs")
    print(
        f"after 10 s of 502 ({refused[0]} sends and {refused[1]} getUpdates refused): every "
        f"offer {resumed:.1f} s and the command's answer {answered:.1f} s after the outage"
    )
    assert refused[0] > 0 and refused[1] > 0
    _exactly_once(ledger, users)
    assert len(late.received()) == 1 and "Now following @acme_jobs" in late.texts()[0]
    stack.tracebacks_checked = True
    tracebacks = [r for r in log_records(stack.bot.log) if "Traceback" in r]
    assert all(POLLING_TRACEBACK in r.splitlines()[0] for r in tracebacks), tracebacks
    if tracebacks:
        raise LoggedTraceback(f"{len(tracebacks)} tracebacks of failed getUpdates logged")


async def test_telegram_hanging_for_a_minute_delays_but_never_loses_or_doubles(
    stack: Stack,
) -> None:
    """Every send hangs for 60 s; the bot's HTTP timeout (python-telegram-bot's default
    5 s read timeout) gives up on each and retries later. Requests the bot gave up on never
    reached Telegram (lost on the way); afterwards every offer arrives once."""
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    users = await _followers(stack, 20)
    offers = [f"Offer {i} through a hanging Telegram" for i in range(3)]
    ledger = Ledger(stack.tg, offers)
    stack.tg.set_delay(60, keep_abandoned=False)
    for offer in offers:
        stack.x.add_post("acme_jobs", offer)
    await asyncio.sleep(60)
    stack.tg.set_delay(0)
    ended = time.monotonic()
    await eventually(lambda: not ledger.missing(users), 90, "every offer after the hang")
    resumed = time.monotonic() - ended
    await stack.quiet("acme_jobs")
    timeouts = stack.bot.log.count("Timed out; retry in")
    print(
        f"after a 60 s hang: {stack.tg.abandoned['dropped']} sends abandoned by the bot "
        f"({timeouts} timeouts logged), every offer {resumed:.1f} s after the hang ended"
    )
    assert stack.tg.abandoned["dropped"] > 0
    _exactly_once(ledger, users)


async def test_telegram_carrying_out_sends_the_bot_gave_up_on_doubles_at_most_once(
    stack: Stack,
) -> None:
    """Every send hangs for 20 s and Telegram carries out all of them, also those the bot
    stopped waiting for: the bot cannot know those arrived, so one copy per chat whose send
    was cut off is unavoidable. Nothing is lost; every extra copy is a send the bot gave up
    on; and a chat should get at most one extra copy."""
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    users = await _followers(stack, 20)
    offers = [f"Offer {i} through a slow Telegram" for i in range(3)]
    ledger = Ledger(stack.tg, offers)
    stack.tg.flood_limits = False  # the calls released at once are all carried out
    stack.tg.set_delay(20)
    for offer in offers:
        stack.x.add_post("acme_jobs", offer)
    await asyncio.sleep(20)
    stack.tg.set_delay(0)
    await eventually(lambda: not ledger.missing(users), 90, "every offer after the hang")
    await stack.quiet("acme_jobs")
    assert not ledger.missing(users)
    assert ledger.in_order(users)
    recorded = await _recorded_sends(stack.database_url)
    orphans = [m for _, m in ledger.update().messages if (m.chat_id, m.message_id) not in recorded]
    extra = sum(len(dates) - 1 for dates in ledger.copies.values())
    per_chat = Counter(m.chat_id for m in orphans)
    print(
        f"20 s hang, abandoned sends carried out: {stack.tg.abandoned['kept']}; "
        f"{extra} extra copies to {len(per_chat)} chats, at most "
        f"{max(per_chat.values(), default=0)} per chat"
    )
    assert len(orphans) == extra == stack.tg.abandoned["kept"]
    if any(count > 1 for count in per_chat.values()):
        raise TooManyDuplicates(f"extra copies per chat: {dict(per_chat)}")


# ---------------------------------------------------------------- two processes, one database


def _postgresql_only(stack: Stack) -> None:
    if not stack.database_url.startswith("postgresql"):
        pytest.skip(
            "two bot processes share a database only on PostgreSQL: an SQLite file serves one "
            "process, and the outbox claim's FOR UPDATE SKIP LOCKED is PostgreSQL's"
        )


@contextlib.asynccontextmanager
async def _second_bot(stack: Stack, relay: MutedUpdates) -> AsyncIterator[BotProcess]:
    """Another `python -m bot run` on the same database, receiving no update (see
    MutedUpdates), with its own log."""
    workdir = stack.workdir / "second"
    workdir.mkdir(exist_ok=True)
    bot = BotProcess(
        env={**stack.bot.env, "TELEGRAM_API_URL": relay.base_url}, workdir=workdir, tg=stack.tg
    )
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
        assert stack.tg.token not in bot.log and stack.x.bearer_token not in bot.log
        assert "Traceback" not in bot.log, bot.log


ACCOUNTS = [f"club{i}_jobs" for i in range(5)]


async def _many_followers(stack: Stack, count: int) -> list[User]:
    """`count` users who each follow the five ACCOUNTS in one command."""
    users = [stack.user() for _ in range(count)]
    for user in users:
        user.say("/follow " + " ".join(f"@{a}" for a in ACCOUNTS))
    await eventually(
        lambda: all(len(u.received()) >= 1 for u in users), 60, f"{count} follow replies"
    )
    await x_reads(stack.x, *ACCOUNTS, count=1)  # a poll of each: what comes next is new
    return users


def _busiest_second(tg: TelegramStandIn) -> int:
    """The most sendMessage calls Telegram accepted in any one-second window."""
    dates = sorted(m.date for m in tg.sent if m.method == "sendMessage")
    best = start = 0
    for end, date in enumerate(dates):
        while date - dates[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def _deliver_once_with_two_senders(stack: Stack, users: list[User], tag: str) -> None:
    offers = [f"Offer {i} from {account} ({tag})" for i, account in enumerate(ACCOUNTS)]
    ledger = Ledger(stack.tg, offers)
    for account, offer in zip(ACCOUNTS, offers, strict=True):
        stack.x.add_post(account, offer)
    started = time.monotonic()
    await eventually(lambda: not ledger.missing(users), 90, "every offer to every subscriber")
    elapsed = time.monotonic() - started
    await stack.quiet(*ACCOUNTS)
    print(
        f"{tag}: {len(users) * len(offers)} deliveries by two processes in {elapsed:.1f} s, "
        f"{len(ledger.duplicates())} doubled, at most {_busiest_second(stack.tg)} "
        "messages in one second (Telegram allows a bot 30)"
    )
    # One offer per account: offers of different accounts posted in the same instant may be
    # stored by either process, in either order.
    _exactly_once(ledger, users, account=lambda i: i)


async def test_two_processes_receiving_no_updates_send_each_message_once(stack: Stack) -> None:
    """(a) Both processes poll X and send, neither reads updates (the subscriptions were
    made through a first run that did)."""
    _postgresql_only(stack)
    stack.tg.flood_limits = False  # two senders, each with its own 30/s limiter
    stack.bot.env["DELIVERY_LEASE_SECONDS"] = "60"  # the production lease
    for account in ACCOUNTS:
        stack.x.add_user(account)
    await stack.bot.start()
    users = await _many_followers(stack, 100)
    await stack.bot.stop()
    async with MutedUpdates(stack.tg) as relay:
        stack.bot.env["TELEGRAM_API_URL"] = relay.base_url
        await stack.bot.start()
        async with _second_bot(stack, relay):
            await _deliver_once_with_two_senders(stack, users, "no updates")
        await stack.bot.stop()  # while its relay still answers
        assert relay.muted > 0


async def test_two_processes_one_receiving_updates_send_each_message_once(
    stack: Stack,
) -> None:
    """(b) The first process reads updates, the second does not; both poll X and send."""
    _postgresql_only(stack)
    stack.tg.flood_limits = False
    stack.bot.env["DELIVERY_LEASE_SECONDS"] = "60"
    for account in ACCOUNTS:
        stack.x.add_user(account)
    await stack.bot.start()
    async with MutedUpdates(stack.tg) as relay, _second_bot(stack, relay):
        users = await _many_followers(stack, 100)
        await _deliver_once_with_two_senders(stack, users, "one reads updates")
        # Only the first process read the commands: each was answered once.
        assert all(len([t for t in u.texts() if "Now following" in t]) == 1 for u in users)
        assert stack.tg.stats["getUpdates:409"] == 0


async def test_either_process_may_receive_updates_and_the_other_takes_over_when_it_dies(
    stack: Stack,
) -> None:
    """The Procfile's `worker` scaled to two: both may receive Telegram's updates, exactly one
    does (an advisory lock on PostgreSQL). Killed with -9, the other takes over and answers
    the next command. Every command is answered once; getUpdates never meets a 409."""
    _postgresql_only(stack)
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    workdir = stack.workdir / "second"
    workdir.mkdir(exist_ok=True)
    second = BotProcess(env=dict(stack.bot.env), workdir=workdir, tg=stack.tg)
    await second.start()
    try:
        user = stack.user()
        assert "Now following @acme_jobs" in await user.ask("/follow @acme_jobs")
        receives = "this process receives Telegram's updates"
        receiver, other = (stack.bot, second) if receives in stack.bot.log else (second, stack.bot)
        assert receives not in other.log
        await eventually(
            lambda: "another process receives Telegram's updates" in other.log,
            15,
            "the other process to find the receiver's lock taken",
        )
        # The scenario: the waiting process has reached its steady pace, a try every 5 s
        # (CHECK_EVERY; it leaves no trace to wait for).
        await asyncio.sleep(6)
        await receiver.kill()
        started = time.monotonic()
        reply = await user.ask("/list", timeout=30)
        took = time.monotonic() - started
        print(f"the other process answered the first command {took:.1f} s after the kill")
        assert "@acme_jobs" in reply
        assert receives in other.log
        stack.x.add_post("acme_jobs", "Offer after the take-over")
        await user.wait_for(3)
        await stack.quiet("acme_jobs")
        assert len(user.received()) == 3  # each command answered once, the offer sent once
        assert stack.tg.stats["getUpdates:409"] == 0
    finally:
        await second.stop()
    assert "Traceback" not in second.log, second.log


class PolledTwice(Exception):
    """A source was read by both processes within one poll interval."""


async def test_two_processes_poll_each_source_once_per_interval(stack: Stack) -> None:
    """Two processes (one reading updates) poll ten accounts for 9 s with X answering in
    0.2 s. Each account should be read once per POLL_INTERVAL_SECONDS (1 s here) whichever
    process reads it; a second read within the interval is an X read paid twice. Offers
    still arrive once (the offers' and deliveries' unique constraints)."""
    _postgresql_only(stack)
    accounts = [f"poll{i}_jobs" for i in range(10)]
    for account in accounts:
        stack.x.add_user(account)
    stack.bot.env["DEFAULT_DAILY_LIMIT"] = "50"  # 30 offers, all pushed
    await stack.bot.start()
    user = stack.user()
    await user.ask("/follow " + " ".join(f"@{a}" for a in accounts))
    await x_reads(stack.x, *accounts, count=1)
    async with MutedUpdates(stack.tg) as relay, _second_bot(stack, relay):
        stack.x.set_delay(0.2)  # X takes a moment to answer, as it does
        await x_reads(stack.x, *accounts, count=1)  # both processes read at that pace now
        stack.x.clear_requests()
        offers = []
        for round_ in range(3):
            for account in accounts:
                offers.append(f"Offer {round_} of {account}")
                stack.x.add_post(account, offers[-1])
            await x_reads(stack.x, *accounts, count=3)  # three poll intervals a round
        requests = [r for r in stack.x.requests if r.path == "/2/tweets/search/recent"]
        stack.x.set_delay(0)
        ledger = Ledger(stack.tg, offers)
        await eventually(lambda: not ledger.missing([user]), 30, "every offer")
        await stack.quiet(*accounts)
        # Each account's three offers in order (those of different accounts posted in the
        # same instant may be stored by either process, in either order).
        _exactly_once(ledger, [user], account=lambda i: i % len(accounts))
    by_source: dict[str, list[float]] = defaultdict(list)
    for request in requests:  # a search reads every account its query names
        for handle in re.findall(r"from:(\w+)", request.params["query"]):
            by_source[handle].append(request.at)
    twice = {
        path: sum(1 for a, b in itertools.pairwise(sorted(times)) if b - a < 0.9)
        for path, times in by_source.items()
    }
    window = max(r.at for r in requests) - min(r.at for r in requests)
    print(
        f"two processes, {len(by_source)} sources, {window:.1f} s: {len(requests)} "
        f"searches (one process reads each source at most once a second), "
        f"{sum(twice.values())} read again within the 1 s interval; per source "
        f"{sorted(twice.values())}"
    )
    if any(twice.values()):
        raise PolledTwice(f"{sum(twice.values())} second reads within one poll interval")


class FloodErrors(Exception):
    """Telegram answered 429 Too Many Requests."""


async def test_full_speed_delivery_stays_within_telegrams_limits(stack: Stack) -> None:
    """300 messages at full speed against the stand-in's flood limits (30 sends in any one
    second): the bot's own limiter should keep every send within them."""
    if not stack.database_url.startswith("sqlite"):
        pytest.skip("the rate limiter does not touch the database: measured on SQLite only")
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    users = await _followers(stack, 100)
    offers = [f"Offer {i} at full speed" for i in range(3)]
    ledger = Ledger(stack.tg, offers)
    before = stack.tg.stats["sendMessage:429"]
    started = time.monotonic()
    for offer in offers:
        stack.x.add_post("acme_jobs", offer)
    await eventually(lambda: not ledger.missing(users), 60, "every offer")
    elapsed = time.monotonic() - started
    await stack.quiet("acme_jobs")
    flood = stack.tg.stats["sendMessage:429"] - before
    print(f"{len(users) * len(offers)} messages in {elapsed:.1f} s: {flood} answered 429 first")
    _exactly_once(ledger, users)
    stack.tracebacks_checked = True
    tracebacks = [r for r in log_records(stack.bot.log) if "Traceback" in r]
    assert all("Rate limit hit after maximum" in r.splitlines()[0] for r in tracebacks)
    if flood:
        raise FloodErrors(f"{flood} sends answered 429 Too Many Requests")


async def test_a_restart_after_kill_9_on_sqlite_takes_the_dead_run_s_leases_at_once(
    stack: Stack,
) -> None:
    """kill -9 while a send waits for Telegram (its row leased for the production minute) and
    a poll waits for X (its group leased for five): an SQLite file serves one process, so the
    restarted bot releases both at start. The held offer arrives and the account is read
    again within seconds, not once the dead run's leases run out."""
    if not stack.database_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL another live process may hold those leases (issue #16)")
    stack.bot.env["DELIVERY_LEASE_SECONDS"] = "60"  # the production lease
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower()
    stack.tg.set_delay(30, keep_abandoned=False)  # the send hangs: its row stays leased
    stack.x.add_post("acme_jobs", "Offer sent as the bot dies")
    await stack.tg.wait_until(lambda: stack.tg.waiting_calls > 0, timeout=15)
    stack.x.set_delay(30)  # and the next poll hangs: its group stays leased
    await eventually(lambda: stack.x.in_flight > 0, 15, "a poll waiting for X")
    await stack.bot.kill()
    stack.tg.set_delay(0)
    stack.x.set_delay(0)
    restarted = time.monotonic()
    await stack.bot.start()
    texts = await user.wait_for(2, timeout=20)
    assert "Offer sent as the bot dies" in texts[1]
    stack.x.add_post("acme_jobs", "Offer after the restart")
    texts = await user.wait_for(3, timeout=20)
    took = time.monotonic() - restarted
    print(f"both offers delivered {took:.1f} s after the restart")
    assert "Offer after the restart" in texts[2]
    assert took < 20
    assert "released 2 lease(s) left by a previous run" in stack.bot.log
