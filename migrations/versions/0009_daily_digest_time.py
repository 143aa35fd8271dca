"""A weekly digest keeps the daily time it replaces, so that ending it brings that time back;
and a chat remembers whether it was told which time zone its times are in.

Revision ID: 0009_daily_digest_time
Revises: 0008_feeds
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009_daily_digest_time"
down_revision: str | None = "0008_feeds"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("daily_digest_time", sa.String(length=5), nullable=True))
        batch_op.add_column(
            sa.Column("timezone_shown", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    """Revert this revision (a weekly digest's saved daily time is forgotten)."""
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_column("timezone_shown")
        batch_op.drop_column("daily_digest_time")
