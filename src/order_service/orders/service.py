"""Order use cases: read, list, pay, cancel, retry provisioning (create: `creation.py`).

Services flush but never commit: the request's session dependency commits
(or rolls back) the whole unit of work. Status changes go through
`transitions.transition`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.auth import CurrentUser
from order_service.db import on_commit, utcnow
from order_service.errors import (
    AppError,
    OrderAccessDenied,
    OrderNotFound,
    PaymentStatusConflict,
)
from order_service.orders import repository as repo

# Creation lives in its own module; re-exported for the callers that import it here.
from order_service.orders.creation import create_order, item_row
from order_service.orders.states import OrderEvent, OrderStatus, TaskStatus
from order_service.orders.transitions import (
    ADMIN,
    SYSTEM,
    Moved,
    OrderRow,
    record_event,
    transition,
)
from order_service.orders.views import order_json, page_meta
from order_service.provisioning.models import ProvisioningTask

__all__ = [
    "cancel_order",
    "create_order",
    "get_order",
    "item_row",
    "list_orders",
    "retry_provisioning",
    "set_payment_status",
    "start_provisioning",
]

tasks_t = ProvisioningTask.__table__
# Built once: a statement built per call costs more than its round trip.
_INSERT_TASK = insert(tasks_t).returning(*tasks_t.c)


# ---------------------------------------------------------------- read


async def get_order(
    session: repo.Reader,
    order_id: uuid.UUID,
    *,
    owner: CurrentUser | None,
    history: bool,
    known: repo.OrderWithTask | None = None,
) -> dict[str, Any]:
    """The order's JSON. `known`: the order and its task as the caller holds them in
    this transaction (a payment's last move), so they are not read again."""
    found = known if known is not None else await repo.get_order_with_task(session, order_id)
    if found is None:
        raise OrderNotFound()
    order, task = found
    if owner is not None and order["user_id"] != owner.id:
        raise OrderAccessDenied()
    items = await repo.items_of(session, order_id)
    entries = await repo.get_history(session, order_id) if history else None
    return {"data": order_json(order, items, task, entries)}


async def list_orders(
    session: repo.Reader,
    *,
    page: int,
    limit: int,
    user_id: str | None,
    status: OrderStatus | None,
) -> dict[str, Any]:
    if user_id is not None and "\x00" in user_id:
        # No user id holds NUL (tokens with one are refused), and PostgreSQL
        # would refuse the query: no orders.
        return {"data": [], "meta": page_meta(page, limit, 0)}
    rows, total = await repo.list_orders(
        session, page=page, limit=limit, user_id=user_id, status=status.value if status else None
    )
    ids = repo.ids_of(rows)
    items = await repo.get_items(session, ids)
    tasks = await repo.get_tasks(session, ids)
    data = [order_json(row, items.get(row["id"], []), tasks.get(row["id"])) for row in rows]
    return {"data": data, "meta": page_meta(page, limit, total)}


# ---------------------------------------------------------------- changes


async def set_payment_status(
    session: AsyncSession,
    order_id: uuid.UUID,
    status: str,
    notes: str | None,
    *,
    region: str,
    wake_provisioner: Callable[[], None],
    actor: str = ADMIN,
) -> dict[str, Any]:
    """PAID: PENDING_PAYMENT → PAID → PROVISIONING with the task, in one transaction.

    PAYMENT_FAILED: a history event; the order keeps waiting for payment.
    """

    def conflict(current: str, _target: str) -> AppError:
        return PaymentStatusConflict(
            f"Order is {current}; payment status can only change while PENDING_PAYMENT",
            details={"currentStatus": current},
        )

    if status == OrderEvent.PAYMENT_FAILED.value:
        await record_event(
            session,
            order_id,
            OrderEvent.PAYMENT_FAILED,
            expected=OrderStatus.PENDING_PAYMENT,
            actor=actor,
            reason=notes or "Payment failed",
            conflict=conflict,
        )
        return await get_order(session, order_id, owner=None, history=True)
    paid = await transition(
        session,
        order_id,
        OrderStatus.PAID,
        actor=actor,
        reason=notes or "Payment received",
        values={"paid_at": utcnow()},
        conflict=conflict,
    )
    provisioning = await start_provisioning(session, paid, region=region)
    on_commit(session, wake_provisioner)
    # The door knows the order and its task as they stand now: only the history is read.
    return await get_order(
        session,
        order_id,
        owner=None,
        history=True,
        known=(provisioning.after, provisioning.task),
    )


async def start_provisioning(session: AsyncSession, paid: Moved, *, region: str) -> Moved:
    """PAID → PROVISIONING and the task row: the durable hand-off to the provisioner.

    The task's region is the order's (SPEC section 14: every droplet of the order
    goes there, a retry's too); `region` (DIGITALOCEAN_DEFAULT_REGION) only for a
    row that has none. The task is written first so the `order.provisioning` event
    shows it; the order is still locked from the PAID move, so it is not locked
    and read again.
    """
    order = paid.after
    now = utcnow()
    task = (
        (
            await session.execute(
                _INSERT_TASK,
                {
                    "id": uuid.uuid4(),
                    "order_id": order["id"],
                    "status": TaskStatus.PENDING.value,
                    "do_region": order.get("region") or region,
                    "do_size": order["do_size_slug"],
                    "do_image": order["do_image_slug"],
                    "attempts": 0,
                    "not_found_count": 0,
                    "created_at": now,
                    "updated_at": now,
                    "next_check_at": now,
                },
            )
        )
        .mappings()
        .one()
    )
    return await transition(
        session,
        order["id"],
        OrderStatus.PROVISIONING,
        actor=SYSTEM,
        reason="Provisioning queued",
        held=(order, dict(task)),
    )


async def cancel_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    actor: str,
    owner: CurrentUser | None,
    reason: str | None,
) -> dict[str, Any]:
    def check_owner(order: OrderRow) -> None:
        if owner is not None and order["user_id"] != owner.id:
            raise OrderAccessDenied()

    await transition(
        session,
        order_id,
        OrderStatus.CANCELED,
        actor=actor,
        reason=reason or "Canceled",
        check=check_owner,
    )
    return await get_order(session, order_id, owner=None, history=owner is None)


async def retry_provisioning(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    reason: str | None,
    wake_provisioner: Callable[[], None],
    actor: str = ADMIN,
) -> dict[str, Any]:
    """FAILED → PROVISIONING on the same task; the droplet is reused if it exists.

    The task is reset first, so the `order.provisioning` event shows it PENDING
    (not the failure it leaves behind); a refused move rolls the reset back.
    """
    now = utcnow()
    await session.execute(
        update(tasks_t)
        .where(tasks_t.c.order_id == order_id)
        .values(
            status=TaskStatus.PENDING.value,
            error_code=None,
            error_message=None,
            attempts=0,
            not_found_count=0,
            completed_at=None,
            requested_at=None,  # the deadline starts again
            started_at=None,
            lease_owner=None,
            lease_expires_at=None,
            next_check_at=now,
            updated_at=now,
        )
    )
    await transition(
        session,
        order_id,
        OrderStatus.PROVISIONING,
        actor=actor,
        reason=reason or "Provisioning retried",
    )
    on_commit(session, wake_provisioner)
    return await get_order(session, order_id, owner=None, history=True)
