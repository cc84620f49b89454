"""Every database read and write of the provisioner.

The leases are the engine's (`engine/leases.py`): every write to a task is
conditional on this process still holding it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.access import credentials
from order_service.accounts.placement import (
    WAITING_FOR_CAPACITY,
    choose_account,
    wake_waiting_tasks,
)
from order_service.db import utcnow
from order_service.engine.leases import LeaseStore
from order_service.lifecycle.period import first_period
from order_service.orders.models import Order
from order_service.orders.states import OrderEvent, OrderStatus, TaskStatus
from order_service.orders.transitions import SYSTEM, record_event, transition
from order_service.provisioning.models import ProvisioningTask
from order_service.secret_box import SecretBox

tasks_t = ProvisioningTask.__table__
orders_t = Order.__table__
# What a create needs of the order besides the task (SPEC section 14).
_SERVER_SPEC = select(orders_t.c.hostname, orders_t.c.access, orders_t.c.ssh_keys)

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
            # A task waiting (for capacity, for its account's token) is not due
            # before its next_check_at; a freed slot or a healthy account brings
            # that forward (accounts/).
            due=lambda now: or_(tasks_t.c.next_check_at.is_(None), tasks_t.c.next_check_at <= now),
        )

    async def place(
        self, task_id: uuid.UUID, budget_left: Callable[[uuid.UUID], float]
    ) -> uuid.UUID | None:
        """Take a slot for the task's droplet (accounts/placement.py): the account is
        recorded on the task in the transaction that counted the slot free."""
        async with self._sessionmaker() as session, session.begin():
            account = await choose_account(session, budget_left)
            if account is None:
                return None
            await self.update_held(
                session,
                task_id,
                {"do_account_id": account["id"], "error_code": None, "error_message": None},
            )
            return account["id"]

    async def release_slot(self, task_id: uuid.UUID) -> None:
        """The account refused the create (full, or its token): no droplet was made there."""
        await self.save(task_id, do_account_id=None)

    async def wait_for_capacity(
        self,
        task_id: uuid.UUID,
        order_id: uuid.UUID,
        *,
        message: str,
        first: bool,
        retry_at: datetime,
    ) -> None:
        """No account has room: the task waits (PENDING, WAITING_FOR_CAPACITY) and gives its
        lease back; the order's `order.waiting_for_capacity` is written once per wait."""
        values = {
            "status": TaskStatus.PENDING.value,
            "error_code": WAITING_FOR_CAPACITY,
            "error_message": message,
            "next_check_at": retry_at,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        async with self._sessionmaker() as session, session.begin():
            await self.update_held(session, task_id, values)
            if first:
                await record_event(
                    session,
                    order_id,
                    OrderEvent.WAITING_FOR_CAPACITY,
                    expected=OrderStatus.PROVISIONING,
                    actor=SYSTEM,
                    reason=message,
                )

    async def postpone(self, task_id: uuid.UUID, until: datetime, **values: Any) -> None:
        """Save and give the lease back: a scan at `until` (or a wake-up) resumes the task."""
        await self.save(
            task_id, **values, next_check_at=until, lease_owner=None, lease_expires_at=None
        )

    async def server_spec(self, order_id: uuid.UUID) -> RowMapping:
        """The order's hostname, access and SSH keys' copy: read once per worker."""
        async with self._sessionmaker() as session:
            statement = _SERVER_SPEC.where(orders_t.c.id == order_id)
            return (await session.execute(statement)).mappings().one()

    async def start_create(
        self,
        task_id: uuid.UUID,
        now: datetime,
        *,
        password_of: uuid.UUID | None = None,
        box: SecretBox | None = None,
    ) -> str | None:
        """Record the intent to create *before* POST /v2/droplets is sent.

        After a crash, a set intent without a droplet id means a droplet may
        exist: the next worker looks it up by tag instead of creating blindly.
        The deadline does not start here but when DO has accepted the droplet:
        a storm's wait for the rate budget must not eat into it.

        `password_of`: a PASSWORD order; its first-access password (stored, or made
        and stored now, encrypted with `box`) commits with the intent and is returned.
        """
        values = {
            "status": TaskStatus.IN_PROGRESS.value,
            "create_intent_at": now,
            "started_at": func.coalesce(tasks_t.c.started_at, now),
            "updated_at": now,
        }
        password = None
        async with self._sessionmaker() as session, session.begin():
            await self.update_held(session, task_id, values)
            if password_of is not None:
                assert box is not None
                password = await credentials.password_for_create(session, box, password_of)
        return password

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
            if succeeded:
                # A first-access password's CREDENTIALS_TTL counts from here.
                await credentials.mark_active(session, order_id, now)
            else:
                # A failed task no longer holds its slot (unless its droplet lives on).
                await wake_waiting_tasks(session)
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
