"""The outbox keeps one foreign key, to its chat: fan-out writes 100,000 rows of one offer at a
time, and PostgreSQL ran the offer's and the digest's foreign-key triggers on every one of them
(about 0.4 s and 0.1-0.2 s of a 2.5 s fan-out) for ON DELETE actions that nothing triggers:
offers are never deleted, and a digest is deleted only while no row points at it or together
with its chat, whose rows go too. The chat's key stays: its cascade is what deletes the rows
left behind when a group migrates to a supergroup.

Revision ID: 0007_outbox_foreign_keys
Revises: 0006_poll_groups
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0007_outbox_foreign_keys"
down_revision: str | None = "0006_poll_groups"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_deliveries_offer_id_offers"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_deliveries_digest_id_digests"), type_="foreignkey")


def downgrade() -> None:
    """Revert this revision (what the keys' ON DELETE actions would have done is done first:
    rows of an offer that is gone are deleted, links to a digest that is gone are cleared)."""
    op.execute(
        "DELETE FROM deliveries WHERE offer_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM offers WHERE offers.id = deliveries.offer_id)"
    )
    op.execute(
        "UPDATE deliveries SET digest_id = NULL WHERE digest_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM digests WHERE digests.id = deliveries.digest_id)"
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_offer_id_offers"),
            "offers",
            ["offer_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_digest_id_digests"),
            "digests",
            ["digest_id"],
            ["id"],
            ondelete="SET NULL",
        )
