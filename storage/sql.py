"""Dialect helpers shared by the repositories."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base


def insert_ignoring_conflicts(session: AsyncSession, model: type[Base]) -> Any:
    """An INSERT builder with `.on_conflict_do_nothing()` for the session's backend."""
    if is_postgresql(session):
        return postgresql.insert(model)
    return sqlite.insert(model)


def is_postgresql(session: AsyncSession) -> bool:
    """True when the session talks to PostgreSQL."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def affected(result: Result[Any]) -> int:
    """How many rows an INSERT, UPDATE or DELETE touched."""
    return int(cast(CursorResult[Any], result).rowcount)
