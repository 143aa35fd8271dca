"""The outbox: offers stored once, one delivery row per chat, claimed and settled by the sender."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import (
    CategorySubscription,
    Chat,
    ChatFilter,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Offer,
    OfferBand,
    OfferCategory,
    Source,
    Subscription,
)
from storage.sql import affected, insert_ignoring_conflicts, is_postgresql

STORE_CHUNK = 1_000  # posts per INSERT (11 parameters each; PostgreSQL allows 32,767)
ID_CHUNK = 5_000  # offer ids per statement
GROUP_BATCH = 50  # rows of one group or channel claimed at once, to be merged
NEAR_CANDIDATES = 20  # near-identical checks per new offer, most similar first


class NewOffer(Protocol):
    """What storing an offer needs of a post (bot.sources.base.Post has it)."""

    @property
    def external_id(self) -> str: ...
    @property
    def author(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def posted_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class Reading:
    """What bot.classify understood of a post, as plain values to store."""

    is_offer: bool
    categories: tuple[str, ...] = ()
    tags: dict[str, Any] = field(default_factory=dict)
    search_text: str | None = None
    fingerprint: str | None = None  # None: too short to tell two posts apart safely
    sketch: tuple[int, ...] = ()  # MinHash band keys, to find near-identical wordings


@dataclass(frozen=True, slots=True)
class IncomingOffer:
    """A post of a source with what was understood of it."""

    source_id: int
    post: NewOffer
    reading: Reading | None = None


@dataclass(frozen=True, slots=True)
class Credit:
    """Another account that posted the same offer."""

    author: str
    url: str


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """One outbox row a sender now holds, with everything needed to render it."""

    delivery_id: int
    chat_id: int
    language: str
    kind: DeliveryKind
    attempts: int
    offer_author: str | None
    offer_text: str | None
    offer_url: str | None
    payload: dict[str, Any] | None
    offer_tags: dict[str, Any] | None = None
    also: tuple[Credit, ...] = ()
    thread_id: int = 0  # the forum topic (0: none / General)
    chat_type: str = "private"

    @property
    def shared_chat(self) -> bool:
        """A group, supergroup or channel: paced, and its offers merged."""
        return self.chat_type != "private"


async def store_offers(
    session: AsyncSession, *, offers: Sequence[IncomingOffer], now: datetime
) -> list[int]:
    """Store new posts (ignoring ones already stored) in the given order; their new ids.

    Written in chunks: one statement may carry at most 32,767 parameters on PostgreSQL, and a
    cycle after a long stop can bring thousands of posts.
    """
    ids: list[int] = []
    for start in range(0, len(offers), STORE_CHUNK):
        ids += await _store_chunk(session, offers[start : start + STORE_CHUNK], now)
    return sorted(ids)


async def _store_chunk(
    session: AsyncSession, offers: Sequence[IncomingOffer], now: datetime
) -> list[int]:
    if not offers:
        return []
    statement = (
        insert_ignoring_conflicts(session, Offer)
        .values(
            [
                {
                    "source_id": offer.source_id,
                    "external_id": offer.post.external_id,
                    "author": offer.post.author,
                    "text": offer.post.text,
                    "url": offer.post.url,
                    "posted_at": offer.post.posted_at,
                    "created_at": now,
                    "is_offer": offer.reading.is_offer if offer.reading else None,
                    "tags": _tags(offer.reading) if offer.reading else None,
                    "search_text": offer.reading.search_text if offer.reading else None,
                    "fingerprint": offer.reading.fingerprint if offer.reading else None,
                }
                for offer in offers
            ]
        )
        .on_conflict_do_nothing(index_elements=["source_id", "external_id"])
        .returning(Offer.id, Offer.source_id, Offer.external_id)
    )
    rows = (await session.execute(statement)).all()
    ids = sorted(int(row[0]) for row in rows)
    stored = {(int(row[1]), str(row[2])): int(row[0]) for row in rows}
    categories = [
        {"offer_id": stored[key], "category": category}
        for offer in offers
        if offer.reading is not None
        and (key := (offer.source_id, offer.post.external_id)) in stored
        for category in dict.fromkeys(offer.reading.categories)
    ]
    if categories:
        await session.execute(insert(OfferCategory), categories)
    bands = [
        {"offer_id": stored[key], "band": band}
        for offer in offers
        if offer.reading is not None
        and offer.reading.fingerprint is not None
        and (key := (offer.source_id, offer.post.external_id)) in stored
        for band in dict.fromkeys(offer.reading.sketch)
    ]
    if bands:
        await session.execute(insert(OfferBand), bands)
    return ids


def _tags(reading: Reading) -> dict[str, Any]:
    return {**reading.tags, "categories": list(reading.categories)}


async def link_stories(
    session: AsyncSession,
    *,
    offer_ids: list[int],
    since: datetime,
    near_identical: Callable[[str, str], bool] | None = None,
) -> int:
    """Point each new offer at the first offer of its story stored since `since` (another
    account, or the same one, posting it again): chats get a story once.

    The same fingerprint makes the same story; so does a near-identical wording when
    `near_identical` says so of a candidate that shares a MinHash band key.
    """
    linked = 0
    for start in range(0, len(offer_ids), ID_CHUNK):
        chunk = offer_ids[start : start + ID_CHUNK]
        linked += await _link_same_fingerprint(session, chunk, since)
        if near_identical is not None:
            linked += await _link_near_identical(session, chunk, since, near_identical)
    return linked


async def _link_same_fingerprint(
    session: AsyncSession, offer_ids: list[int], since: datetime
) -> int:
    first, head = aliased(Offer), aliased(Offer)
    # The head of the oldest story with this fingerprint (the first offer, or what it joined),
    # itself stored since `since`: a newer copy never ties an offer to a story long gone.
    earliest = (
        select(func.min(head.id))
        .select_from(first)
        .join(head, head.id == func.coalesce(first.story_id, first.id))
        .where(
            first.fingerprint == Offer.fingerprint,
            first.id < Offer.id,
            first.created_at >= since,
            head.created_at >= since,
        )
        .scalar_subquery()
    )
    result = await session.execute(
        update(Offer)
        .where(Offer.id.in_(offer_ids), Offer.fingerprint.is_not(None))
        .values(story_id=earliest)
        .execution_options(synchronize_session=False)
    )
    return affected(result)


async def _link_near_identical(
    session: AsyncSession,
    offer_ids: list[int],
    since: datetime,
    near_identical: Callable[[str, str], bool],
) -> int:
    # Two plain indexed reads, matched here: one join of the new offers' bands to everyone's
    # lets the planner pair every new offer with every old one while a burst of new rows has
    # no statistics yet (PostgreSQL took seconds for a few hundred offers).
    mine = (
        await session.execute(
            select(OfferBand.offer_id, OfferBand.band, Offer.is_offer)
            .join(Offer, Offer.id == OfferBand.offer_id)
            .where(OfferBand.offer_id.in_(offer_ids), Offer.story_id.is_(None))
        )
    ).all()
    if not mine:
        return 0
    bands: dict[int, list[int]] = defaultdict(list)
    reading: dict[int, bool] = {}
    for offer_id, band, is_offer in mine:
        bands[offer_id].append(band)
        reading[offer_id] = bool(is_offer)
    distinct = sorted({band for _, band, _ in mine})
    holders: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for start in range(0, len(distinct), ID_CHUNK):
        rows = await session.execute(
            select(OfferBand.band, OfferBand.offer_id, Offer.is_offer)
            .join(Offer, Offer.id == OfferBand.offer_id)
            .where(
                OfferBand.band.in_(distinct[start : start + ID_CHUNK]),
                Offer.story_id.is_(None),
                Offer.created_at >= since,
            )
        )
        for band, old_id, is_offer in rows:
            holders[band].append((old_id, bool(is_offer)))
    # The most similar first, and a bounded number of checks per offer: a job board's
    # templated posts share band keys with many others. One story is one reading: an offer
    # and a non-offer never merge.
    chosen: dict[int, list[int]] = {}
    for new_id in sorted(bands):
        shared = Counter(
            old_id
            for band in bands[new_id]
            for old_id, is_offer in holders[band]
            if old_id < new_id and is_offer == reading[new_id]
        )
        if shared:
            ranked = sorted(shared.items(), key=lambda item: (-item[1], item[0]))
            chosen[new_id] = [old_id for old_id, _ in ranked[:NEAR_CANDIDATES]]
    if not chosen:
        return 0
    wanted = sorted(set(chosen) | {o for olds in chosen.values() for o in olds})
    readings: dict[int, Any] = {}
    for start in range(0, len(wanted), ID_CHUNK):
        rows = await session.execute(
            select(Offer.id, Offer.text, Offer.tags).where(
                Offer.id.in_(wanted[start : start + ID_CHUNK])
            )
        )
        readings.update((row.id, row) for row in rows)
    stories: dict[int, int] = {}
    for new_id, olds in chosen.items():
        mine_row = readings[new_id]
        for old_id in olds:
            if old_id in stories:
                continue  # it joined a story in this very batch: it heads none
            old_row = readings[old_id]
            if _categories(mine_row.tags) == _categories(old_row.tags) and near_identical(
                mine_row.text, old_row.text
            ):
                stories[new_id] = old_id
                break
    for new_id, old_id in stories.items():
        await session.execute(update(Offer).where(Offer.id == new_id).values(story_id=old_id))
        # Offers that had just joined this one's story join its head instead: a story is
        # never a chain (the fan-out follows one link).
        await session.execute(update(Offer).where(Offer.story_id == new_id).values(story_id=old_id))
    return len(stories)


def _categories(tags: dict[str, Any] | None) -> list[str]:
    return sorted((tags or {}).get("categories") or [])


def _filtered_out(chat_id: Any, *search_texts: Any) -> Any:
    """True when one of the chat's /filter words rules out one of these readings.

    One EXISTS for all the readings: the chat's filters are looked up once per row written
    (100,000 rows at a time for a big account), not once per reading.
    """
    padded = literal(" ") + ChatFilter.phrase + literal(" ")

    def rules_out(search_text: Any) -> Any:
        contains = search_text.like(literal("%") + padded + literal("%"))
        return and_(
            search_text.is_not(None),
            or_(
                and_(ChatFilter.include.is_(True), ~contains),
                and_(ChatFilter.include.is_(False), contains),
            ),
        )

    return (
        select(ChatFilter.chat_id)
        .where(ChatFilter.chat_id == chat_id, or_(*(rules_out(text) for text in search_texts)))
        .exists()
    )


async def fan_out(
    session: AsyncSession, *, offer_ids: list[int], now: datetime, curated_only: bool = False
) -> int:
    """One pending delivery per active chat and story (see `_fan_out`), in chunks of offers."""
    written = 0
    for start in range(0, len(offer_ids), ID_CHUNK):
        written += await _fan_out(session, offer_ids[start : start + ID_CHUNK], now, curated_only)
    return written


async def _fan_out(
    session: AsyncSession, offer_ids: list[int], now: datetime, curated_only: bool
) -> int:
    """One pending delivery per active chat and story, in one set-based statement.

    A chat gets an offer when it follows the account that posted it, or one of the offer's
    categories (with `curated_only`, only an offer of a curated source, a job board: a
    stranger's own feed must not reach every follower of `software`), unless its /filter rules
    it out; an offer that another account posted first is the same story and is not sent again.
    """
    if not offer_ids:
        return 0
    by_account = (
        select(
            Subscription.chat_id.label("chat_id"),
            Subscription.thread_id.label("thread_id"),
            Offer.id.label("offer_id"),
            literal(False).label("via_category"),
        )
        .join(Offer, Offer.source_id == Subscription.source_id)
        .where(Offer.id.in_(offer_ids))
    )
    by_category = (
        select(
            CategorySubscription.chat_id.label("chat_id"),
            CategorySubscription.thread_id.label("thread_id"),
            OfferCategory.offer_id.label("offer_id"),
            literal(True).label("via_category"),
        )
        .join(OfferCategory, OfferCategory.category == CategorySubscription.category)
        .where(OfferCategory.offer_id.in_(offer_ids))
    )
    if curated_only:
        by_category = by_category.where(
            OfferCategory.offer_id.in_(
                select(Offer.id)
                .join(Source, Source.id == Offer.source_id)
                .where(Offer.id.in_(offer_ids), Source.board.is_(True))
            )
        )
    # UNION ALL: a chat that follows both the account and one of the offer's categories (or
    # two of them) comes twice, and ON CONFLICT DO NOTHING keeps one row, as it does for two
    # offers of one story; de-duplicating here cost a hash of all 100,000 rows of a big account.
    wanted = union_all(by_account, by_category).subquery()
    story: Any = func.coalesce(Offer.story_id, Offer.id)
    head = aliased(Offer)
    head_source = aliased(Source)
    if curated_only:
        # A story another source began (a stranger copying a board's offer with their own
        # link, posted first) reaches category followers as the board wrote it.
        story = case(
            (and_(wanted.c.via_category.is_(True), head_source.board.is_(False)), Offer.id),
            else_=story,
        )
    chosen = (
        select(
            wanted.c.chat_id,
            wanted.c.thread_id,
            story,
            literal(DeliveryKind.OFFER.value),
            literal(DeliveryStatus.PENDING.value),
            literal(0),
            literal(now, type_=Delivery.__table__.c.next_attempt_at.type),
            literal(now, type_=Delivery.__table__.c.created_at.type),
        )
        .join(Chat, and_(Chat.id == wanted.c.chat_id, Chat.active.is_(True)))
        .join(Offer, Offer.id == wanted.c.offer_id)
        .join(head, head.id == func.coalesce(Offer.story_id, Offer.id))
        .join(head_source, head_source.id == head.source_id)
        # The chat reads the story's first wording: the filter must pass both.
        .where(~_filtered_out(wanted.c.chat_id, Offer.search_text, head.search_text))
        .order_by(Offer.id, wanted.c.chat_id, wanted.c.thread_id)
    )
    statement = (
        insert_ignoring_conflicts(session, Delivery)
        .from_select(
            [
                "chat_id",
                "thread_id",
                "offer_id",
                "kind",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
            ],
            chosen,
        )
        .on_conflict_do_nothing(index_elements=["chat_id", "offer_id", "thread_id"])
    )
    result = await session.execute(statement)
    return affected(result)


async def enqueue_notice(
    session: AsyncSession, *, chat_ids: list[int], payload: dict[str, Any], now: datetime
) -> None:
    """Queue a service message (rendered in each chat's language when sent)."""
    if not chat_ids:
        return
    await session.execute(
        insert(Delivery),
        [
            {
                "chat_id": chat_id,
                "offer_id": None,
                "kind": DeliveryKind.NOTICE.value,
                "payload": payload,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for chat_id in chat_ids
        ],
    )


async def drop_unsent_notices(
    session: AsyncSession, *, chat_id: int, code: str
) -> list[dict[str, Any]]:
    """Delete a chat's service messages of this kind (payload `code`) not sent yet, waiting
    or being put off by a sender; their payloads (what they carried that must not be lost
    with them: a weekly summary's follow-ups). A newer one replaces them: a chat back from a
    long pause gets one weekly summary, not one a week."""
    rows = await session.execute(
        select(Delivery.id, Delivery.payload).where(
            Delivery.chat_id == chat_id,
            Delivery.kind == DeliveryKind.NOTICE,
            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
        )
    )
    dropped = {
        i: payload
        for i, payload in rows
        if isinstance(payload, dict) and payload.get("code") == code
    }
    if dropped:
        await session.execute(delete(Delivery).where(Delivery.id.in_(list(dropped))))
    return list(dropped.values())


async def subscriber_ids(session: AsyncSession, source_id: int) -> list[int]:
    """The active chats that follow a source."""
    rows = await session.scalars(
        select(Subscription.chat_id)
        .join(Chat, and_(Chat.id == Subscription.chat_id, Chat.active.is_(True)))
        .where(Subscription.source_id == source_id)
        .distinct()  # once per chat, however many of its forum topics follow the source
    )
    return list(rows)


async def claim(
    session: AsyncSession,
    *,
    now: datetime,
    lease_until: datetime,
    limit: int,
    per_chat: int = 5,
    per_group: int = GROUP_BATCH,
    owner: int | None = None,
) -> list[ClaimedDelivery]:
    """Take up to `limit` due rows of active chats, oldest first, leasing them until `lease_until`
    to `owner` (the claiming worker, on PostgreSQL: its leases are released if it dies).

    A row still `sending` after its lease ran out belongs to a sender that died: it is due again.
    A group or channel is paced: nothing is due for it before its `next_send_at`, and then up to
    `per_group` rows at once (the sender merges them into few messages).
    """
    older = aliased(Delivery)
    # A chat's messages go out in order: a row waits while an older one of its chat is held
    # by a live lease or waits for a retry.
    blocked_by_older = (
        select(older.id)
        .where(
            older.chat_id == Delivery.chat_id,
            older.id < Delivery.id,
            older.kind == DeliveryKind.OFFER,  # a deferred service message holds up nothing
            or_(
                and_(older.status == DeliveryStatus.PENDING, older.next_attempt_at > now),
                and_(older.status == DeliveryStatus.SENDING, older.lease_until >= now),
            ),
        )
        .exists()
    )
    is_due = or_(
        and_(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now),
        and_(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_until < now),
    )
    ranked = (
        select(
            Delivery.id,
            func.row_number()
            .over(partition_by=Delivery.chat_id, order_by=Delivery.id)
            .label("rank"),
            case((Chat.type == "private", per_chat), else_=per_group).label("allowed"),
        )
        .join(Chat, and_(Chat.id == Delivery.chat_id, Chat.active.is_(True)))
        .where(
            or_(Chat.next_send_at.is_(None), Chat.next_send_at <= now),
            is_due,
            ~blocked_by_older,
        )
        .subquery()
    )
    # A few rows per chat per batch: a slow group (20 messages a minute) never holds up
    # everyone else's batch.
    chosen = (
        select(ranked.c.id)
        .where(ranked.c.rank <= ranked.c.allowed)
        .order_by(ranked.c.id)
        .limit(limit)
    )
    # The due conditions again, outside the subquery: when a row was claimed and committed by
    # another sender while this statement ran, PostgreSQL re-checks the locking query's own
    # WHERE on the row's new version (never a subquery's snapshot); without them, that row
    # would be claimed a second time.
    due = select(Delivery.id).where(Delivery.id.in_(chosen), is_due).order_by(Delivery.id)
    if is_postgresql(session):
        due = due.with_for_update(skip_locked=True, key_share=True)
    ids = list(await session.scalars(due))
    if not ids:
        return []
    await session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids))
        .values(
            status=DeliveryStatus.SENDING,
            lease_until=lease_until,
            lease_owner=owner,
            attempts=Delivery.attempts + 1,
        )
    )
    rows = (
        await session.execute(
            select(
                Delivery, Chat.language, Offer.author, Offer.text, Offer.url, Offer.tags, Chat.type
            )
            .join(Chat, Chat.id == Delivery.chat_id)
            .outerjoin(Offer, Offer.id == Delivery.offer_id)
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.id)
        )
    ).all()
    credits = await story_credits(
        session,
        [d.offer_id for d, *_ in rows if d.offer_id is not None],
        chat_ids=[d.chat_id for d, *_ in rows],
    )
    return [
        ClaimedDelivery(
            delivery_id=delivery.id,
            chat_id=delivery.chat_id,
            language=language,
            kind=delivery.kind,
            attempts=delivery.attempts,
            offer_author=author,
            offer_text=text,
            offer_url=url,
            payload=delivery.payload,
            offer_tags=tags,
            also=_others(credits.get((delivery.chat_id, delivery.offer_id or 0), ()), author),
            thread_id=delivery.thread_id or 0,
            chat_type=chat_type,
        )
        for delivery, language, author, text, url, tags, chat_type in rows
    ]


async def pace_chat(session: AsyncSession, *, chat_id: int, until: datetime) -> None:
    """A group or channel got messages: nothing more is due for it before `until`."""
    await session.execute(update(Chat).where(Chat.id == chat_id).values(next_send_at=until))


# A story names at most this many other sources that posted it.
MAX_CREDITS = 3


def _others(credits: Sequence[Credit], author: str | None) -> tuple[Credit, ...]:
    """The credits other than the offer's own poster, at most MAX_CREDITS."""
    mine = (author or "").lower()
    return tuple(c for c in credits if c.author.lower() != mine)[:MAX_CREDITS]


async def story_credits(
    session: AsyncSession, story_ids: Sequence[int], *, chat_ids: Sequence[int]
) -> dict[tuple[int, int], tuple[Credit, ...]]:
    """The other sources that posted each story, as each chat may see them (by chat id and
    story id): only sources the chat follows or curated ones (a stranger's feed that copied
    the offer is not advertised in other people's chats), first poster first, each named
    once, at most MAX_CREDITS."""
    if not story_ids:
        return {}
    rows = (
        await session.execute(
            select(Offer.story_id, Offer.author, Offer.url, Offer.source_id, Source.board)
            .join(Source, Source.id == Offer.source_id)
            .where(Offer.story_id.in_(set(story_ids)))
            .order_by(Offer.id)
        )
    ).all()
    if not rows:
        return {}
    followed = {
        (chat_id, source_id)
        for chat_id, source_id in await session.execute(
            select(Subscription.chat_id, Subscription.source_id).where(
                Subscription.chat_id.in_(set(chat_ids)),
                Subscription.source_id.in_({r.source_id for r in rows}),
            )
        )
    }
    credits: dict[tuple[int, int], dict[str, Credit]] = {}
    for chat_id in set(chat_ids):
        for story_id, author, url, source_id, board in rows:
            shown = credits.setdefault((chat_id, int(story_id or 0)), {})
            # One more than shown: one of them may be the offer's own poster (see _others).
            if len(shown) <= MAX_CREDITS and (board or (chat_id, source_id) in followed):
                shown.setdefault(author.lower(), Credit(author, url))
    return {key: tuple(by_author.values()) for key, by_author in credits.items()}


async def renew_leases(
    session: AsyncSession, *, claims: dict[int, int], until: datetime
) -> set[int]:
    """Extend the lease of the rows this sender still holds (`claims`: row id -> its attempts
    when claimed) to `until`; returns the ids another sender claimed since (its claim counted
    one more attempt): those are no longer this sender's to send."""
    if not claims:
        return set()
    rows = (
        await session.execute(
            select(Delivery.id, Delivery.attempts, Delivery.status).where(
                Delivery.id.in_(list(claims))
            )
        )
    ).all()
    held = [
        i
        for i, attempts, status in rows
        if status == DeliveryStatus.SENDING and attempts == claims[i]
    ]
    if held:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(held), Delivery.status == DeliveryStatus.SENDING)
            .values(lease_until=until)
        )
    return {i for i, attempts, _ in rows if attempts != claims[i]}


async def mark_sent(
    session: AsyncSession, *, delivery_id: int, message_id: int | None, now: datetime
) -> None:
    """The message reached Telegram."""
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(
            status=DeliveryStatus.SENT,
            sent_at=now,
            message_id=message_id,
            lease_until=None,
            last_error=None,
        )
    )


def still_claimed(claim: int | None) -> Any:
    """SQL: the row is still under the claim that counted `claim` attempts (None: any). A
    claim counts one more attempt, so a sender whose row was taken over (it went silent,
    its lease ran out) and claimed again cannot undo the new claim with a late write: the
    row, being sent by the other, would become due again, or held for a digest, or failed."""
    return true() if claim is None else Delivery.attempts == claim


async def mark_failed(
    session: AsyncSession, *, delivery_id: int, error: str, claim: int | None = None
) -> None:
    """Telegram rejected the message for good: never retried, never blocks the queue."""
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, still_claimed(claim))
        .values(status=DeliveryStatus.FAILED, lease_until=None, last_error=error[:500])
    )


async def retry_later(
    session: AsyncSession,
    *,
    delivery_id: int,
    at: datetime,
    error: str,
    claim: int | None = None,
) -> None:
    """Give a claimed row back to the queue, due again at `at` (a row already settled, sent or
    held, is left alone: giving it back would send it twice; so is one claimed again since
    `claim`, see `still_claimed`)."""
    await session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status == DeliveryStatus.SENDING,
            still_claimed(claim),
        )
        .values(
            status=DeliveryStatus.PENDING,
            next_attempt_at=at,
            lease_until=None,
            last_error=error[:500],
        )
    )


async def offer_of_message(session: AsyncSession, *, chat_id: int, message_id: int) -> str | None:
    """The text of the offer a chat's message pushed (None: not a pushed offer of this
    chat's, or an offer since pruned)."""
    return await session.scalar(
        select(Offer.text)
        .join(Delivery, Delivery.offer_id == Offer.id)
        .where(Delivery.chat_id == chat_id, Delivery.message_id == message_id)
        .limit(1)
    )
