"""Retention: settled outbox rows, digests and offers past their time, and sources nobody
follows, deleted in bounded batches (each call deletes at most `limit` rows: the service
gives every batch its own transaction, so no prune holds the write lock for long)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import (
    Application,
    Chat,
    Delivery,
    DeliveryStatus,
    Digest,
    FeedEntry,
    Offer,
    Source,
)
from storage.models import Subscription as Sub
from storage.sql import affected, is_postgresql

# Delivered or given up: nothing will ever send these rows again. Pending, sending, held and
# digesting rows are never deleted here: nothing is ever dropped, only held.
SETTLED = (DeliveryStatus.SENT, DeliveryStatus.DIGESTED, DeliveryStatus.FAILED)
# A source nobody has followed this long is deleted.
UNFOLLOWED_GRACE = timedelta(days=30)


def _settled_before(before: datetime) -> ColumnElement[bool]:
    """SQL: the row is settled and was created, held and sent before `before` (what /stats and
    the weekly summary count is when a row was held or sent, so all three must be old)."""
    return and_(
        Delivery.status.in_(SETTLED),
        Delivery.created_at < before,
        or_(Delivery.held_at.is_(None), Delivery.held_at < before),
        or_(Delivery.sent_at.is_(None), Delivery.sent_at < before),
    )


async def prune_deliveries(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` settled outbox rows untouched since `before`; how many went."""
    ids = list(
        await session.scalars(
            select(Delivery.id).where(_settled_before(before)).order_by(Delivery.id).limit(limit)
        )
    )
    if not ids:
        return 0
    return affected(await session.execute(delete(Delivery).where(Delivery.id.in_(ids))))


async def prune_digests(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` digests sent before `before` that no outbox row points at."""
    ids = list(
        await session.scalars(
            select(Digest.id)
            .where(
                Digest.sent.is_(True),
                func.coalesce(Digest.sent_at, Digest.created_at) < before,
                ~exists().where(Delivery.digest_id == Digest.id),
            )
            .order_by(Digest.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    return affected(await session.execute(delete(Digest).where(Digest.id.in_(ids))))


def _story_kept(before: datetime) -> ColumnElement[bool]:
    """SQL, of an `Offer` row: some offer of its story (its head, the head's other copies, or
    itself) is newer than `before`, has an outbox row pointing at it, or was saved or applied
    to by a chat (kept as long as the chat keeps it). A story goes whole: an outbox row points
    at the head, and its copies name the other accounts that posted it."""
    story = func.coalesce(Offer.story_id, Offer.id)
    head, copy = aliased(Offer), aliased(Offer)

    def kept(offer: type[Offer]) -> ColumnElement[bool]:
        return or_(
            offer.created_at >= before,
            exists().where(Delivery.offer_id == offer.id),
            exists().where(Application.offer_id == offer.id),
        )

    return or_(
        exists().where(head.id == story, kept(head)),
        exists().where(copy.story_id == story, kept(copy)),
    )


async def prune_offers(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` offers stored before `before` whose story is not kept (see
    `_story_kept`); their categories and band keys go with them, and a copy of a deleted head
    (deleted in a later batch) loses its link rather than pointing at nothing."""
    ids = list(
        await session.scalars(
            select(Offer.id)
            .where(Offer.created_at < before, ~_story_kept(before))
            .order_by(Offer.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    return affected(await session.execute(delete(Offer).where(Offer.id.in_(ids))))


async def mark_unfollowed(session: AsyncSession, *, now: datetime) -> None:
    """Note since when each source has had no subscription (from now, for those that just lost
    their last), and clear it for those followed again."""
    followed = exists().where(Sub.source_id == Source.id)
    await session.execute(
        update(Source)
        .where(Source.unfollowed_since.is_(None), ~followed)
        .values(unfollowed_since=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Source)
        .where(Source.unfollowed_since.is_not(None), followed)
        .values(unfollowed_since=None)
        .execution_options(synchronize_session=False)
    )


def _held_back(settled_before: datetime) -> ColumnElement[bool]:
    """SQL: an outbox row points at an offer of the source and must stay (not settled, or
    settled too recently: /stats and the weekly summary still count it)."""
    return (
        select(Delivery.id)
        .join(Offer, Offer.id == Delivery.offer_id)
        .where(
            Offer.source_id == Source.id,
            ~_settled_before(settled_before),
        )
        .exists()
    )


def _tracked() -> ColumnElement[bool]:
    """SQL: a chat saved or applied to an offer of the source (its offers, and so the source
    itself, stay as long as the chat keeps them)."""
    return (
        select(Application.id)
        .join(Offer, Offer.id == Application.offer_id)
        .where(Offer.source_id == Source.id)
        .exists()
    )


def _deletable(unfollowed_before: datetime, settled_before: datetime) -> list[ColumnElement[bool]]:
    return [
        Source.board.is_(False),
        Source.unfollowed_since < unfollowed_before,
        ~exists().where(Sub.source_id == Source.id),
        ~_held_back(settled_before),
        ~_tracked(),
    ]


async def unfollowed_sources(
    session: AsyncSession, *, unfollowed_before: datetime, settled_before: datetime, limit: int
) -> list[int]:
    """Sources (not job boards) nobody has followed since before `unfollowed_before`, whose
    offers no outbox row still needs."""
    return list(
        await session.scalars(
            select(Source.id)
            .where(*_deletable(unfollowed_before, settled_before))
            .order_by(Source.id)
            .limit(limit)
        )
    )


async def prune_source_rows(
    session: AsyncSession, *, source_id: int, settled_before: datetime, limit: int
) -> int:
    """One batch of what a source to delete holds: its offers' settled outbox rows first,
    then its offers, then its remembered feed entries; how many rows went (0: none left)."""
    rows = list(
        await session.scalars(
            select(Delivery.id)
            .join(Offer, Offer.id == Delivery.offer_id)
            .where(Offer.source_id == source_id, _settled_before(settled_before))
            .limit(limit)
        )
    )
    if rows:
        return affected(await session.execute(delete(Delivery).where(Delivery.id.in_(rows))))
    offers = list(
        await session.scalars(
            select(Offer.id)
            .where(
                Offer.source_id == source_id,
                ~exists().where(Delivery.offer_id == Offer.id),
                ~exists().where(Application.offer_id == Offer.id),
            )
            .limit(limit)
        )
    )
    if offers:
        return affected(await session.execute(delete(Offer).where(Offer.id.in_(offers))))
    keys = list(
        await session.scalars(
            select(FeedEntry.key).where(FeedEntry.source_id == source_id).limit(limit)
        )
    )
    if keys:
        return affected(
            await session.execute(
                delete(FeedEntry).where(FeedEntry.source_id == source_id, FeedEntry.key.in_(keys))
            )
        )
    return 0


async def delete_source(
    session: AsyncSession, *, source_id: int, unfollowed_before: datetime, settled_before: datetime
) -> bool:
    """Delete a source if it is still deletable (nobody followed it meanwhile); what is left of
    its rows goes with it. False when it stays."""
    if is_postgresql(session):
        # The lock waits for a /follow of it still in progress; the check after it, a new
        # statement, then sees that follow's subscription.
        await session.execute(select(Source.id).where(Source.id == source_id).with_for_update())
    still = await session.scalar(
        select(Source.id).where(
            Source.id == source_id,
            *_deletable(unfollowed_before, settled_before),
        )
    )
    if still is None:
        return False
    await session.execute(delete(Source).where(Source.id == source_id))
    return True


async def forget_chat(session: AsyncSession, *, chat_id: int, now: datetime) -> int:
    """Delete a chat, its outbox rows and (cascading) everything else of it, and the sources
    only it followed (a feed's address may carry a private token). A source whose offers
    another chat's outbox rows still need loses its address and remembered entries now and
    goes at the next prune once nothing needs it. How many sources were deleted or emptied."""
    other = aliased(Sub)
    mine = list(
        await session.scalars(
            select(Source.id)
            .where(
                Source.board.is_(False),
                exists().where(Sub.source_id == Source.id, Sub.chat_id == chat_id),
                ~exists().where(other.source_id == Source.id, other.chat_id != chat_id),
            )
            .order_by(Source.id)
        )
    )
    await session.execute(delete(Delivery).where(Delivery.chat_id == chat_id))
    await session.execute(delete(Chat).where(Chat.id == chat_id))
    for source_id in mine:
        needed = await session.scalar(
            select(
                or_(
                    select(Delivery.id)
                    .join(Offer, Offer.id == Delivery.offer_id)
                    .where(Offer.source_id == source_id)
                    .exists(),
                    # another chat saved one of its offers (this chat's went with it)
                    select(Application.id)
                    .join(Offer, Offer.id == Application.offer_id)
                    .where(Offer.source_id == source_id)
                    .exists(),
                )
            )
        )
        if not needed:
            await session.execute(delete(Source).where(Source.id == source_id))
            continue
        await session.execute(delete(FeedEntry).where(FeedEntry.source_id == source_id))
        await session.execute(
            update(Source)
            .where(Source.id == source_id)
            .values(
                key=f"forgotten:{source_id}",
                url=None,
                etag=None,
                last_modified=None,
                last_error=None,
                cursor=None,
                poll_group_id=None,
                unfollowed_since=now - UNFOLLOWED_GRACE - timedelta(seconds=1),
            )
        )
    return len(mine)
