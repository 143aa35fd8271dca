"""Curated sources: a job board is listed in BOARDS_FILE or added by an operator (/admin board
add); `board_origin` says which, so that reading the file again keeps the operator's choices.

Revision ID: 0010_board_origin
Revises: 0009_daily_digest_time
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010_board_origin"
down_revision: str | None = "0009_daily_digest_time"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Apply this revision (the boards known so far came from BOARDS_FILE)."""
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("board_origin", sa.String(length=8), nullable=True))
    op.execute("UPDATE sources SET board_origin = 'file' WHERE board")


def downgrade() -> None:
    """Revert this revision (operator-added boards stay boards until the file is read again)."""
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("board_origin")
