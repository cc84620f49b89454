"""Ops' and users' lifecycle changes: expiry, suspend, unsuspend, terminate, cancel (SPEC 5, 9).

Each returns the order as the API shows it after the change; the request's
session commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from order_service.auth import CurrentUser
from order_service.db import utcnow
from order_service.errors import (
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
    ServiceSuspended,
)
from order_service.jsonresponse import iso
from order_service.lifecycle import changes
from order_service.lifecycle.period import next_reminder_at
from order_service.orders import repository as repo
from order_service.orders import service as orders
from order_service.orders.states import (
    OrderEvent,
    OrderStatus,
    SuspensionReason,
    TerminationReason,
)
from order_service.orders.transitions import record_event

ACTIVE_OR_SUSPENDED = (OrderStatus.ACTIVE, OrderStatus.SUSPENDED)


async def _detail(session: AsyncSession, order_id: uuid.UUID, *, user: bool) -> dict[str, Any]:
    return await orders.get_order(session, order_id, owner=None, history=not user)


# ---------------------------------------------------------------- ops


async def set_expiry(
    session: AsyncSession,
    order_id: uuid.UUID,
    expires_at: datetime,
    *,
    actor: str,
    reason: str | None,
    reminders: Sequence[timedelta],
) -> dict[str, Any]:
    """Set the period end (EXPIRY_CHANGED); a past date lets the next scan act on it.

    The reminders of the period count again from the new end.
    """
    order = await repo.lock_order(session, order_id)
    if order is None:
        raise OrderNotFound()
    now = utcnow()
    await record_event(
        session,
        order_id,
        OrderEvent.EXPIRY_CHANGED,
        expected=ACTIVE_OR_SUSPENDED,
        actor=actor,
        reason=reason or "Expiry changed by ops",
        metadata={"previousExpiresAt": iso(order["expires_at"]), "expiresAt": iso(expires_at)},
        values={
            "expires_at": expires_at,
            "next_reminder_at": next_reminder_at(expires_at, now, reminders),
            # Another period end: invoiced in time (rule 6), unless it is the same one.
            "renewal_due_at": (
                order["renewal_due_at"] if expires_at == order["expires_at"] else expires_at
            ),
        },
    )
    return await _detail(session, order_id, user=False)


async def suspend(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    actor: str,
    reason: str | None,
    shutdown_grace: timedelta,
) -> dict[str, Any]:
    await changes.suspend(
        session,
        order_id,
        SuspensionReason.ADMIN,
        actor=actor,
        reason=reason or "Suspended by ops",
        shutdown_grace=shutdown_grace,
        check=changes.require_status(OrderStatus.ACTIVE),
    )
    return await _detail(session, order_id, user=False)


async def unsuspend(
    session: AsyncSession, order_id: uuid.UUID, *, actor: str, reason: str | None
) -> dict[str, Any]:
    await changes.unsuspend(session, order_id, actor=actor, reason=reason or "Unsuspended by ops")
    return await _detail(session, order_id, user=False)


async def terminate(
    session: AsyncSession, order_id: uuid.UUID, *, actor: str, reason: str | None
) -> dict[str, Any]:
    await changes.terminate(
        session,
        order_id,
        TerminationReason.ADMIN,
        actor=actor,
        reason=reason or "Terminated by ops",
    )
    return await _detail(session, order_id, user=False)


# ---------------------------------------------------------------- users


async def cancel(
    session: AsyncSession, order_id: uuid.UUID, *, user: CurrentUser, reason: str | None
) -> dict[str, Any]:
    """The user's cancel, by status (SPEC section 5).

    PENDING_PAYMENT: canceled. ACTIVE: the end is scheduled at expiresAt
    (again: 409). SUSPENDED for EXPIRED: terminated now; for ADMIN: 409
    SERVICE_SUSPENDED. Anything else: 409 ORDER_STATUS_CONFLICT.
    """
    order = await _own_locked(session, order_id, user)
    status = order["status"]
    if status == OrderStatus.PENDING_PAYMENT:
        return await orders.cancel_order(
            session, order_id, actor=user.actor, owner=user, reason=reason
        )
    if status == OrderStatus.ACTIVE:
        if order["cancel_at_period_end"]:
            raise OrderStatusConflict(
                "The cancellation is already scheduled",
                details={"currentStatus": status, "cancelAtPeriodEnd": True},
            )
        await record_event(
            session,
            order_id,
            OrderEvent.CANCEL_SCHEDULED,
            expected=OrderStatus.ACTIVE,
            actor=user.actor,
            reason=reason or "Canceled by the user: the service ends at expiresAt",
            metadata={"expiresAt": iso(order["expires_at"])},
            values={"cancel_at_period_end": True},
        )
    elif status == OrderStatus.SUSPENDED:
        if order["suspension_reason"] != SuspensionReason.EXPIRED:
            raise ServiceSuspended(
                "The service was suspended by an operator: contact support",
                details={"suspensionReason": order["suspension_reason"]},
            )
        await changes.terminate(
            session,
            order_id,
            TerminationReason.CANCELED_BY_USER,
            actor=user.actor,
            reason=reason or "Canceled by the user while suspended for non-payment",
        )
    else:
        raise OrderStatusConflict(
            f"Order is {status}; it cannot be canceled",
            details={"currentStatus": status, "requestedStatus": OrderStatus.CANCELED.value},
        )
    return await _detail(session, order_id, user=True)


async def uncancel(
    session: AsyncSession, order_id: uuid.UUID, *, user: CurrentUser, reason: str | None
) -> dict[str, Any]:
    """Take back a scheduled cancellation (CANCEL_UNSCHEDULED); none scheduled: 409."""
    order = await _own_locked(session, order_id, user)
    if order["status"] not in ACTIVE_OR_SUSPENDED or not order["cancel_at_period_end"]:
        raise OrderStatusConflict(
            "No cancellation is scheduled for this order",
            details={"currentStatus": order["status"], "cancelAtPeriodEnd": False},
        )
    await record_event(
        session,
        order_id,
        OrderEvent.CANCEL_UNSCHEDULED,
        expected=ACTIVE_OR_SUSPENDED,
        actor=user.actor,
        reason=reason or "The user took back the cancellation",
        values={"cancel_at_period_end": False},
    )
    return await _detail(session, order_id, user=True)


async def _own_locked(session: AsyncSession, order_id: uuid.UUID, user: CurrentUser) -> Any:
    order = await repo.lock_order(session, order_id)
    if order is None:
        raise OrderNotFound()
    if order["user_id"] != user.id:
        raise OrderAccessDenied()
    return order
