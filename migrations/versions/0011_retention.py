"""Retention: since when a source has had no follower (a source unfollowed for 30 days is
deleted), and an index telling whether an outbox row still points at an offer (offers no row
points at are pruned after RETENTION_DAYS).

Revision ID: 0011_retention
Revises: 0010_board_origin
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0011_retention"
down_revision: str | None = "0010_board_origin"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unfollowed_since", UTCDateTime(), nullable=True))
    op.create_index("ix_deliveries_offer_id", "deliveries", ["offer_id"])


def downgrade() -> None:
    """Revert this revision (when sources lost their last follower is forgotten)."""
    op.drop_index("ix_deliveries_offer_id", table_name="deliveries")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("unfollowed_since")
