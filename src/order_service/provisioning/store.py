"""Every database read and write of the provisioner.

The leases are the engine's (`engine/leases.py`): every write to a task is
conditional on this process still holding it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.db import utcnow
from order_service.engine.leases import LeaseStore
from order_service.lifecycle.period import first_period
from order_service.orders.states import OrderStatus, TaskStatus
from order_service.orders.transitions import SYSTEM, transition
from order_service.provisioning.models import ProvisioningTask

tasks_t = ProvisioningTask.__table__

UNFINISHED = (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value)


class TaskStore(LeaseStore):
    """Leases on provisioning tasks, and the provisioner's own writes."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        owner: str,
        *,
        expiry_reminders: Sequence[timedelta] = (),
    ) -> None:
        # EXPIRY_REMINDERS: the first period's first reminder is set with it.
        self._expiry_reminders = tuple(expiry_reminders)
        super().__init__(
            sessionmaker,
            tasks_t,
            owner,
            unfinished=lambda: tasks_t.c.status.in_(UNFINISHED),
        )

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
            await self.update_held(session, task_id, values)

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
            await self.update_held(session, task_id, values)
            await transition(
                session,
                order_id,
                target,
                actor=SYSTEM,
                reason=reason,
                metadata={_camel(k): v for k, v in metadata.items()} or None,
                # The first ACTIVE starts the billing period (SPEC section 9),
                # computed from the locked row so a second ACTIVE moves nothing.
                values=(
                    (lambda order: first_period(order, now, self._expiry_reminders))
                    if succeeded
                    else None
                ),
            )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
