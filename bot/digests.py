"""Digests: held offers gathered when due (`bot.policy.digest_due`) and sent part by part."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from telegram import Bot
from telegram.error import TelegramError

from bot.clock import Clock
from bot.i18n import translator
from bot.isolation import ChatFailures
from bot.keyboards import list_keyboard, with_buttons
from bot.policy import CATCH_UP, digest_due, in_quiet_hours, is_paused, weekly_summary_due
from bot.render import render_digest_parts
from bot.telegram_send import Outcome, send_html
from bot.tracker import MAX_FOLLOWUPS, attach_followups, due_followups
from bot.weekly import week_stats, weekly_payload, window_start
from storage import chats, digests, outbox
from storage.applications import funnel_since
from storage.db import Sessions
from storage.digests import PendingDigest
from storage.settings import ChatSettings, load_settings, update_chat_settings
from storage.stats import chat_deliveries_since, chats_active_since, digests_sent_since

log = logging.getLogger(__name__)

# The advisory lock key of the digest worker ("jobd"), on PostgreSQL.
DIGESTS_LOCK = 0x6A6F6264
# A part Telegram rejects is sent offer by offer; a send asked to wait is retried in place.
ALONE_RETRIES = 3
ALONE_RETRY_WAIT = 30.0  # seconds, at most, per wait


class _Waits(Exception):
    """Telegram asks the digest sends to wait: the others wait for the next tick too."""


class DigestWorker:
    """Creates the digests that are due and sends every pending one."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        clock: Clock,
        bot: Bot,
        default_daily_limit: int,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._bot = bot
        self._default_limit = default_daily_limit
        self._failures = ChatFailures(log, "the digests")

    async def tick(self) -> None:
        """Gather what is due, send what is pending, queue the Monday summaries; each step
        runs even when another failed. One process at a time: two workers sending the same
        pending digest would send it twice (the others skip the tick; if the one doing it
        dies, the next tick of another does it, resuming after the last part recorded)."""
        async with self._sessions.exclusive(DIGESTS_LOCK) as mine:
            if not mine:
                return
            for step in (self.schedule, self.send_pending, self.weekly):
                try:
                    await step()
                except Exception:
                    log.exception("the digest worker's %s failed; next tick", step.__name__)

    async def weekly(self) -> int:
        """Queue the weekly summary of every chat with activity whose Monday 09:00 has come;
        one chat's failure is logged and its summary tried again at the next tick."""
        now = self._clock.now()
        queued = 0
        async with self._sessions() as session:
            chat_ids = await chats_active_since(session, now - timedelta(days=7))
            settings = await load_settings(session, chat_ids, default_limit=self._default_limit)
        for chat in settings.values():
            try:
                queued += await self._weekly_of(chat, now)
            except Exception as exc:
                self._failures.failed(
                    chat.chat_id, exc, "its weekly summary is tried again at the next tick"
                )
            else:
                self._failures.recovered(chat.chat_id)
        return queued

    async def _weekly_of(self, chat: ChatSettings, now: datetime) -> int:
        """Queue one chat's weekly summary if it is due; 1 if it was."""
        if not weekly_summary_due(chat.policy, now, chat.last_weekly_at, chat.created_at):
            return 0
        async with self._sessions.begin() as session:
            start = window_start(chat.policy, now)
            facts = await chat_deliveries_since(session, chat.chat_id, start - timedelta(days=1))
            funnel = await funnel_since(session, chat_id=chat.chat_id, since=start)
            sent = await digests_sent_since(session, chat.chat_id, start)
            week = week_stats(chat.policy, now, facts, funnel, sent)
            payload = weekly_payload(chat.policy, week)
            # A summary still waiting (held by a pause, or for a chat that went quiet) is
            # replaced, not stacked: back from 60 days of pause, one summary, the last week's.
            # Its follow-ups were marked as mentioned when it was written: they move to the new
            # one (dropped with it, they would never be mentioned at all).
            dropped = await outbox.drop_unsent_notices(session, chat_id=chat.chat_id, code="weekly")
            carried = [list(f) for old in dropped for f in old.get("followups") or []]
            # Saved offers not applied to after 3 days, mentioned once: here or in a digest.
            payload["followups"] = carried[:MAX_FOLLOWUPS] + await due_followups(
                session,
                chat_id=chat.chat_id,
                now=now,
                limit=max(0, MAX_FOLLOWUPS - len(carried)),
            )
            # The summary and its "sent this week" mark are written together: once only.
            await outbox.enqueue_notice(
                session,
                chat_ids=[chat.chat_id],
                payload=payload,
                now=now,
            )
            await update_chat_settings(session, chat.chat_id, last_weekly_at=now)
        return 1

    async def schedule(self) -> int:
        """Create a digest for every chat whose held offers are due; how many were created."""
        now = self._clock.now()
        created = 0
        async with self._sessions.begin() as session:
            held = await digests.held_by_chat(session)
            settings = await load_settings(session, sorted(held), default_limit=self._default_limit)
            for chat_id, reasons in held.items():
                chat = settings.get(chat_id)
                if chat is None:
                    continue
                try:
                    due = digest_due(chat.policy, now, reasons)
                except Exception as exc:  # a stored time zone this host cannot load
                    self._failures.failed(
                        chat_id, exc, "its held offers wait and are tried again at the next tick"
                    )
                    continue
                self._failures.recovered(chat_id)
                if not due:
                    continue
                catch_up = any(reason in CATCH_UP for reason, _ in reasons)
                digest_id = await digests.create_digest(
                    session,
                    chat_id=chat_id,
                    reason="catch_up" if catch_up else "scheduled",
                    now=now,
                    # A club's weekly digest stays on top of the chat for the week.
                    pin=not catch_up and chat.policy.digest_weekday is not None and chat_id < 0,
                )
                if digest_id is not None:
                    await attach_followups(session, chat_id=chat_id, digest_id=digest_id, now=now)
                    created += 1
        return created

    async def request(self, chat_id: int) -> bool:
        """/digest: gather everything held for a chat now; False when nothing is held (the
        follow-ups wait for a digest outside quiet hours and pauses, even one asked for)."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            digest_id = await digests.create_digest(
                session, chat_id=chat_id, reason="manual", now=now
            )
            chat = (await load_settings(session, [chat_id], default_limit=self._default_limit)).get(
                chat_id
            )
            if (
                digest_id is not None
                and chat is not None
                and not is_paused(chat.policy, now)
                and not in_quiet_hours(chat.policy, now)
            ):
                await attach_followups(session, chat_id=chat_id, digest_id=digest_id, now=now)
        return digest_id is not None

    async def _pin(self, chat_id: int, message_id: int) -> None:
        """Pin a weekly digest, silently; a club that does not let the bot pin still gets it."""
        try:
            await self._bot.pin_chat_message(chat_id, message_id, disable_notification=True)
        except TelegramError as exc:
            log.info("could not pin the weekly digest in chat %s: %s", chat_id, exc)

    async def send_pending(self) -> int:
        """Send every pending digest, resuming after the last part recorded as sent; one
        digest's failure is logged and it is tried again at the next tick, the others go on."""
        async with self._sessions() as session:
            pending = await digests.pending_digests(session)
        done = 0
        for digest in pending:
            try:
                finished = await self._send_digest(digest)
            except _Waits:
                return done
            except Exception as exc:
                self._failures.failed(
                    digest.chat_id,
                    exc,
                    f"digest {digest.digest_id} is tried again at the next tick",
                )
                continue
            if finished:
                done += 1
        return done

    async def _send_digest(self, digest: PendingDigest) -> bool:
        """Send a digest's parts not sent yet; True once it is finished. Raises _Waits when
        Telegram asks to wait (every digest then waits for the next tick)."""
        async with self._sessions() as session:
            offers = await digests.digest_offers(session, digest.digest_id)
        t = translator(digest.language)
        items = [(o.author, o.text, o.url) for o in offers]
        rendered = render_digest_parts(
            t, items, [o.tags for o in offers], followups=digest.followups
        )
        parts = [part for part, _ in rendered]
        chat_id = digest.chat_id
        finished = True
        for index in range(digest.parts_sent, len(parts)):
            attempted_at = self._clock.now()
            # One ⭐ per offer of the part, under it (not in channels: see with_buttons).
            keyboard = (
                list_keyboard([(offers[i].delivery_id, offers[i].text) for i in rendered[index][1]])
                if with_buttons(digest.chat_type)
                else None
            )
            result = await send_html(
                self._bot,
                chat_id,
                parts[index],
                reply_markup=keyboard,
                thread_id=digest.thread_id,
            )
            if result.outcome is Outcome.MIGRATED and result.new_chat_id is not None:
                async with self._sessions.begin() as session:
                    await chats.migrate_chat(
                        session, chat_id, result.new_chat_id, self._clock.now()
                    )
                finished = False
                break
            if result.outcome is Outcome.RETRY:
                log.info("digest %s waits: %s", digest.digest_id, result.error)
                raise _Waits
            if result.outcome is Outcome.CHAT_GONE:
                async with self._sessions.begin() as session:
                    await chats.deactivate_chat(
                        session, chat_id, self._clock.now(), unless_heard_since=attempted_at
                    )
                finished = False
                break
            if result.outcome is Outcome.REJECTED:
                log.warning(
                    "Telegram rejected part %d of digest %s: %s; sending it offer by offer",
                    index,
                    digest.digest_id,
                    result.error,
                )
                # One faulty offer must not hold the digest back for ever: its offers go
                # one by one, and only those Telegram rejects alone are left out. If it
                # rejects every one (a group that took away the bot's right to write), the
                # chat is the problem: the digest stays pending, its offers kept.
                one_by_one = [
                    render_digest_parts(t, [items[i]], [offers[i].tags], title=False)[0][0]
                    for i in rendered[index][1]
                ]
                sent_any = False
                for single in one_by_one:
                    alone = await send_html(
                        self._bot, chat_id, single.lstrip("\n"), thread_id=digest.thread_id
                    )
                    # The part's progress is not recorded offer by offer: a retry here
                    # waits in place (a little) rather than start the part over, which
                    # would send its first offers again.
                    for _ in range(ALONE_RETRIES):
                        if alone.outcome is not Outcome.RETRY:
                            break
                        await asyncio.sleep(
                            min(alone.retry_after.total_seconds(), ALONE_RETRY_WAIT)
                        )
                        alone = await send_html(
                            self._bot,
                            chat_id,
                            single.lstrip("\n"),
                            thread_id=digest.thread_id,
                        )
                    if alone.outcome is Outcome.SENT:
                        sent_any = True
                    elif alone.outcome is Outcome.REJECTED:
                        log.warning(
                            "digest %s: an offer Telegram rejects was left out: %s",
                            digest.digest_id,
                            alone.error,
                        )
                    else:
                        # Still retrying, or the chat is gone: next tick, from this part
                        # (the offers sent alone so far may then come twice; logged).
                        log.warning(
                            "digest %s: sending offer by offer stopped (%s); the part is "
                            "tried again at the next tick",
                            digest.digest_id,
                            alone.error,
                        )
                        if alone.outcome is Outcome.RETRY:
                            raise _Waits
                        return False  # this chat's trouble: the other digests go on
                if not sent_any and one_by_one:
                    finished = False
                    break
            async with self._sessions.begin() as session:
                await digests.record_part(session, digest_id=digest.digest_id, parts_sent=index + 1)
            if index == 0 and digest.pin and result.message_id is not None:
                await self._pin(chat_id, result.message_id)
        if finished:
            async with self._sessions.begin() as session:
                await digests.finish_digest(
                    session, digest_id=digest.digest_id, now=self._clock.now()
                )
        return finished
