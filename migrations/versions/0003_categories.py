"""Categories: offer understanding, category subscriptions, filters, job boards, one story.

Revision ID: 0003_categories
Revises: 0002_healthy_use
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0003_categories"
down_revision: str | None = "0002_healthy_use"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "category_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"],
            ["chats.id"],
            name=op.f("fk_category_subscriptions_chat_id_chats"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category_subscriptions")),
        sa.UniqueConstraint("chat_id", "category", name=op.f("uq_category_subscriptions_chat_id")),
    )
    op.create_index("ix_category_subscriptions_category", "category_subscriptions", ["category"])
    op.create_table(
        "chat_filters",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("phrase", sa.String(length=64), nullable=False),
        sa.Column("word", sa.String(length=64), nullable=False),
        sa.Column("include", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"],
            ["chats.id"],
            name=op.f("fk_chat_filters_chat_id_chats"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("chat_id", "phrase", name=op.f("pk_chat_filters")),
    )
    op.create_table(
        "offer_categories",
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offers.id"],
            name=op.f("fk_offer_categories_offer_id_offers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("offer_id", "category", name=op.f("pk_offer_categories")),
    )
    op.create_table(
        "offer_bands",
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("band", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offers.id"],
            name=op.f("fk_offer_bands_offer_id_offers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("offer_id", "band", name=op.f("pk_offer_bands")),
    )
    op.create_index("ix_offer_bands_band", "offer_bands", ["band"])
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_offer", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("story_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_offers_fingerprint", ["fingerprint"], unique=False)
        batch_op.create_index("ix_offers_story_id", ["story_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_offers_story_id_offers"),
            "offers",
            ["story_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("board", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("board")
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_offers_story_id_offers"), type_="foreignkey")
        batch_op.drop_index("ix_offers_story_id")
        batch_op.drop_index("ix_offers_fingerprint")
        batch_op.drop_column("story_id")
        batch_op.drop_column("fingerprint")
        batch_op.drop_column("search_text")
        batch_op.drop_column("tags")
        batch_op.drop_column("is_offer")
    op.drop_index("ix_offer_bands_band", table_name="offer_bands")
    op.drop_table("offer_bands")
    op.drop_table("offer_categories")
    op.drop_table("chat_filters")
    op.drop_index("ix_category_subscriptions_category", table_name="category_subscriptions")
    op.drop_table("category_subscriptions")
