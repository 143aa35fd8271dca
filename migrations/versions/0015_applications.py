"""From offer to application (issue #17): `applications` holds the offers a chat saved or
applied to, with the application's status; a digest remembers the follow-ups it carries; a
held offer keeps the score it was ranked with; a chat may turn ranking off. The "interested"
marks of older pushes become saved offers.

Revision ID: 0015_applications
Revises: 0014_worker_liveness
Create Date: 2026-12-17
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0015_applications"
down_revision: str | None = "0014_worker_liveness"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "saved",
                "applied",
                "interview",
                "offer",
                "rejected",
                name="applicationstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("saved_at", UTCDateTime(), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=True),
        sa.Column("interview_at", UTCDateTime(), nullable=True),
        sa.Column("status_at", UTCDateTime(), nullable=False),
        sa.Column("reminded_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["chat_id"],
            ["chats.id"],
            name=op.f("fk_applications_chat_id_chats"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offers.id"],
            name=op.f("fk_applications_offer_id_offers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("chat_id", "offer_id", name=op.f("uq_applications_chat_id")),
    )
    op.create_index(op.f("ix_applications_offer_id"), "applications", ["offer_id"], unique=False)
    with op.batch_alter_table("digests") as batch:
        batch.add_column(sa.Column("followups", sa.JSON(), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("score", sa.Float(), nullable=True))
    with op.batch_alter_table("chats") as batch:
        batch.add_column(
            sa.Column("ranking", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    # An "interested" press was the closest thing to a save: each becomes one (once per chat
    # and offer, whatever the topics it was pushed to), and the mark is cleared.
    op.execute(
        """
        INSERT INTO applications (chat_id, offer_id, status, saved_at, status_at)
        SELECT d.chat_id, d.offer_id, 'saved',
               MIN(COALESCE(d.sent_at, d.created_at)), MIN(COALESCE(d.sent_at, d.created_at))
        FROM deliveries d
        JOIN offers o ON o.id = d.offer_id
        WHERE d.feedback = 'interested'
        GROUP BY d.chat_id, d.offer_id
        """
    )
    op.execute("UPDATE deliveries SET feedback = NULL WHERE feedback = 'interested'")


def downgrade() -> None:
    """Revert this revision (saved offers go back to "interested" marks where a push is left)."""
    op.execute(
        """
        UPDATE deliveries SET feedback = 'interested'
        WHERE feedback IS NULL AND EXISTS (
            SELECT 1 FROM applications a
            WHERE a.chat_id = deliveries.chat_id AND a.offer_id = deliveries.offer_id
        )
        """
    )
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("ranking")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("score")
    with op.batch_alter_table("digests") as batch:
        batch.drop_column("followups")
    op.drop_index(op.f("ix_applications_offer_id"), table_name="applications")
    op.drop_table("applications")
