"""Migrations report what they did in one line, and only to whoever asked."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from storage.migrate import alembic_config, head_revision, upgrade


def all_revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_an_upgrade_reports_the_revisions_it_applied_then_that_it_is_up_to_date(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    first = upgrade(url)
    assert first.applied == tuple(all_revisions())
    assert first.revision == head_revision()
    count = len(all_revisions())
    assert (
        first.describe()
        == f"schema migrated to revision {head_revision()}: {count} migrations applied"
    )
    again = upgrade(url)
    assert again.applied == ()
    assert again.describe() == f"schema is up to date (revision {head_revision()})"


def test_an_upgrade_from_an_older_revision_reports_only_the_newer_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    revisions = all_revisions()
    command.upgrade(alembic_config(url), revisions[-2])
    done = upgrade(url)
    assert done.applied == (revisions[-1],)
    assert done.describe().endswith(": 1 migration applied")


def test_0014_gives_leases_an_owner_and_keeps_the_leases_already_held(tmp_path: Path) -> None:
    """Issue #16: upgrading a database with a poll group and a feed under lease keeps their
    leases (an ownerless lease runs out as before); the liveness and send-rate tables come
    with it; a downgrade to 0013 takes them away again."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'leased.db'}"
    command.upgrade(alembic_config(url), "0013_x_account_identity")
    connection = sqlite3.connect(tmp_path / "leased.db")
    connection.execute(
        "INSERT INTO poll_groups (id, kind, next_poll_at, lease_until, error_count, created_at) "
        "VALUES (1, 'x', '2026-12-01 00:00:00', '2026-12-01 00:05:00', 0, '2026-12-01 00:00:00')"
    )
    connection.commit()
    done = upgrade(url)
    assert done.applied == ("0014_worker_liveness",)
    row = connection.execute("SELECT lease_until, lease_owner FROM poll_groups").fetchone()
    assert row == ("2026-12-01 00:05:00", None)
    for table in ("deliveries", "sources"):
        columns = [c[1] for c in connection.execute(f"PRAGMA table_info({table})")]
        assert "lease_owner" in columns, table
    tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    assert {"workers", "send_pace"} <= tables
    command.downgrade(alembic_config(url), "0013_x_account_identity")
    tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    assert not {"workers", "send_pace"} & tables
    columns = [c[1] for c in connection.execute("PRAGMA table_info(poll_groups)")]
    assert "lease_owner" not in columns
    assert connection.execute("SELECT lease_until FROM poll_groups").fetchone() == (
        "2026-12-01 00:05:00",
    )
    connection.close()
