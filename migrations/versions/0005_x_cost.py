"""X cost control and several processes: posts read per month, source poll leases.

Revision ID: 0005_x_cost
Revises: 0004_job_clubs
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0005_x_cost"
down_revision: str | None = "0004_job_clubs"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "x_usage",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("posts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("requests", sa.Integer(), server_default="0", nullable=False),
        sa.Column("users", sa.Integer(), server_default="0", nullable=False),
        sa.Column("warned", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("spent", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("capped", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_x_usage")),
    )
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
    op.drop_table("x_usage")
