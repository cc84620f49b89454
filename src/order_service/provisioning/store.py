"""Every database read and write of the provisioner.

All writes to a task are conditional on this process still holding its
lease (`lease_owner = me`): a process that lost the lease (it stalled, and
another replica took the task over) changes nothing and stops working it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.db import utcnow
from order_service.orders.states import OrderStatus, TaskStatus
from order_service.orders.transitions import SYSTEM, transition
from order_service.provisioning.models import ProvisioningTask

tasks_t = ProvisioningTask.__table__

UNFINISHED = (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value)


class LeaseLost(Exception):
    """Another process holds the task now; this one must stop working it."""


class TaskStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], owner: str) -> None:
        self._sessionmaker = sessionmaker
        self.owner = owner

    async def claim_due(self, lease: timedelta, limit: int) -> list[RowMapping]:
        """Take the lease on unfinished tasks nobody holds (or whose lease expired).

        On PostgreSQL, FOR UPDATE SKIP LOCKED lets replicas claim side by side
        without waiting on each other; the lease condition in the UPDATE makes
        a double claim impossible either way.
        """
        now = utcnow()
        free = or_(tasks_t.c.lease_owner.is_(None), tasks_t.c.lease_expires_at < now)
        due = (
            select(tasks_t.c.id)
            .where(tasks_t.c.status.in_(UNFINISHED), free)
            .order_by(tasks_t.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(tasks_t)
            .where(tasks_t.c.id.in_(due.scalar_subquery()), free)
            .values(lease_owner=self.owner, lease_expires_at=now + lease, updated_at=now)
            .returning(*tasks_t.c)
        )
        async with self._sessionmaker() as session, session.begin():
            return list((await session.execute(claim)).mappings())

    async def renew(self, lease: timedelta, task_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Extend the leases of the tasks being worked; returns the ids still held.

        Only tasks with a live worker are renewed: a task whose worker died is
        left to expire and is then claimed afresh.
        """
        now = utcnow()
        statement = (
            update(tasks_t)
            .where(
                tasks_t.c.lease_owner == self.owner,
                tasks_t.c.status.in_(UNFINISHED),
                tasks_t.c.id.in_(task_ids),
            )
            .values(lease_expires_at=now + lease)
            .returning(tasks_t.c.id)
        )
        async with self._sessionmaker() as session, session.begin():
            return set((await session.execute(statement)).scalars())

    async def release_all(self) -> int:
        """Give up every lease at shutdown so another process can continue at once."""
        statement = (
            update(tasks_t)
            .where(tasks_t.c.lease_owner == self.owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(statement)
            return result.rowcount or 0  # type: ignore[attr-defined]

    async def save(self, task_id: uuid.UUID, **values: Any) -> None:
        """Write progress (droplet metadata, attempts, ...) while holding the lease."""
        values["updated_at"] = utcnow()
        async with self._sessionmaker() as session, session.begin():
            await self._update_held(session, task_id, values)

    async def start_create(self, task_id: uuid.UUID, now: datetime) -> None:
        """Record the intent to create *before* POST /v2/droplets is sent.

        After a crash, a set intent without a droplet id means a droplet may
        exist: the next worker looks it up by tag instead of creating blindly.
        The deadline does not start here but when DO has accepted the droplet:
        a storm's wait for the rate budget must not eat into it.
        """
        values = {
            "status": TaskStatus.IN_PROGRESS.value,
            "create_intent_at": now,
            "started_at": func.coalesce(tasks_t.c.started_at, now),
            "updated_at": now,
        }
        async with self._sessionmaker() as session, session.begin():
            await self._update_held(session, task_id, values)

    async def finish(
        self,
        task_id: uuid.UUID,
        order_id: uuid.UUID,
        *,
        succeeded: bool,
        values: dict[str, Any],
        reason: str,
    ) -> None:
        """End the task and move the order (ACTIVE or FAILED) in one transaction."""
        now = utcnow()
        values = {
            **values,
            "status": (TaskStatus.SUCCESS if succeeded else TaskStatus.FAILED).value,
            "completed_at": now,
            "updated_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        target = OrderStatus.ACTIVE if succeeded else OrderStatus.FAILED
        metadata = {
            key: str(values[key])  # dropletId is a string in the API, here too
            for key in ("droplet_id", "ipv4_public", "error_code")
            if values.get(key) is not None
        }
        async with self._sessionmaker() as session, session.begin():
            await self._update_held(session, task_id, values)
            await transition(
                session,
                order_id,
                target,
                actor=SYSTEM,
                reason=reason,
                metadata={_camel(k): v for k, v in metadata.items()} or None,
            )

    async def _update_held(
        self, session: AsyncSession, task_id: uuid.UUID, values: dict[str, Any]
    ) -> None:
        held = and_(tasks_t.c.id == task_id, tasks_t.c.lease_owner == self.owner)
        result = await session.execute(update(tasks_t).where(held).values(**values))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(str(task_id))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
