"""Every database read and write of the server-actions engine.

The leases are the engine's (`engine/leases.py`): every write to an action
is conditional on this process still holding it. An action is claimable
only when it is due (`next_attempt_at <= now`) and no earlier action of the
same order is unfinished: one action per droplet at a time, oldest first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping, and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.accounts.placement import wake_waiting_tasks
from order_service.actions.models import ServerAction
from order_service.actions.writer import SYSTEM, UNFINISHED, action_json, end_moot_power_off
from order_service.db import utcnow
from order_service.engine.leases import LeaseStore
from order_service.events.outbox import write_event
from order_service.orders.models import Order
from order_service.orders.repository import lock_order
from order_service.orders.states import ActionStatus, ActionType, PlanChangeStatus
from order_service.plan_changes.completion import settle_resize
from order_service.plan_changes.models import PlanChange
from order_service.provisioning.models import ProvisioningTask

actions_t = ServerAction.__table__
tasks_t = ProvisioningTask.__table__
orders_t = Order.__table__
changes_t = PlanChange.__table__
DESTROYED = "destroyed"

_earlier = actions_t.alias("earlier")
# An unfinished action of the same order created before this one (ids break ties).
_EARLIER_UNFINISHED = exists().where(
    _earlier.c.order_id == actions_t.c.order_id,
    _earlier.c.status.in_(UNFINISHED),
    or_(
        _earlier.c.created_at < actions_t.c.created_at,
        and_(_earlier.c.created_at == actions_t.c.created_at, _earlier.c.id < actions_t.c.id),
    ),
)


@dataclass(frozen=True, slots=True)
class DropletRef:
    """The order's droplet as the database knows it (None: never had one)."""

    droplet_id: int | None
    droplet_status: str | None
    account_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class ResizeTarget:
    """The size a RESIZE gives the droplet, and whether the disk grows with it."""

    size_slug: str
    resize_disk: bool


class ActionStore(LeaseStore):
    """Leases on server actions, and the engine's own writes."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], owner: str) -> None:
        super().__init__(
            sessionmaker,
            actions_t,
            owner,
            unfinished=lambda: actions_t.c.status.in_(UNFINISHED),
            due=lambda now: and_(actions_t.c.next_attempt_at <= now, ~_EARLIER_UNFINISHED),
            order_by=(actions_t.c.created_at, actions_t.c.id),
        )

    async def droplet_of(self, order_id: uuid.UUID) -> DropletRef:
        statement = select(
            tasks_t.c.droplet_id, tasks_t.c.droplet_status, tasks_t.c.do_account_id
        ).where(tasks_t.c.order_id == order_id)
        async with self._sessionmaker() as session:
            row = (await session.execute(statement)).first()
        if row is None:
            return DropletRef(None, None)
        return DropletRef(row.droplet_id, row.droplet_status, row.do_account_id)

    async def postpone(self, action_id: uuid.UUID, values: dict[str, Any]) -> None:
        """Save and give the lease back: a later scan (at next_attempt_at) resumes it."""
        await self.save(action_id, **values, lease_owner=None, lease_expires_at=None)

    async def finish(
        self,
        row: RowMapping,
        *,
        status: ActionStatus,
        error_code: str | None = None,
        error_message: str | None = None,
        droplet_status: str | None = None,
        droplet_size: str | None = None,
    ) -> None:
        """End the action, update what it changed, and write its event: one transaction.

        `droplet_status` is what the droplet is now ("off", "active",
        "destroyed"); a completed REBUILD also gives the order its new image,
        and a RESIZE ends its plan change by the droplet's size (`droplet_size`).
        """
        now = utcnow()
        values = {
            "status": status.value,
            "error_code": error_code,
            "error_message": error_message,
            "completed_at": now,
            "started_at": row["started_at"] or now,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        order_id = row["order_id"]
        completed = status is ActionStatus.COMPLETED
        resize = row["type"] == ActionType.RESIZE.value
        async with self._sessionmaker() as session, session.begin():
            if resize:
                # The order first, as every writer of an order's plan changes locks.
                await lock_order(session, order_id)
            await self.update_held(session, row["id"], values)
            task_values: dict[str, Any] = {}
            if droplet_status is not None:
                task_values["droplet_status"] = droplet_status
            if completed and row["type"] == ActionType.REBUILD.value and row["image_slug"]:
                task_values["do_image"] = row["image_slug"]
                await session.execute(
                    update(orders_t)
                    .where(orders_t.c.id == order_id)
                    .values(
                        image_id=row["image_id"],
                        image_name=row["image_name"],
                        do_image_slug=row["image_slug"],
                        updated_at=now,
                    )
                )
            if (
                completed
                and row["type"] == ActionType.SHUTDOWN.value
                and row["requested_by"] == SYSTEM
            ):
                await end_moot_power_off(session, order_id)
            if task_values:
                await session.execute(
                    update(tasks_t)
                    .where(tasks_t.c.order_id == order_id)
                    .values(**task_values, updated_at=now)
                )
            final = (
                (await session.execute(select(actions_t).where(actions_t.c.id == row["id"])))
                .mappings()
                .one()
            )
            if resize:
                await settle_resize(session, final, droplet_size)
            if droplet_status == DESTROYED:
                # Its slot in the account is free: a task waiting for room takes it.
                await wake_waiting_tasks(session)
            event = "action.completed" if completed else "action.failed"
            await write_event(session, event, order_id, action=action_json(final))

    async def resize_target(self, action_id: uuid.UUID) -> ResizeTarget | None:
        """What a RESIZE action resizes to: its PAID plan change's size and disk flag."""
        statement = select(changes_t.c.to_size_slug, changes_t.c.resize_disk).where(
            changes_t.c.action_id == action_id,
            changes_t.c.status == PlanChangeStatus.PAID.value,
        )
        async with self._sessionmaker() as session:
            row = (await session.execute(statement)).first()
        return None if row is None else ResizeTarget(row.to_size_slug, bool(row.resize_disk))

    async def known_do_action_ids(self, order_id: uuid.UUID) -> set[int]:
        """DO action ids other actions of the order already own (never adopted twice)."""
        statement = select(actions_t.c.do_action_id).where(
            actions_t.c.order_id == order_id, actions_t.c.do_action_id.is_not(None)
        )
        async with self._sessionmaker() as session:
            return set((await session.execute(statement)).scalars())
