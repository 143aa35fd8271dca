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
    assert done.applied[:1] == ("0014_worker_liveness",)  # (and the revisions after it)
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


def test_0015_makes_interested_marks_saved_offers_and_a_downgrade_gives_them_back(
    tmp_path: Path,
) -> None:
    """Issue #17: a 👍 Interested press (two topics of one chat, one offer) becomes one saved
    offer; a 👎 stays; a downgrade to 0014 makes the saved offer "interested" again."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'marks.db'}"
    command.upgrade(alembic_config(url), "0014_worker_liveness")
    connection = sqlite3.connect(tmp_path / "marks.db")
    at = "'2026-12-01 00:00:00'"
    connection.executescript(
        f"""
        INSERT INTO chats (id, type, language, timezone, active, created_at, updated_at)
            VALUES (5, 'private', 'en', 'Europe/Paris', 1, {at}, {at});
        INSERT INTO sources (id, kind, key, external_id, display_name, next_poll_at,
            error_count, gone, created_at) VALUES (1, 'x', 'acme', '1', 'acme', {at}, 0, 0, {at});
        INSERT INTO offers (id, source_id, external_id, author, text, url, created_at)
            VALUES (1, 1, 'a', 'acme', 'Python dev', 'https://x.com/a', {at}),
                   (2, 1, 'b', 'acme', 'Sales', 'https://x.com/b', {at});
        INSERT INTO deliveries (chat_id, thread_id, offer_id, kind, status, attempts,
            next_attempt_at, created_at, sent_at, feedback) VALUES
            (5, 0, 1, 'offer', 'sent', 1, {at}, {at}, {at}, 'interested'),
            (5, 7, 1, 'offer', 'sent', 1, {at}, {at}, {at}, 'interested'),
            (5, 0, 2, 'offer', 'sent', 1, {at}, {at}, {at}, 'not_for_me');
        """
    )
    connection.commit()
    assert upgrade(url).applied == ("0015_applications",)
    assert connection.execute("SELECT chat_id, offer_id, status FROM applications").fetchall() == [
        (5, 1, "saved")
    ]
    marks = connection.execute("SELECT offer_id, feedback FROM deliveries ORDER BY id").fetchall()
    assert marks == [(1, None), (1, None), (2, "not_for_me")]
    command.downgrade(alembic_config(url), "0014_worker_liveness")
    marks = connection.execute("SELECT offer_id, feedback FROM deliveries ORDER BY id").fetchall()
    assert marks == [(1, "interested"), (1, "interested"), (2, "not_for_me")]
    connection.close()
