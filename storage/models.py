"""The typed schema: chats, sources, subscriptions, offers and the delivery outbox."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention Alembic can rely on."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DeliveryStatus(enum.StrEnum):
    """Where one outbox row stands."""

    PENDING = "pending"  # waiting to be sent (possibly after next_attempt_at)
    SENDING = "sending"  # claimed by a sender until lease_until
    SENT = "sent"  # pushed on its own
    FAILED = "failed"  # Telegram rejected it for good; logged and skipped
    HELD = "held"  # waits for a digest (hold_reason says why)
    DIGESTING = "digesting"  # part of a digest being sent
    DIGESTED = "digested"  # delivered inside a digest


class DeliveryKind(enum.StrEnum):
    """What an outbox row carries."""

    OFFER = "offer"
    NOTICE = "notice"  # a service message (e.g. an account that disappeared)


class Chat(Base):
    """A Telegram chat that talks to the bot: a person, a group or a channel."""

    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16), default="private")
    title: Mapped[str | None] = mapped_column(String(255))
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Healthy use (local times as "HH:MM" in the chat's timezone).
    daily_limit: Mapped[int | None] = mapped_column(Integer)  # None: DEFAULT_DAILY_LIMIT
    digest_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    digest_time: Mapped[str] = mapped_column(String(5), default="19:00", server_default="19:00")
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_weekly_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Job clubs: a weekly digest's day (0 = Monday; None: daily), and when a group or channel
    # may get its next message (offers ready before then are merged into one message).
    digest_weekday: Mapped[int | None] = mapped_column(Integer)
    # The daily time chosen before a weekly digest took its place: it comes back with the
    # daily rhythm (/digest off, /digest with instant offers).
    daily_digest_time: Mapped[str | None] = mapped_column(String(5))
    # Whether the chat was told which time zone its times are in (the first time it set one).
    timezone_shown: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    next_send_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Issue #17: the day's instant pushes go to the offers this chat's own marks rank first.
    ranking: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class ChatTopic(Base):
    """A forum topic's name, as last seen in a message of that topic (for /list)."""

    __tablename__ = "chat_topics"

    chat_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("chats.id", ondelete="CASCADE"), primary_key=True
    )
    thread_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))


class Digest(Base):
    """One digest message (possibly several Telegram messages) covering held offers."""

    __tablename__ = "digests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(16))  # manual | scheduled | catch_up
    # Fixed at creation: a resumed digest must split into the same parts as before.
    language: Mapped[str] = mapped_column(String(8))
    sent: Mapped[bool] = mapped_column(Boolean, default=False)
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # weekly
    # Saved offers not applied to after 3 days, mentioned once at the end of this digest
    # (author, url, excerpt): fixed at creation, so a resumed digest splits as before.
    followups: Mapped[list[Any] | None] = mapped_column(JSON)
    # A forum topic's held offers make their own digest, posted in that topic.
    thread_id: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


Index("ix_digests_sent", Digest.sent)


class PollGroup(Base):
    """Accounts of one network read together by one request (on X, one `tweets/search/recent`
    query `(from:a OR from:b ...)`): polled, leased and backed off as one."""

    __tablename__ = "poll_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Held by the process polling it until then (several processes share the database).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[int | None] = mapped_column(Integer)  # workers.id of the holder
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


Index("ix_poll_groups_next_poll_at", PollGroup.next_poll_at)


class Source(Base):
    """A followed account on a network (X for now), polled once for all its subscribers."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # What users type, canonical: a lower-cased X handle, a feed's URL, `@user@instance`
    # (Mastodon) or a Bluesky handle.
    key: Mapped[str] = mapped_column(String(1024))
    external_id: Mapped[str] = mapped_column(String(64))  # the network's stable id
    display_name: Mapped[str] = mapped_column(String(255))  # handle as the network spells it
    cursor: Mapped[str | None] = mapped_column(String(255))  # X since_id
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime())
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    gone: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A job board (a curated source): polled for category followers even when no chat follows
    # it by name, and the only kind of source whose offers reach category followers (unless
    # CATEGORY_SOURCES=followed). `board_origin`: "file" (BOARDS_FILE) or "admin" (/admin board).
    board: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    board_origin: Mapped[str | None] = mapped_column(String(8))
    # Held by the process polling it until then (several processes share the database).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[int | None] = mapped_column(Integer)  # workers.id of the holder
    # The group whose query reads it (None: not watched, or not yet placed in one).
    poll_group_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("poll_groups.id", ondelete="SET NULL")
    )
    # When its newest post was read, and when the network last said the account still exists
    # (a search never says an account is gone: a silent one is looked up now and then).
    # (For a feed: when it last answered; None until its first fetch, which relays nothing.)
    last_post_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Feeds (kinds feed, mastodon, bluesky): the URL fetched, the validators of its last answer
    # for conditional requests, since when it fails, and whether it is paused for failing
    # too long (its followers were told; it resumes when it answers again).
    url: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(String(64))
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The feed's own refresh hint (<ttl>, sy:updatePeriod, max-age) from its last full answer:
    # a 304 has no body to read it from.
    ttl_seconds: Mapped[int | None] = mapped_column(Integer)
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Since when no chat follows it (None: followed); set and cleared by the daily prune
    # (bot.retention), cleared at once by a new subscription. A source unfollowed for 30 days
    # is deleted, with its offers and remembered entries.
    unfollowed_since: Mapped[datetime | None] = mapped_column(UTCDateTime())


Index("ix_sources_next_poll_at", Source.next_poll_at)
Index("ix_sources_poll_group_id", Source.poll_group_id)
# One live source per X account: followers of its old and new handles share it.
X_ACCOUNT_UNIQUE = "kind = 'x' AND NOT gone"
Index(
    "ux_sources_x_account",
    Source.external_id,
    unique=True,
    sqlite_where=text(X_ACCOUNT_UNIQUE),
    postgresql_where=text(X_ACCOUNT_UNIQUE),
)


class FeedEntry(Base):
    """An entry a feed has shown (by its id's hash): relayed once, never again, even edited."""

    __tablename__ = "feed_entries"

    source_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Entries gone from the feed for a while are forgotten (a feed shows its latest entries).
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class XUsage(Base):
    """What X billed this month (UTC): posts read, requests made, accounts looked up; whether
    the operators were told of 80% (warned) and of the spent budget (spent); whether X itself
    capped the app's usage (capped: no X read until the next month, across restarts)."""

    __tablename__ = "x_usage"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # "2026-11"
    posts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    users: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    warned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    spent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    capped: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Subscription(Base):
    """A chat follows a source."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("chat_id", "source_id", "thread_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.id", ondelete="CASCADE"))
    source_id: Mapped[int] = mapped_column(Integer, ForeignKey("sources.id", ondelete="CASCADE"))
    # The forum topic offers go to (0: none, or General).
    thread_id: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


Index("ix_subscriptions_source_id", Subscription.source_id)


class CategorySubscription(Base):
    """A chat follows a job category (a slug of bot/data/categories.toml)."""

    __tablename__ = "category_subscriptions"
    __table_args__ = (UniqueConstraint("chat_id", "category", "thread_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(32))
    thread_id: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


Index("ix_category_subscriptions_category", CategorySubscription.category)


class ChatFilter(Base):
    """One word of a chat's /filter: offers must contain it (include) or must not."""

    __tablename__ = "chat_filters"

    chat_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("chats.id", ondelete="CASCADE"), primary_key=True
    )
    phrase: Mapped[str] = mapped_column(String(64), primary_key=True)  # normalised tokens
    word: Mapped[str] = mapped_column(String(64))  # as the user typed it, for /filter's answer
    include: Mapped[bool] = mapped_column(Boolean)
    position: Mapped[int] = mapped_column(Integer)


class Offer(Base):
    """One post read from a source, stored once whatever the number of subscribers."""

    __tablename__ = "offers"
    __table_args__ = (UniqueConstraint("source_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(Integer, ForeignKey("sources.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(String(1024))
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What bot.classify understood (None for posts stored before it existed).
    is_offer: Mapped[bool | None] = mapped_column(Boolean)
    tags: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    search_text: Mapped[str | None] = mapped_column(Text)  # normalised words, for /filter
    fingerprint: Mapped[str | None] = mapped_column(String(32))
    # The first offer with the same text, when another account posted it first: chats get the
    # story once, naming every account that posted it.
    story_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("offers.id", ondelete="SET NULL")
    )


Index("ix_offers_fingerprint", Offer.fingerprint)
Index("ix_offers_story_id", Offer.story_id)


class OfferCategory(Base):
    """A category of an offer (only posts read as job offers get any)."""

    __tablename__ = "offer_categories"

    offer_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(32), primary_key=True)


class OfferBand(Base):
    """A MinHash band key of an offer's wording: offers sharing one may be near-identical."""

    __tablename__ = "offer_bands"

    offer_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True
    )
    band: Mapped[int] = mapped_column(BigInteger, primary_key=True)


Index("ix_offer_bands_band", OfferBand.band)


class Delivery(Base):
    """The outbox: one row per chat and offer (or notice), drained by the sender."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("chat_id", "offer_id", "thread_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.id", ondelete="CASCADE"))
    thread_id: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # No foreign key on offer_id nor digest_id (migration 0007): PostgreSQL runs a key's
    # trigger on every row inserted, and a fan-out inserts 100,000 rows at once. An offer is
    # deleted only once no row points at it (storage.retention deletes its rows first); a
    # digest only while no row points at it, or with its chat and the chat's rows.
    offer_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[DeliveryKind] = mapped_column(
        Enum(
            DeliveryKind,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(
            DeliveryStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[int | None] = mapped_column(Integer)  # workers.id of the sender
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hold_reason: Mapped[str | None] = mapped_column(String(16))
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    digest_id: Mapped[int | None] = mapped_column(Integer)
    # not_for_me (👎); "interested" on rows older than migration 0015, which made them
    # saved offers (applications).
    feedback: Mapped[str | None] = mapped_column(String(16))
    # The chat's score of the offer when it was held (bot.ranking): its digest goes best first,
    # in an order fixed at hold time (a digest resumed must split as before).
    score: Mapped[float | None] = mapped_column(Float)


Index("ix_deliveries_status_next_attempt_at", Delivery.status, Delivery.next_attempt_at)
Index("ix_deliveries_chat_id_status", Delivery.chat_id, Delivery.status)
Index("ix_deliveries_digest_id", Delivery.digest_id)
# Whether a row still points at an offer (the daily prune asks for thousands of offers).
Index("ix_deliveries_offer_id", Delivery.offer_id)


class ApplicationStatus(enum.StrEnum):
    """Where a chat stands with an offer it kept: saved, then applied and what came of it."""

    SAVED = "saved"
    APPLIED = "applied"
    INTERVIEW = "interview"
    OFFER = "offer"
    REJECTED = "rejected"


class Application(Base):
    """An offer a chat saved (⭐) or applied to (✅): its tracker row. The offer it points at
    is kept by retention as long as this row exists; the chat's rows go with the chat."""

    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("chat_id", "offer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.id", ondelete="CASCADE"))
    offer_id: Mapped[int] = mapped_column(Integer, ForeignKey("offers.id", ondelete="CASCADE"))
    status: Mapped[ApplicationStatus] = mapped_column(
        Enum(
            ApplicationStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    interview_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the "saved, not applied yet" follow-up was put in a digest or summary (once).
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# Retention asks, for thousands of offers, whether a tracker row keeps them.
Index("ix_applications_offer_id", Application.offer_id)


class HandledUpdate(Base):
    """A Telegram update some process began to handle (`update_id` is the bot's own count):
    the same update delivered again, to a receiver that took over before the first one
    confirmed it, is dropped. Kept a day, as Telegram keeps an update at most 24 hours."""

    __tablename__ = "handled_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime())


Index("ix_handled_updates_handled_at", HandledUpdate.handled_at)


class Worker(Base):
    """A live bot process on a shared (PostgreSQL) database, as long as it beats: the leases
    it holds (`lease_owner`) are taken over by the others once its beat is older than
    WORKER_DEAD_AFTER_SECONDS (bot.liveness)."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SendPace(Base):
    """The bot's one send rate, shared by every process on a PostgreSQL database: a send may
    leave once `next_slot` has come (bot.shared_rate). Telegram's limits are per bot token."""

    __tablename__ = "send_pace"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_slot: Mapped[datetime] = mapped_column(UTCDateTime())
    granted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
