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
