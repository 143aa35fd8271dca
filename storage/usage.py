"""X usage per UTC month: what the bot read, counted in the database (shared by processes)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import XUsage
from storage.sql import affected, insert_ignoring_conflicts


@dataclass(frozen=True, slots=True)
class Usage:
    """One month of X reads."""

    month: str
    posts: int = 0
    requests: int = 0
    users: int = 0
    warned: bool = False
    spent: bool = False
    capped: bool = False


async def record(
    session: AsyncSession, *, month: str, posts: int = 0, requests: int = 0, users: int = 0
) -> None:
    """Add what one X call (or poll) cost to the month's counters."""
    statement = insert_ignoring_conflicts(session, XUsage).values(
        month=month,
        posts=posts,
        requests=requests,
        users=users,
        warned=False,
        spent=False,
        capped=False,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["month"],
            set_={
                "posts": XUsage.posts + statement.excluded.posts,
                "requests": XUsage.requests + statement.excluded.requests,
                "users": XUsage.users + statement.excluded.users,
            },
        )
    )


async def get(session: AsyncSession, month: str) -> Usage:
    """The month's counters (zeros when nothing was read yet)."""
    row = await session.get(XUsage, month)
    if row is None:
        return Usage(month)
    return Usage(month, row.posts, row.requests, row.users, row.warned, row.spent, row.capped)


async def flag(session: AsyncSession, *, month: str, name: str) -> bool:
    """Set the month's `warned`, `spent` or `capped` flag; True only for the call that set it
    (so the operators are told once, whichever process gets there first)."""
    await record(session, month=month)
    column = {"warned": XUsage.warned, "spent": XUsage.spent, "capped": XUsage.capped}[name]
    result = await session.execute(
        update(XUsage).where(XUsage.month == month, column.is_(False)).values({column.key: True})
    )
    return bool(affected(result))


async def is_capped(session: AsyncSession, month: str) -> bool:
    """Whether polling X is stopped for the month."""
    return bool(await session.scalar(select(XUsage.capped).where(XUsage.month == month)))
