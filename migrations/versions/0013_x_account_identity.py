"""X sources are identified by the account's id, not its handle: sources that two handles of
one renamed account created are merged (every follower kept, on the oldest source, under the
handle followed last), and a unique index allows one live source per account.

Revision ID: 0013_x_account_identity
Revises: 0012_handled_updates
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0013_x_account_identity"
down_revision: str | None = "0012_handled_updates"
branch_labels: str | None = None
depends_on: str | None = None

X_ACCOUNT_UNIQUE = "kind = 'x' AND NOT gone"

sources = sa.table(
    "sources",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("key", sa.String),
    sa.column("external_id", sa.String),
    sa.column("display_name", sa.String),
    sa.column("cursor", sa.String),
    sa.column("gone", sa.Boolean),
    sa.column("board", sa.Boolean),
    sa.column("board_origin", sa.String),
    sa.column("poll_group_id", sa.Integer),
    sa.column("created_at", UTCDateTime()),
    sa.column("unfollowed_since", UTCDateTime()),
    sa.column("last_error", sa.Text),
)


def upgrade() -> None:
    """Apply this revision."""
    bind = op.get_bind()
    twice = bind.execute(
        sa.select(sources.c.external_id)
        .where(sources.c.kind == "x", sa.not_(sources.c.gone))
        .group_by(sources.c.external_id)
        .having(sa.func.count() > 1)
    ).scalars()
    for external_id in list(twice):
        _merge(bind, external_id)
    op.create_index(
        "ux_sources_x_account",
        "sources",
        ["external_id"],
        unique=True,
        sqlite_where=sa.text(X_ACCOUNT_UNIQUE),
        postgresql_where=sa.text(X_ACCOUNT_UNIQUE),
    )


def _merge(bind: sa.Connection, external_id: str) -> None:
    """One account's live sources become its oldest one; the others keep their offers (and
    what the outbox still holds of them) but no follower, and are pruned as unfollowed."""
    rows = bind.execute(
        sa.select(sources)
        .where(sources.c.kind == "x", sources.c.external_id == external_id, sa.not_(sources.c.gone))
        .order_by(sources.c.id)
    ).all()
    keep, others = rows[0], rows[1:]
    latest = max(rows, key=lambda r: (r.created_at, r.id))  # the handle followed last
    cursors = [int(r.cursor) for r in rows if r.cursor and r.cursor.isdigit()]
    board = any(r.board for r in rows)
    origins = {r.board_origin for r in rows if r.board_origin}
    for other in others:
        bind.execute(
            sa.text(
                "INSERT INTO subscriptions (chat_id, source_id, thread_id, created_at) "
                "SELECT s.chat_id, :keep, s.thread_id, s.created_at FROM subscriptions s "
                "WHERE s.source_id = :other AND NOT EXISTS (SELECT 1 FROM subscriptions t "
                "WHERE t.chat_id = s.chat_id AND t.source_id = :keep "
                "AND t.thread_id = s.thread_id)"
            ),
            {"keep": keep.id, "other": other.id},
        )
        bind.execute(
            sa.text("DELETE FROM subscriptions WHERE source_id = :other"), {"other": other.id}
        )
        bind.execute(
            sources.update()
            .where(sources.c.id == other.id)
            .values(
                key=f"#{other.id}",
                gone=True,
                board=False,
                board_origin=None,
                poll_group_id=None,
                unfollowed_since=datetime.now(UTC),
                last_error=f"merged into source {keep.id} (one X account)",
            )
        )
    bind.execute(
        sources.update()
        .where(sources.c.id == keep.id)
        .values(
            key=latest.key,
            display_name=latest.display_name,
            cursor=str(max(cursors)) if cursors else keep.cursor,
            board=board,
            board_origin="admin" if "admin" in origins else (origins.pop() if origins else None),
            poll_group_id=None,
        )
    )


def downgrade() -> None:
    """Revert this revision (merged sources stay merged)."""
    op.drop_index("ux_sources_x_account", table_name="sources")
