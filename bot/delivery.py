"""A delivery: outbox rows -> Telegram messages, or held for a digest, with Telegram's errors
mapped to outbox states.

Each row is claimed with a lease, decided (push or hold, `bot.policy`), sent, and settled in its
own short transaction right after Telegram answers; no other outbox send leaves while an
earlier one is out or unrecorded (`bot.send_gate`), so a crash can at most resend the one
message Telegram accepted in the instant before it. When Telegram does not answer a send, every send
is held until a probe is answered: a timed-out message may still be carried out, and each
retry into the same hang would be one more copy.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections import defaultdict
from collections.abc import Hashable
from contextvars import Context
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import NetworkError, TelegramError

from bot.clock import Clock
from bot.i18n import translator
from bot.isolation import ChatFailures
from bot.keyboards import list_keyboard, offer_keyboard, with_buttons
from bot.liveness import Owner, no_owner
from bot.policy import ChatPolicy, Hold, day_start, hold_reason, in_quiet_hours, is_paused
from bot.ranking import MIN_MARKS, Example, Model, ModelCache, features, plan, train
from bot.render import MESSAGE_LIMIT, render_notice, render_offer, telegram_length
from bot.send_gate import gate_of, group_has_room
from bot.telegram_send import Outcome, SendResult, send_html
from storage import chats, digests, outbox
from storage import ranking as ranking_store
from storage.db import Sessions
from storage.models import DeliveryKind
from storage.outbox import ClaimedDelivery
from storage.ranking import chats_to_rank
from storage.settings import ChatSettings, load_settings, pushed_since, pushed_since_many

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = timedelta(minutes=10)
NOTICE_RECHECK = timedelta(minutes=5)
# A chat whose settings cannot be used (its stored time zone does not load) is tried again
# this often; meanwhile its rows wait and every other chat's go on.
UNUSABLE_CHAT_RETRY = timedelta(minutes=5)
# A group or channel gets at most this many messages per round, and a round a minute at
# most: offers ready meanwhile are merged, so a club gets a calm feed and Telegram's
# 20 messages a minute per group is never reached.
GROUP_PACE = timedelta(minutes=1)
GROUP_MESSAGES_PER_ROUND = 10
# A group whose minute is used up (replies to its members' commands count too) has its
# rows tried again this much later, instead of the sender waiting for the group's slot
# while every other chat's offers wait for the sender (Telegram frees a slot every 3 s).
GROUP_FULL_RETRY = timedelta(seconds=5)
MERGE_SEPARATOR = "\n\n— — —\n\n"
# While Telegram does not answer, a probe every PROBE_DELAY, doubling up to PROBE_MAX_DELAY.
PROBE_DELAY = 1.0
PROBE_MAX_DELAY = 5.0


def visible_length(text: str) -> int:
    """How long Telegram counts our HTML once parsed (tags dropped, entities decoded)."""
    return telegram_length(html.unescape(_TAG_RE.sub("", text)))


_TAG_RE = re.compile(r"<[^>]+>")


def merge(texts: list[str]) -> list[list[int]]:
    """Indexes of `texts` packed in order into messages within MESSAGE_LIMIT (a text is never
    split; one that fills a message alone goes alone)."""
    groups: list[list[int]] = []
    used = 0
    separator = visible_length(MERGE_SEPARATOR)
    for index, text in enumerate(texts):
        size = visible_length(text)
        if groups and used + separator + size <= MESSAGE_LIMIT:
            groups[-1].append(index)
            used += separator + size
        else:
            groups.append([index])
            used = size
    return groups


def render(row: ClaimedDelivery) -> str:
    """The HTML of one outbox row, in its chat's language."""
    t = translator(row.language)
    if row.kind is DeliveryKind.NOTICE:
        return render_notice(t, row.payload or {})
    return render_offer(
        t,
        author=row.offer_author or "",
        text=row.offer_text or "",
        url=row.offer_url or "",
        tags=row.offer_tags,
        also=row.also,
    )


def _train(past: list[tuple[str, str, dict[str, Any] | None, bool, bool]]) -> Model | None:
    """A chat's model from its history (storage.ranking.history): run in a worker thread."""
    return train(
        [
            Example(features(author, text, tags), saved, not_for_me)
            for author, text, tags, saved, not_for_me in past
        ]
    )


@dataclass(frozen=True, slots=True)
class Ranked:
    """A chat's rows in the order the ranking tries them, each offer's score, and the offers
    below the chat's usual score (held for the digest whatever today's count)."""

    rows: list[ClaimedDelivery]
    scores: dict[int, float]
    below: set[int]


class Sender:
    """Drains the outbox within Telegram's limits (metered by the bot's AIORateLimiter)."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        clock: Clock,
        bot: Bot,
        lease_seconds: float,
        default_daily_limit: int = 10,
        concurrency: int = 32,
        batch_size: int = 100,
        group_pace: timedelta = GROUP_PACE,
        owner: Owner = no_owner,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._bot = bot
        self._lease = timedelta(seconds=lease_seconds)
        self._default_limit = default_daily_limit
        self._concurrency = asyncio.Semaphore(concurrency)
        self._batch_size = batch_size
        self._group_pace = group_pace
        self._owner = owner
        self._stopping = False
        self._gate = gate_of(bot)
        self._probe: asyncio.Task[None] | None = None
        # Rows of the current batch another sender claimed after this one's lease ran out.
        self._lost: set[int] = set()
        self._failures = ChatFailures(log, "preparing the messages")
        self._models = ModelCache()

    def stop(self) -> None:
        """Finish the messages in flight, hand the rest back to the outbox, claim no more."""
        self._stopping = True
        if self._probe is not None:
            self._probe.cancel()

    @property
    def holding(self) -> bool:
        """True while sends are held: Telegram did not answer one, or this process's
        liveness record is not fresh (the others may be taking its rows over, bot.liveness)."""
        return not self._gate.answering or not self._gate.fence()

    async def drain(self) -> int:
        """Send (or hold) every due row, batch after batch, until none is due; how many sent."""
        sent = 0
        while not self._stopping and not self.holding:
            now = self._clock.now()
            async with self._sessions.begin() as session:
                rows = await outbox.claim(
                    session,
                    now=now,
                    lease_until=now + self._lease,
                    limit=self._batch_size,
                    owner=self._owner(),
                )
                settings = await load_settings(
                    session, sorted({r.chat_id for r in rows}), default_limit=self._default_limit
                )
                starts, unusable = self._day_starts(rows, settings, now)
                # Today's pushes of every private chat with an offer in the batch, in one
                # query rather than one per chat (a chat's rows are never claimed by two
                # senders at once, so the count cannot move before its rows are sent).
                pushed = await pushed_since_many(
                    session,
                    {
                        r.chat_id: starts[r.chat_id]
                        for r in rows
                        if r.kind is DeliveryKind.OFFER
                        and not r.shared_chat
                        and r.chat_id in starts
                    },
                )
                # Private chats with enough saves to be ranked, in one query (the others are
                # at cold start: today's order, and their history is not read).
                ranked = await chats_to_rank(
                    session,
                    sorted(
                        {
                            r.chat_id
                            for r in rows
                            if r.kind is DeliveryKind.OFFER
                            and not r.shared_chat
                            and r.chat_id in settings
                            and settings[r.chat_id].policy.ranking
                        }
                    ),
                    min_saved=MIN_MARKS,
                )
            if not rows:
                return sent
            self._lost = set()
            if unusable:
                await self._release(
                    [r for r in rows if r.chat_id in unusable],
                    "the chat's time zone cannot be loaded",
                    at=now + UNUSABLE_CHAT_RETRY,
                )
                rows = [r for r in rows if r.chat_id not in unusable]
            by_chat: dict[int, list[ClaimedDelivery]] = defaultdict(list)
            for row in rows:
                by_chat[row.chat_id].append(row)
            keeping = asyncio.create_task(self._keep_leases(rows))
            try:
                results = await asyncio.gather(
                    *(
                        self._send_chat(
                            chat_rows,
                            settings[chat_id].policy if chat_id in settings else None,
                            pushed.get(chat_id),
                            ranked=ranked.get(chat_id),
                        )
                        for chat_id, chat_rows in by_chat.items()
                    )
                )
            finally:
                keeping.cancel()
                await asyncio.gather(keeping, return_exceptions=True)
            sent += sum(results)
        return sent

    def _day_starts(
        self, rows: list[ClaimedDelivery], settings: dict[int, ChatSettings], now: datetime
    ) -> tuple[dict[int, datetime], set[int]]:
        """Each chat's local midnight, where its daily count starts; the chats whose settings
        cannot be used (a stored time zone this host cannot load) are left out, and named
        apart: their rows wait, the others' go on."""
        starts: dict[int, datetime] = {}
        unusable: set[int] = set()
        for chat_id in dict.fromkeys(row.chat_id for row in rows):
            chat = settings.get(chat_id)
            if chat is None:
                continue
            try:
                # (the chat's zone is loaded here: every later local time of the chat works)
                starts[chat_id] = day_start(chat.policy, now)
            except Exception as exc:
                unusable.add(chat_id)
                self._failures.failed(
                    chat_id,
                    exc,
                    f"its time zone {chat.policy.timezone!r} cannot be used: its messages wait "
                    f"and are tried again every {UNUSABLE_CHAT_RETRY}",
                )
            else:
                self._failures.recovered(chat_id)
        return starts, unusable

    async def _keep_leases(self, rows: list[ClaimedDelivery]) -> None:
        """Renew the batch's leases every third of a lease while it is being sent (a batch
        paced at 30 messages a second, or held by a RetryAfter, can outlive one lease); rows
        another sender claimed meanwhile are marked lost and not sent from here."""
        claims = {row.delivery_id: row.attempts for row in rows}
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            until = self._clock.now() + self._lease
            try:
                async with self._sessions.begin() as session:
                    self._lost |= await outbox.renew_leases(session, claims=claims, until=until)
            except Exception:
                log.exception("renewing the outbox leases failed; trying again")

    async def _pushed_today(
        self, chat_id: int, policy: ChatPolicy, *, messages: bool = False
    ) -> int:
        async with self._sessions() as session:
            return await pushed_since(
                session, chat_id, day_start(policy, self._clock.now()), messages=messages
            )

    async def _send_chat(
        self,
        rows: list[ClaimedDelivery],
        policy: ChatPolicy | None,
        pushed: int | None = None,
        *,
        ranked: Hashable | None = None,
    ) -> int:
        """One chat's rows in order (oldest offer first, or best scored first when `ranked`);
        chats go in parallel. An unexpected error hands the chat's unsettled rows back to the
        outbox instead of stranding them. `pushed`: the private chat's offers pushed today,
        when already counted. `ranked`: the fingerprint of the chat's saves, when it has enough to
        be ranked."""
        settled: list[int] = []
        try:
            if rows[0].shared_chat:
                return await self._send_group(rows, policy, settled)
            ranking = await self._rank(rows, ranked) if ranked is not None else None
            if ranking is not None:
                rows = ranking.rows
            return await self._send_rows(rows, policy, settled, pushed, ranking)
        except Exception:
            log.exception(
                "sending to chat %s failed; its rows go back to the queue", rows[0].chat_id
            )
            # Later, and later each time: an error that comes back at every try must not keep
            # the sender busy with this chat (a transient one is over in a second).
            backoff = min(2 ** (rows[0].attempts - 1), MAX_RETRY_DELAY.total_seconds())
            await self._release(
                [r for r in rows if r.delivery_id not in settled],
                "sender error",
                at=self._clock.now() + timedelta(seconds=backoff),
            )
            return 0

    async def _model(self, chat_id: int, fingerprint: Hashable) -> Model | None:
        """The chat's model: reused while its saves are unchanged (bot.ranking.MODEL_TTL),
        else trained in a worker thread, so that a chat's half second of training never
        stalls the event loop (the other chats' sends, every handler)."""
        now = self._clock.now()
        found, model = self._models.get(chat_id, fingerprint, now)
        if found:
            return model
        async with self._sessions() as session:
            past = await ranking_store.history(session, chat_id)
        model = await asyncio.to_thread(_train, past)
        self._models.put(chat_id, fingerprint, now, model)
        return model

    async def _rank(self, rows: list[ClaimedDelivery], fingerprint: Hashable) -> Ranked | None:
        """The chat's offers of the moment by its own model, best first (its service messages
        first, as they were); None at cold start (too few saves)."""
        model = await self._model(rows[0].chat_id, fingerprint)
        if model is None:
            return None
        offers = [r for r in rows if r.kind is DeliveryKind.OFFER]
        scores = [
            model.score(features(r.offer_author or "", r.offer_text or "", r.offer_tags))
            for r in offers
        ]
        chosen = plan(scores, usual=model.usual)
        ordered = [r for r in rows if r.kind is not DeliveryKind.OFFER]
        ordered += [offers[i] for i in chosen.order] + [offers[i] for i in chosen.below]
        return Ranked(
            rows=ordered,
            scores={r.delivery_id: s for r, s in zip(offers, scores, strict=True)},
            below={offers[i].delivery_id for i in chosen.below},
        )

    async def _send_rows(
        self,
        rows: list[ClaimedDelivery],
        policy: ChatPolicy | None,
        settled: list[int],
        pushed: int | None = None,
        ranking: Ranked | None = None,
    ) -> int:
        sent = 0
        for index, row in enumerate(rows):
            if self._stopping or self.holding:
                await self._release(rows[index:], "the sender stopped before this one")
                break
            if row.delivery_id in self._lost:  # another sender took it over (_keep_leases)
                settled.append(row.delivery_id)
                continue
            now = self._clock.now()
            if row.kind is DeliveryKind.OFFER and policy is not None:
                if pushed is None:
                    pushed = await self._pushed_today(row.chat_id, policy)
                reason = hold_reason(policy, now, pushed)
                if reason is None and ranking is not None and row.delivery_id in ranking.below:
                    reason = Hold.RANK
                if reason is not None:
                    async with self._sessions.begin() as session:
                        await digests.hold(
                            session,
                            delivery_id=row.delivery_id,
                            reason=reason,
                            now=now,
                            claim=row.attempts,
                            score=ranking.scores.get(row.delivery_id) if ranking else None,
                        )
                    settled.append(row.delivery_id)
                    continue
            elif await self._defer_notice(row, policy, now):
                settled.append(row.delivery_id)
                continue
            async with self._concurrency:
                outcome = await self._send(row)
            settled.append(row.delivery_id)
            if outcome is Outcome.SENT:
                sent += 1
                # (a service message is no offer: the day's count, as stored, leaves it out)
                if pushed is not None and row.kind is DeliveryKind.OFFER:
                    pushed += 1
            elif outcome in (Outcome.CHAT_GONE, Outcome.RETRY):
                # Keep this chat's order: the rest wait for this row.
                await self._release(rows[index + 1 :], "waiting for an earlier message")
                break
        return sent

    async def _defer_notice(
        self, row: ClaimedDelivery, policy: ChatPolicy | None, now: datetime
    ) -> bool:
        """A service message cannot join a digest: during a pause or quiet hours it waits for
        the window to end (it never holds up the chat's offers, see outbox.claim). True when
        it was put off."""
        if policy is None or not (is_paused(policy, now) or in_quiet_hours(policy, now)):
            return False
        async with self._sessions.begin() as session:
            await outbox.retry_later(
                session,
                delivery_id=row.delivery_id,
                at=now + NOTICE_RECHECK,
                error="paused or quiet hours",
                claim=row.attempts,
            )
        return True

    async def _send_group(
        self, rows: list[ClaimedDelivery], policy: ChatPolicy | None, settled: list[int]
    ) -> int:
        """A group's or channel's rows: held ones go to the digest, the others are merged into
        as few messages as fit (per forum topic, in order), at most a round a minute.

        A club's daily limit counts messages, not offers: merging is what keeps its feed calm,
        and a burst of a hundred offers still arrives, in a few messages.
        """
        now = self._clock.now()
        chat_id = rows[0].chat_id
        ready: list[ClaimedDelivery] = []
        budget = GROUP_MESSAGES_PER_ROUND
        reason = None
        if policy is not None:
            pushed = await self._pushed_today(chat_id, policy, messages=True)
            reason = hold_reason(policy, now, pushed)
            # (at least one: a service message goes out even on a day whose offers are held)
            budget = max(1, min(budget, policy.daily_limit - pushed))
        for row in rows:
            if row.kind is DeliveryKind.OFFER and reason is not None:
                async with self._sessions.begin() as session:
                    await digests.hold(
                        session,
                        delivery_id=row.delivery_id,
                        reason=reason,
                        now=now,
                        claim=row.attempts,
                    )
                settled.append(row.delivery_id)
                continue
            if row.kind is not DeliveryKind.OFFER and await self._defer_notice(row, policy, now):
                settled.append(row.delivery_id)
                continue
            ready.append(row)
        # Each forum topic's rows (in order) make a message, or a few at 4096 characters each.
        by_thread: dict[int, list[ClaimedDelivery]] = {}
        for row in ready:
            by_thread.setdefault(row.thread_id, []).append(row)
        queue: list[list[ClaimedDelivery]] = []
        for run in by_thread.values():
            queue += [[run[i] for i in group] for group in merge([render(row) for row in run])]
        sent = messages = 0
        while queue:
            if self._stopping or self.holding or messages >= budget:
                rest = [row for batch in queue for row in batch]
                await self._release(rest, "the next round of this group")
                settled += [row.delivery_id for row in rest]
                break
            batch = queue.pop(0)
            settled += [row.delivery_id for row in batch if row.delivery_id in self._lost]
            batch = [row for row in batch if row.delivery_id not in self._lost]
            if not batch:  # another sender took them over (see _keep_leases)
                continue
            if not group_has_room(self._bot, chat_id):
                rest = batch + [row for later in queue for row in later]
                await self._release(
                    rest, "the group's messages this minute are used up", at=now + GROUP_FULL_RETRY
                )
                settled += [row.delivery_id for row in rest]
                break
            messages += 1
            outcome = await self._send_merged(batch)
            if outcome is Outcome.REJECTED and len(batch) > 1:
                # Something in one of them: each goes alone (and counts as a message), so only
                # that one is refused.
                log.warning("a merged message to chat %s was rejected", chat_id)
                queue[:0] = [[row] for row in batch]
                continue
            settled += [row.delivery_id for row in batch]
            if outcome is Outcome.SENT:
                sent += len(batch)
            elif outcome in (Outcome.CHAT_GONE, Outcome.RETRY, Outcome.MIGRATED):
                rest = [row for later in queue for row in later]
                await self._release(rest, "waiting for an earlier message")
                settled += [row.delivery_id for row in rest]
                break
        if messages:
            async with self._sessions.begin() as session:
                await outbox.pace_chat(session, chat_id=chat_id, until=now + self._group_pace)
        return sent

    async def _send_merged(self, batch: list[ClaimedDelivery]) -> Outcome:
        """One message of a group's merged rows (a single row is sent as usual, with its
        buttons; several get one ⭐ each). A rejected merged message settles nothing: the
        caller sends its rows one by one."""
        if len(batch) == 1:
            async with self._concurrency:
                return await self._send(batch[0])
        first = batch[0]
        text = MERGE_SEPARATOR.join(render(row) for row in batch)
        keyboard = (
            list_keyboard([(row.delivery_id, row.offer_text or "") for row in batch])
            if with_buttons(first.chat_type)
            else None
        )
        attempted_at = self._clock.now()
        async with self._concurrency:
            with self._gate.tracking():
                result = await send_html(
                    self._bot,
                    first.chat_id,
                    text,
                    reply_markup=keyboard,
                    thread_id=first.thread_id,
                )
                now = self._clock.now()
                if result.outcome is Outcome.SENT:
                    async with self._sessions.begin() as session:
                        for row in batch:
                            await outbox.mark_sent(
                                session,
                                delivery_id=row.delivery_id,
                                message_id=result.message_id,
                                now=now,
                            )
                    return Outcome.SENT
        if result.outcome is Outcome.REJECTED:
            return Outcome.REJECTED
        if result.outcome is Outcome.MIGRATED and result.new_chat_id is not None:
            async with self._sessions.begin() as session:
                await chats.migrate_chat(session, first.chat_id, result.new_chat_id, now)
            await self._release(batch, "the group moved")
            return Outcome.MIGRATED
        for row in batch:
            await self._settle(row, first.chat_id, result, attempted_at)
        return result.outcome

    async def _release(
        self, rows: list[ClaimedDelivery], reason: str, *, at: datetime | None = None
    ) -> None:
        """Give rows back to the queue, due again `at` (now by default), except those another
        sender took over meanwhile."""
        rows = [row for row in rows if row.delivery_id not in self._lost]
        if not rows:
            return
        due = at or self._clock.now()
        async with self._sessions.begin() as session:
            for row in rows:
                await outbox.retry_later(
                    session, delivery_id=row.delivery_id, at=due, error=reason, claim=row.attempts
                )

    async def _send(self, row: ClaimedDelivery) -> Outcome:
        """Send one row and record its outcome before any other outbox send may leave."""
        with self._gate.tracking():
            return await self._send_tracked(row)

    async def _send_tracked(self, row: ClaimedDelivery) -> Outcome:
        chat_id = row.chat_id
        text = render(row)
        keyboard = (
            offer_keyboard(translator(row.language), row.delivery_id)
            if row.kind is DeliveryKind.OFFER and with_buttons(row.chat_type)
            else None
        )
        attempted_at = self._clock.now()
        backoff = timedelta(seconds=min(2 ** (row.attempts - 1), MAX_RETRY_DELAY.total_seconds()))
        result = await send_html(
            self._bot,
            chat_id,
            text,
            reply_markup=keyboard,
            network_retry_after=backoff,
            thread_id=row.thread_id,
        )
        if result.outcome is Outcome.MIGRATED and result.new_chat_id is not None:
            log.info("chat %s moved to %s; moving its data", chat_id, result.new_chat_id)
            async with self._sessions.begin() as session:
                await chats.migrate_chat(session, chat_id, result.new_chat_id, self._clock.now())
            chat_id = result.new_chat_id
            result = await send_html(
                self._bot, chat_id, text, reply_markup=keyboard, network_retry_after=backoff
            )
            if result.outcome is Outcome.MIGRATED:
                result = SendResult(Outcome.RETRY, retry_after=timedelta(seconds=1))
        await self._settle(row, chat_id, result, attempted_at)
        return result.outcome

    async def _settle(
        self, row: ClaimedDelivery, chat_id: int, result: SendResult, attempted_at: datetime
    ) -> None:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            if result.outcome is Outcome.SENT:
                await outbox.mark_sent(
                    session, delivery_id=row.delivery_id, message_id=result.message_id, now=now
                )
            elif result.outcome is Outcome.RETRY:
                log.log(
                    logging.WARNING if result.unanswered else logging.DEBUG,
                    "delivery %s: %s; retry in %s",
                    row.delivery_id,
                    result.error,
                    result.retry_after,
                )
                if result.unanswered:
                    self._hold_sends(chat_id, result.error)
                await outbox.retry_later(
                    session,
                    delivery_id=row.delivery_id,
                    at=now + result.retry_after,
                    error=result.error,
                    claim=row.attempts,
                )
            elif result.outcome is Outcome.CHAT_GONE:
                # A chat that wrote to the bot while this send was in flight is back: keep it.
                if await chats.deactivate_chat(
                    session, chat_id, now, unless_heard_since=attempted_at
                ):
                    log.info(
                        "chat %s is unreachable (%s); it is now inactive", chat_id, result.error
                    )
                await outbox.retry_later(
                    session,
                    delivery_id=row.delivery_id,
                    at=now,
                    error=result.error,
                    claim=row.attempts,
                )
            else:
                log.error(
                    "Telegram rejected delivery %s for good: %s", row.delivery_id, result.error
                )
                await outbox.mark_failed(
                    session, delivery_id=row.delivery_id, error=result.error, claim=row.attempts
                )

    def _hold_sends(self, chat_id: int, error: str) -> None:
        """Telegram did not answer a send: hold every outbox send until a probe is answered
        (a send that timed out may still be carried out; retrying it, or sending more, into
        the same hang would make a copy per attempt)."""
        if not self._gate.answering or self._stopping:
            return
        self._gate.suspend()
        log.warning("Telegram did not answer (%s); sending is held until it answers again", error)
        # (in a fresh context: this send's, copied, would make the probe a gated outbox send)
        self._probe = asyncio.get_running_loop().create_task(
            self._probe_until_answered(chat_id), name="telegram-probe", context=Context()
        )

    async def _probe_until_answered(self, chat_id: int) -> None:
        """A chat action (it leaves no message) to the chat whose send was not answered, again
        and again, until Telegram answers it; then sending resumes."""
        delay = PROBE_DELAY
        probes = 0
        while not self._stopping:
            await asyncio.sleep(delay)
            probes += 1
            try:
                await self._bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)
            except NetworkError:  # TimedOut too: no answer yet
                delay = min(delay * 2, PROBE_MAX_DELAY)
                continue
            except TelegramError:
                pass  # refused (blocked, flood...), but answered
            break
        else:
            return
        self._gate.resume()
        log.info("Telegram answers again (after %d probe(s)); sending resumes", probes)
