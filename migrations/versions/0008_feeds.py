"""Feeds beside X: RSS/Atom feeds, Mastodon and Bluesky profile feeds are sources too.

A feed source keeps its URL, its validators for conditional requests (ETag, Last-Modified)
and the refresh hint of its last full answer (a 304 carries no <ttl>),
since when it fails (paused after FEED_PAUSE_AFTER_SECONDS) and whether it is paused; the ids
of the entries it has shown are remembered in `feed_entries`, so an entry is relayed once even
when it is edited, and the first fetch relays nothing old. A source's key (a feed's URL) may be
longer than a handle.

Revision ID: 0008_feeds
Revises: 0007_outbox_foreign_keys
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0008_feeds"
down_revision: str | None = "0007_outbox_foreign_keys"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.alter_column(
            "key", existing_type=sa.String(length=255), type_=sa.String(length=1024)
        )
        batch_op.add_column(sa.Column("url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("etag", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("last_modified", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("failing_since", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("ttl_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "feed_entries",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_feed_entries_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", "key", name=op.f("pk_feed_entries")),
    )


def downgrade() -> None:
    """Revert this revision (feed sources, their offers and subscriptions go with it)."""
    op.drop_table("feed_entries")
    # The outbox has no foreign key to offers (0007): feeds' rows go first, by hand.
    op.execute(
        "DELETE FROM deliveries WHERE offer_id IN (SELECT offers.id FROM offers"
        " JOIN sources ON sources.id = offers.source_id WHERE sources.kind <> 'x')"
    )
    op.execute("DELETE FROM sources WHERE kind <> 'x'")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("paused")
        batch_op.drop_column("ttl_seconds")
        batch_op.drop_column("failing_since")
        batch_op.drop_column("last_modified")
        batch_op.drop_column("etag")
        batch_op.drop_column("url")
        batch_op.alter_column(
            "key", existing_type=sa.String(length=1024), type_=sa.String(length=255)
        )
