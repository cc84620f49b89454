"""The plan-change queries other domains need: the open one of an order, a row locked.

No imports of renewals: renewals ask here whether a plan change is open.
"""

from __future__ import annotations

import uuid

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.errors import PlanChangePending
from order_service.orders.states import OPEN_PLAN_CHANGES
from order_service.plan_changes.models import PlanChange

changes_t = PlanChange.__table__
OPEN = tuple(status.value for status in OPEN_PLAN_CHANGES)


async def open_plan_change(session: AsyncSession, order_id: uuid.UUID) -> uuid.UUID | None:
    """The order's unpaid or running plan change, if any."""
    statement = select(changes_t.c.id).where(
        changes_t.c.order_id == order_id, changes_t.c.status.in_(OPEN)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def check_no_open_plan_change(session: AsyncSession, order_id: uuid.UUID) -> None:
    """Refuse a second plan change, or a renewal, while one is unpaid or running."""
    open_id = await open_plan_change(session, order_id)
    if open_id is not None:
        raise PlanChangePending(
            "The order has an unpaid or running plan change",
            details={"planChangeId": str(open_id)},
        )


async def lock_plan_change(session: AsyncSession, change_id: uuid.UUID) -> RowMapping | None:
    statement = select(changes_t).where(changes_t.c.id == change_id).with_for_update()
    return (await session.execute(statement)).mappings().first()
