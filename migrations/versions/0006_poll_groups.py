"""Batched polling: accounts read together by one search query, silent accounts checked.

Revision ID: 0006_poll_groups
Revises: 0005_x_cost
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0006_poll_groups"
down_revision: str | None = "0005_x_cost"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "poll_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("next_poll_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poll_groups")),
    )
    op.create_index("ix_poll_groups_next_poll_at", "poll_groups", ["next_poll_at"], unique=False)
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("poll_group_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_post_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("checked_at", UTCDateTime(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_sources_poll_group_id_poll_groups"),
            "poll_groups",
            ["poll_group_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_sources_poll_group_id", ["poll_group_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_index("ix_sources_poll_group_id")
        batch_op.drop_constraint(
            batch_op.f("fk_sources_poll_group_id_poll_groups"), type_="foreignkey"
        )
        batch_op.drop_column("checked_at")
        batch_op.drop_column("last_post_at")
        batch_op.drop_column("poll_group_id")
    op.drop_index("ix_poll_groups_next_poll_at", table_name="poll_groups")
    op.drop_table("poll_groups")
