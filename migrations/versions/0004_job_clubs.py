"""Job clubs: forum topics on subscriptions and deliveries, topic names, group pacing, weekly
digests.

Revision ID: 0004_job_clubs
Revises: 0003_categories
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0004_job_clubs"
down_revision: str | None = "0003_categories"
branch_labels: str | None = None
depends_on: str | None = None

# Which columns make a row unique, before and after topics (0 = no topic / General).
_UNIQUE = {
    "subscriptions": ("uq_subscriptions_chat_id", ["chat_id", "source_id"]),
    "category_subscriptions": ("uq_category_subscriptions_chat_id", ["chat_id", "category"]),
    "deliveries": ("uq_deliveries_chat_id", ["chat_id", "offer_id"]),
}


def upgrade() -> None:
    """Apply this revision."""
    for table, (name, columns) in _UNIQUE.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("thread_id", sa.Integer(), server_default="0", nullable=False)
            )
            batch_op.drop_constraint(name, type_="unique")
            batch_op.create_unique_constraint(name, [*columns, "thread_id"])
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest_weekday", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("next_send_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("thread_id", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("pin", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "chat_topics",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_chat_topics_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("chat_id", "thread_id", name=op.f("pk_chat_topics")),
    )


def downgrade() -> None:
    """Revert this revision (subscriptions and deliveries of other topics than General go)."""
    op.drop_table("chat_topics")
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.drop_column("pin")
        batch_op.drop_column("thread_id")
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_column("next_send_at")
        batch_op.drop_column("digest_weekday")
    for table, (name, columns) in _UNIQUE.items():
        rows = sa.table(table, sa.column("thread_id"))
        op.execute(rows.delete().where(rows.c.thread_id != 0))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(name, type_="unique")
            batch_op.create_unique_constraint(name, columns)
            batch_op.drop_column("thread_id")
