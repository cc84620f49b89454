"""A plan change's payment (SPEC section 15): PAID starts its RESIZE in the same transaction.

Locks are taken order first, then the plan change, like every other writer
(service.py, the RESIZE's end in completion.py), so of two racing PAIDs the
second waits on the order's lock, then finds the change PAID: 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.actions.writer import SYSTEM, enqueue_action
from order_service.db import utcnow
from order_service.errors import PaymentStatusConflict, PlanChangeNotFound
from order_service.events.outbox import write_event
from order_service.orders import repository as repo
from order_service.orders.states import ActionType, OrderStatus, PlanChangeStatus
from order_service.plan_changes.store import changes_t, lock_plan_change
from order_service.plan_changes.views import plan_change_json

_UNPAID = PlanChangeStatus.PENDING_PAYMENT.value


async def set_payment_status(
    session: AsyncSession, change_id: uuid.UUID, status: str, notes: str | None
) -> dict[str, Any]:
    """PAID queues the RESIZE; PAYMENT_FAILED is an event (the change stays unpaid)."""
    order_id = (
        await session.execute(select(changes_t.c.order_id).where(changes_t.c.id == change_id))
    ).scalar_one_or_none()
    if order_id is None:
        raise PlanChangeNotFound()
    order = await repo.lock_order(session, order_id)
    assert order is not None  # plan changes cascade with their order
    change = await lock_plan_change(session, change_id)
    assert change is not None
    if change["status"] != _UNPAID:
        raise PaymentStatusConflict(
            f"Plan change is {change['status']}; payment status can only change while "
            "PENDING_PAYMENT",
            details={"currentStatus": change["status"]},
        )
    if status == "PAYMENT_FAILED":
        body = plan_change_json(change)
        await write_event(session, "plan_change.payment_failed", order_id, plan_change=body)
        return {"data": body}
    if order["status"] != OrderStatus.ACTIVE:
        # A suspended server is off for a reason: it is not resized and powered on.
        raise PaymentStatusConflict(
            f"Order is {order['status']}; the plan change can only be paid while it is ACTIVE",
            details={"currentStatus": order["status"]},
        )
    return {"data": await mark_paid(session, change, notes)}


async def mark_paid(
    session: AsyncSession, change: Mapping[str, Any], notes: str | None
) -> dict[str, Any]:
    """PENDING_PAYMENT → PAID and the system RESIZE queued; the caller holds the order's lock.

    The RESIZE waits behind an action already running (one per order at a time)
    and supersedes the order's pending user actions (actions/writer.py).
    """
    order_id = change["order_id"]
    action = await enqueue_action(
        session,
        order_id,
        ActionType.RESIZE,
        requested_by=SYSTEM,
        reason=notes or f"Plan change to {change['to_plan_name']}",
    )
    now = utcnow()
    paid = (
        (
            await session.execute(
                update(changes_t)
                .where(changes_t.c.id == change["id"])
                .values(
                    status=PlanChangeStatus.PAID.value,
                    action_id=action["id"],
                    paid_at=now,
                    updated_at=now,
                )
                .returning(*changes_t.c)
            )
        )
        .mappings()
        .one()
    )
    body = plan_change_json(paid)
    await write_event(session, "plan_change.paid", order_id, plan_change=body)
    return body
