"""Several processes on one PostgreSQL database, run as one bot: each process beats in
`workers`, every lease records its owner (`lease_owner`), so the leases of a process that
stopped beating are taken over at once; `send_pace` holds the bot's one send rate.

Revision ID: 0014_worker_liveness
Revises: 0013_x_account_identity
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0014_worker_liveness"
down_revision: str | None = "0013_x_account_identity"
branch_labels: str | None = None
depends_on: str | None = None

LEASED = ("deliveries", "poll_groups", "sources")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("beat_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "send_pace",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("next_slot", UTCDateTime(), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_send_pace")),
    )
    # (a leased row of a previous version has no owner: its lease runs out as before)
    for table in LEASED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("lease_owner", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Revert this revision (a dead process's leases last until they run out again)."""
    for table in LEASED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("lease_owner")
    op.drop_table("send_pace")
    op.drop_table("workers")
