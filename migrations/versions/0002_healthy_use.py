"""Healthy use: daily limits, digests, quiet hours, pauses, feedback and weekly summaries.

Revision ID: 0002_healthy_use
Revises: 0001_relay_core
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0002_healthy_use"
down_revision: str | None = "0001_relay_core"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("parts_sent", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_digests_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
    )
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.create_index("ix_digests_sent", ["sent"], unique=False)

    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("daily_limit", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("digest_only", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("digest_time", sa.String(length=5), server_default="19:00", nullable=False)
        )
        batch_op.add_column(sa.Column("quiet_start", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("quiet_end", sa.String(length=5), nullable=True))
        batch_op.add_column(
            sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("paused_until", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_weekly_at", UTCDateTime(), nullable=True))

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_reason", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("held_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("digest_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("feedback", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_deliveries_chat_id_status", ["chat_id", "status"], unique=False)
        batch_op.create_index("ix_deliveries_digest_id", ["digest_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_digest_id_digests"),
            "digests",
            ["digest_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_deliveries_digest_id_digests"), type_="foreignkey")
        batch_op.drop_index("ix_deliveries_digest_id")
        batch_op.drop_index("ix_deliveries_chat_id_status")
        batch_op.drop_column("feedback")
        batch_op.drop_column("digest_id")
        batch_op.drop_column("held_at")
        batch_op.drop_column("hold_reason")

    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_column("last_weekly_at")
        batch_op.drop_column("paused_until")
        batch_op.drop_column("paused")
        batch_op.drop_column("quiet_end")
        batch_op.drop_column("quiet_start")
        batch_op.drop_column("digest_time")
        batch_op.drop_column("digest_only")
        batch_op.drop_column("daily_limit")

    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.drop_index("ix_digests_sent")

    op.drop_table("digests")
