"""Leases on rows of a work table: claim, renew, release, write while held.

A work table has an `id`, `lease_owner`, `lease_expires_at` and
`updated_at`; what "unfinished" and "due" mean is the kind's (a status set,
a next-attempt time). Every write a worker makes is conditional on still
holding the lease (`lease_owner = me`): a process that lost it (it stalled
and another took the row over) changes nothing and stops working the row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    RowMapping,
    Table,
    Update,
    and_,
    bindparam,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.db import utcnow


class LeaseLost(Exception):
    """Another process holds the row now; this one must stop working it."""


class LeaseStore:
    """Leases on one work table for one process (`owner`)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        table: Table,
        owner: str,
        *,
        unfinished: Callable[[], ColumnElement[bool]],
        due: Callable[[datetime], ColumnElement[bool]] | None = None,
        order_by: Sequence[Any] = (),
    ) -> None:
        self._sessionmaker = sessionmaker
        self.table = table
        self.owner = owner
        self._unfinished = unfinished
        self._due = due
        self._order_by = tuple(order_by) or (table.c.created_at,)
        self._held_updates: dict[tuple[str, ...], Update] = {}

    async def claim_due(self, lease: timedelta, limit: int) -> list[RowMapping]:
        """Take the lease on due, unfinished rows nobody holds (or whose lease expired).

        On PostgreSQL, FOR UPDATE SKIP LOCKED lets processes claim side by
        side without waiting on each other; the lease condition in the
        UPDATE makes a double claim impossible either way.
        """
        t = self.table
        now = utcnow()
        free = or_(t.c.lease_owner.is_(None), t.c.lease_expires_at < now)
        conditions = [self._unfinished(), free]
        if self._due is not None:
            conditions.append(self._due(now))
        candidates = (
            select(t.c.id)
            .where(*conditions)
            .order_by(*self._order_by)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(t)
            .where(t.c.id.in_(candidates.scalar_subquery()), free)
            .values(lease_owner=self.owner, lease_expires_at=now + lease, updated_at=now)
            .returning(*t.c)
        )
        async with self._sessionmaker() as session, session.begin():
            return list((await session.execute(claim)).mappings())

    async def renew(self, lease: timedelta, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Extend the leases of the rows being worked; returns the ids still held."""
        t = self.table
        statement = (
            update(t)
            .where(t.c.lease_owner == self.owner, self._unfinished(), t.c.id.in_(ids))
            .values(lease_expires_at=utcnow() + lease)
            .returning(t.c.id)
        )
        async with self._sessionmaker() as session, session.begin():
            return set((await session.execute(statement)).scalars())

    async def release_all(self) -> int:
        """Give up every lease at shutdown so another process can continue at once."""
        t = self.table
        statement = (
            update(t)
            .where(t.c.lease_owner == self.owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(statement)
            return result.rowcount or 0  # type: ignore[attr-defined]

    async def save(self, row_id: uuid.UUID, **values: Any) -> None:
        """Write progress while holding the lease (its own transaction)."""
        async with self._sessionmaker() as session, session.begin():
            await self.update_held(session, row_id, values)

    async def update_held(
        self, session: AsyncSession, row_id: uuid.UUID, values: dict[str, Any]
    ) -> None:
        """UPDATE the row in the caller's transaction, or raise LeaseLost."""
        values = {"updated_at": utcnow(), **values}
        if any(isinstance(value, ClauseElement) for value in values.values()):
            t = self.table
            held = and_(t.c.id == row_id, t.c.lease_owner == self.owner)
            result = await session.execute(update(t).where(held).values(**values))
        else:
            result = await session.execute(
                self._held_update(tuple(sorted(values))),
                {"p_row_id": row_id, "p_owner": self.owner}
                | {f"p_{column}": value for column, value in values.items()},
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(str(row_id))

    def _held_update(self, columns: tuple[str, ...]) -> Update:
        """UPDATE of `columns` on a held row, built once per set of columns: building
        it per write (and SQLAlchemy's cache key of it) cost more interpreter time than
        the round trip. SET parameters are named p_*: SQLAlchemy reserves column names."""
        statement = self._held_updates.get(columns)
        if statement is None:
            t = self.table
            statement = (
                update(t)
                .where(t.c.id == bindparam("p_row_id"), t.c.lease_owner == bindparam("p_owner"))
                .values({column: bindparam(f"p_{column}") for column in columns})
            )
            self._held_updates[columns] = statement
        return statement
