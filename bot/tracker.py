"""From offer to application: the service behind ⭐ Save, ✅ Applied and 👎 Not for me, /saved,
/applied, their status buttons and /export applications. Takes plain values, owns its
transactions; what one chat marks is only ever read back for that chat."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from storage import applications as store
from storage import digests
from storage.applications import Marks, Tracked
from storage.db import Sessions
from storage.models import ApplicationStatus

PAGE_SIZE = 5
# /saved and /applied pages a button may name (callback data is the client's to forge).
MAX_PAGE = 10_000
# Rows of /export applications at most (the newest): a CSV of 5,000 rows is about 2 MB,
# well under Telegram's 50 MB and quick to build; a person has never applied to more.
MAX_EXPORT_ROWS = 5_000
EXCERPT = 200  # characters of an offer's text in the CSV
# One /export applications per chat this often: each reads up to MAX_EXPORT_ROWS offers (their
# full texts, up to 4,000 characters each: some 20 MB) and uploads a file of up to 2 MB; the
# per-person command throttle alone let one person ask for 30 a minute.
EXPORT_EVERY = timedelta(minutes=1)
MAX_EXPORTERS = 10_000  # chats remembered at once (the stale ones are forgotten first)
# Cells a spreadsheet would run as a formula (CSV injection): prefixed with a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"  # zero-width characters str.strip keeps

SAVE, APPLIED, NOT_FOR_ME = "save", "applied", "not_for_me"
# A saved offer not applied to after this long is mentioned once, inside the next digest or
# Monday summary (never a message of its own); at most MAX_FOLLOWUPS at a time.
FOLLOW_UP_AFTER = timedelta(days=3)
MAX_FOLLOWUPS = 5
FOLLOWUP_EXCERPT = 80
# Offers one chat keeps (saved or applied to) at most: each keeps its offer past retention, so
# a script saving every offer of a digest (30 presses a minute, 43,000 a day) would otherwise
# pin the database's offers without end. At this bound the export still holds them all.
MAX_TRACKED = 5_000
# The mute offer is a message of its own: undoing and redoing the third 👎 in a loop would
# have the bot send one each time (the bot's send rate is shared by every chat). Once a day a
# source per chat at most; MAX_MUTE_OFFERS remembered (in memory, per process).
MUTE_OFFER_EVERY = timedelta(days=1)
MAX_MUTE_OFFERS = 10_000
MUTE_AFTER = 3  # 👎 on one source's offers before the chat is offered to stop following it


@dataclass(frozen=True, slots=True)
class Pressed:
    """What a press under an offer did: the marks now, and what to tell the person."""

    marks: Marks
    # saved | unsaved | applied | unapplied | not_for_me | cleared | advanced | kept | full
    outcome: str
    # After the MUTE_AFTER-th 👎 on offers of a source the chat follows: (source id, name),
    # for a one-tap mute.
    mute: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of /saved or /applied."""

    items: list[Tracked]
    page: int  # 0-based, within range
    pages: int
    total: int


def excerpt(text: str, limit: int) -> str:
    """An offer's text on one line, cut to `limit` characters with "…"."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def safe_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a quote, also
    behind leading blanks (` =1+1`, a newline, a no-break or zero-width space: Google Sheets
    and LibreOffice may trim them on import and run what follows)."""
    start = next((i for i, c in enumerate(value) if not (c.isspace() or c in INVISIBLE)), 0)
    if value.startswith(FORMULA_STARTS) or value[start:].startswith(FORMULA_STARTS):
        return "'" + value
    return value


def applications_csv(rows: list[Tracked]) -> bytes:
    """The applications as CSV, UTF-8 with a byte-order mark: Excel (the tool most people
    open a CSV with) reads a BOM-less file as the local code page and garbles accents
    (« Développeur »); LibreOffice, Google Sheets and Python's `utf-8-sig` read it fine."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["date applied", "source", "text excerpt", "link", "status"])
    for row in rows:
        link = (row.tags or {}).get("apply_url")
        writer.writerow(
            [
                safe_cell(row.applied_at.date().isoformat() if row.applied_at else ""),
                safe_cell(row.author),
                safe_cell(excerpt(row.text, EXCERPT)),
                safe_cell(link if isinstance(link, str) and link else row.url),
                safe_cell(row.status.value),
            ]
        )
    # A lone UTF-16 surrogate cannot be written as UTF-8: the text columns cannot store one,
    # but the tags are JSON, which can. Should one get there, it becomes "?" rather than
    # failing the whole export.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8", "replace")


async def due_followups(
    session: AsyncSession, *, chat_id: int, now: datetime, limit: int = MAX_FOLLOWUPS
) -> list[list[str]]:
    """The follow-ups due for a chat ([author, url, excerpt] each, `limit` at most), marked as
    mentioned in the caller's transaction: the digest or summary that carries them is written
    in it too."""
    if limit <= 0:
        return []
    due = await store.due_followups(
        session,
        chat_id=chat_id,
        saved_before=now - FOLLOW_UP_AFTER,
        now=now,
        limit=limit,
    )
    return [[row.author, row.url, excerpt(row.text, FOLLOWUP_EXCERPT)] for row in due]


async def attach_followups(
    session: AsyncSession, *, chat_id: int, digest_id: int, now: datetime
) -> None:
    """Put the chat's due follow-ups at the end of a digest just created."""
    followups = await due_followups(session, chat_id=chat_id, now=now)
    if followups:
        await digests.set_followups(session, digest_id=digest_id, followups=followups)


class Tracker:
    """Saved offers and applications, per chat."""

    def __init__(self, *, sessions: Sessions, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock
        self._exported: dict[int, datetime] = {}  # chat id -> its last export
        self._mute_offered: dict[tuple[int, int], datetime] = {}  # (chat, source) -> when

    async def press(self, chat_id: int, delivery_id: int, action: str) -> Pressed | None:
        """⭐, ✅ or 👎 pressed under one of this chat's offers; pressing again undoes. None when
        the delivery is not this chat's offer (forged, another chat's, or pruned)."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            marks = await store.delivery_marks(session, chat_id=chat_id, delivery_id=delivery_id)
            if marks is None:
                return None
            offer = marks.offer_id
            outcome = "kept"
            mute: tuple[int, str] | None = None
            if (
                action in (SAVE, APPLIED)
                and not marks.saved
                and await store.count_all_tracked(session, chat_id=chat_id) >= MAX_TRACKED
            ):
                return Pressed(marks=marks, outcome="full")
            if action == SAVE:
                if not marks.saved:
                    await store.save(session, chat_id=chat_id, offer_id=offer, now=now)
                    await store.set_not_for_me(session, chat_id=chat_id, offer_id=offer, on=False)
                    outcome = "saved"
                elif not marks.applied:
                    await store.unsave(session, chat_id=chat_id, offer_id=offer)
                    outcome = "unsaved"
                # (an application is not dropped by ⭐: ✅ undoes it first, on purpose)
            elif action == APPLIED:
                if marks.status is ApplicationStatus.APPLIED:
                    await store.set_status(
                        session,
                        chat_id=chat_id,
                        offer_id=offer,
                        status=ApplicationStatus.SAVED,
                        now=now,
                    )
                    outcome = "unapplied"
                elif not marks.applied:
                    await store.save(session, chat_id=chat_id, offer_id=offer, now=now)
                    await store.set_status(
                        session,
                        chat_id=chat_id,
                        offer_id=offer,
                        status=ApplicationStatus.APPLIED,
                        now=now,
                    )
                    await store.set_not_for_me(session, chat_id=chat_id, offer_id=offer, on=False)
                    outcome = "applied"
                else:  # an interview or an answer is changed from /applied, not by this button
                    outcome = "advanced"
            elif action == NOT_FOR_ME:
                if marks.not_for_me:
                    await store.set_not_for_me(session, chat_id=chat_id, offer_id=offer, on=False)
                    outcome = "cleared"
                elif not marks.applied:
                    await store.unsave(session, chat_id=chat_id, offer_id=offer)
                    await store.set_not_for_me(session, chat_id=chat_id, offer_id=offer, on=True)
                    outcome = "not_for_me"
                    source = await store.not_for_me_on_source(
                        session, chat_id=chat_id, offer_id=offer
                    )
                    # Offered once, at the third: undoing and pressing again offers it again.
                    if (
                        source is not None
                        and source[2] == MUTE_AFTER
                        and source[3]
                        and self._offer_mute_now(chat_id, source[0], now)
                    ):
                        mute = (source[0], source[1])
            else:
                return None
            after = await store.delivery_marks(session, chat_id=chat_id, delivery_id=delivery_id)
        return Pressed(marks=after or marks, outcome=outcome, mute=mute)

    def _offer_mute_now(self, chat_id: int, source_id: int, now: datetime) -> bool:
        """Whether the one-tap mute of this source may be offered to this chat now (not in the
        last MUTE_OFFER_EVERY), counted as offered if so."""
        key = (chat_id, source_id)
        last = self._mute_offered.get(key)
        if last is not None and now - last < MUTE_OFFER_EVERY:
            return False
        if len(self._mute_offered) >= MAX_MUTE_OFFERS:
            self._mute_offered = {
                k: t for k, t in self._mute_offered.items() if now - t < MUTE_OFFER_EVERY
            }
            if len(self._mute_offered) >= MAX_MUTE_OFFERS:  # all recent: forget the oldest half
                kept = sorted(self._mute_offered.items(), key=lambda item: item[1])
                self._mute_offered = dict(kept[MAX_MUTE_OFFERS // 2 :])
        self._mute_offered[key] = now
        return True

    async def mute(self, chat_id: int, source_id: int) -> bool:
        """The one-tap mute: stop following a source; False if the chat did not follow it."""
        async with self._sessions.begin() as session:
            return await store.mute_source(session, chat_id=chat_id, source_id=source_id)

    async def page(self, chat_id: int, *, applied: bool, page: int) -> Page:
        """One page of /saved (or /applied), newest first; a page past the end is the last."""
        async with self._sessions() as session:
            total = await store.count_tracked(session, chat_id=chat_id, applied=applied)
            pages = max(1, math.ceil(total / PAGE_SIZE))
            page = min(max(page, 0), pages - 1)
            items = await store.tracked_page(
                session,
                chat_id=chat_id,
                applied=applied,
                offset=page * PAGE_SIZE,
                limit=PAGE_SIZE,
            )
        return Page(items=items, page=page, pages=pages, total=total)

    async def set_status(
        self, chat_id: int, application_id: int, status: ApplicationStatus | None
    ) -> bool:
        """Move one of this chat's saved offers or applications to `status` (None: remove it
        from /saved). False for another chat's or a forgotten one."""
        async with self._sessions.begin() as session:
            found = await store.status_of(session, chat_id=chat_id, application_id=application_id)
            if found is None:
                return False
            offer_id, _ = found
            if status is None:
                await store.unsave(session, chat_id=chat_id, offer_id=offer_id)
            else:
                await store.set_status(
                    session,
                    chat_id=chat_id,
                    offer_id=offer_id,
                    status=status,
                    now=self._clock.now(),
                )
        return True

    def export_wait(self, chat_id: int) -> timedelta | None:
        """How long the chat must wait before its next export (None: it may export now, which
        is counted). In memory: a restart forgets, and each process counts its own."""
        now = self._clock.now()
        last = self._exported.get(chat_id)
        if last is not None and now - last < EXPORT_EVERY:
            return EXPORT_EVERY - (now - last)
        if len(self._exported) >= MAX_EXPORTERS:
            self._exported = {c: t for c, t in self._exported.items() if now - t < EXPORT_EVERY}
            if len(self._exported) >= MAX_EXPORTERS:  # all recent: forget the oldest half
                kept = sorted(self._exported.items(), key=lambda item: item[1])
                self._exported = dict(kept[MAX_EXPORTERS // 2 :])
        self._exported[chat_id] = now
        return None

    def export_not_sent(self, chat_id: int) -> None:
        """An export that found nothing to send (one query) does not count: the person who
        applies right after may export at once."""
        self._exported.pop(chat_id, None)

    async def export(self, chat_id: int) -> tuple[list[Tracked], int]:
        """The chat's applications for the CSV (newest first, MAX_EXPORT_ROWS at most), and
        how many there are in all."""
        async with self._sessions() as session:
            total = await store.count_tracked(session, chat_id=chat_id, applied=True)
            rows = await store.tracked_page(
                session, chat_id=chat_id, applied=True, offset=0, limit=MAX_EXPORT_ROWS
            )
        return rows, total

    def now(self) -> datetime:
        """The service's clock (ages in /saved are counted from it)."""
        return self._clock.now()
