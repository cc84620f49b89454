"""A renewal's payment (SPEC section 9): PAID extends the order in one transaction.

Locks are taken order first, then the renewal, like every other writer of
renewals (service.py), so a payment racing the order's suspension or
termination waits instead of deadlocking.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import RowMapping, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.actions.writer import SYSTEM, enqueue_action
from order_service.db import utcnow
from order_service.errors import PaymentStatusConflict, RenewalNotFound
from order_service.events.outbox import write_event
from order_service.jsonresponse import iso
from order_service.lifecycle.period import extend, next_reminder_at
from order_service.orders import repository as repo
from order_service.orders.states import (
    ActionType,
    OrderEvent,
    OrderStatus,
    RenewalStatus,
    SuspensionReason,
)
from order_service.orders.transitions import record_event, transition
from order_service.renewals.service import RENEWABLE, renewals_t
from order_service.renewals.views import renewal_json

_OPEN = RenewalStatus.PENDING_PAYMENT.value


async def set_payment_status(
    session: AsyncSession,
    renewal_id: uuid.UUID,
    status: str,
    notes: str | None,
    *,
    actor: str,
    reminders: Sequence[timedelta],
) -> dict[str, Any]:
    """PAID extends the order in this transaction; PAYMENT_FAILED is an event.

    Of two racing PAIDs, the second waits on the order's lock, then finds
    the renewal PAID: 409, and the period moved once.
    """
    order_id = (
        await session.execute(select(renewals_t.c.order_id).where(renewals_t.c.id == renewal_id))
    ).scalar_one_or_none()
    if order_id is None:
        raise RenewalNotFound()
    order = await repo.lock_order(session, order_id)
    assert order is not None  # renewals cascade with their order
    renewal = await _lock_renewal(session, renewal_id)
    if renewal["status"] != _OPEN:
        raise PaymentStatusConflict(
            f"Renewal is {renewal['status']}; payment status can only change while PENDING_PAYMENT",
            details={"currentStatus": renewal["status"]},
        )
    if status == "PAYMENT_FAILED":
        body = renewal_json(renewal)
        await write_event(session, "renewal.payment_failed", order_id, renewal=body)
        return {"data": body}
    if order["status"] not in RENEWABLE:
        raise PaymentStatusConflict(
            f"Order is {order['status']}; the renewal can no longer be paid",
            details={"currentStatus": order["status"]},
        )
    body = await pay_locked(session, order, renewal, notes, actor=actor, reminders=reminders)
    return {"data": body}


async def _lock_renewal(session: AsyncSession, renewal_id: uuid.UUID) -> RowMapping:
    statement = select(renewals_t).where(renewals_t.c.id == renewal_id).with_for_update()
    return (await session.execute(statement)).mappings().one()


async def pay_locked(
    session: AsyncSession,
    order: RowMapping,
    renewal: RowMapping,
    notes: str | None,
    *,
    actor: str,
    reminders: Sequence[timedelta],
) -> dict[str, Any]:
    """Pay an open renewal: the caller holds the order's lock, then the renewal's."""
    order_id = order["id"]
    now = utcnow()
    previous = order["expires_at"]
    new_expires_at = extend(max(previous or now, now), renewal["duration"], renewal["periods"])
    paid = (
        (
            await session.execute(
                update(renewals_t)
                .where(renewals_t.c.id == renewal["id"])
                .values(
                    status=RenewalStatus.PAID.value,
                    previous_expires_at=previous,
                    new_expires_at=new_expires_at,
                    paid_at=now,
                    updated_at=now,
                )
                .returning(*renewals_t.c)
            )
        )
        .mappings()
        .one()
    )
    await record_event(
        session,
        order_id,
        OrderEvent.RENEWED,
        expected=RENEWABLE,
        actor=actor,
        reason=notes or f"Renewal paid: {renewal['periods']} x {renewal['duration']}",
        metadata={
            "renewalId": str(renewal["id"]),
            "previousExpiresAt": iso(previous),
            "newExpiresAt": iso(new_expires_at),
        },
        values={
            "expires_at": new_expires_at,
            # A new period: its reminders count again from the largest threshold ahead.
            "next_reminder_at": next_reminder_at(new_expires_at, now, reminders),
            "cancel_at_period_end": False,
            # A new period: the service invoices it in time (rule 6).
            "renewal_due_at": new_expires_at,
        },
    )
    if order["cancel_at_period_end"]:
        await record_event(
            session,
            order_id,
            OrderEvent.CANCEL_UNSCHEDULED,
            expected=RENEWABLE,
            actor=actor,
            reason="Renewal paid: the scheduled cancellation is taken back",
        )
    if (
        order["status"] == OrderStatus.SUSPENDED
        and order["suspension_reason"] == SuspensionReason.EXPIRED
    ):
        # Suspended for non-payment and now paid: back on. An ADMIN
        # suspension stays until ops lift it.
        await transition(
            session,
            order_id,
            OrderStatus.ACTIVE,
            actor=SYSTEM,
            reason="Renewal paid: service restored",
            metadata={"renewalId": str(renewal["id"])},
            values={"suspended_at": None, "suspension_reason": None},
        )
        await enqueue_action(
            session, order_id, ActionType.POWER_ON, requested_by=SYSTEM, reason="Renewal paid"
        )
    body = renewal_json(paid)
    await write_event(session, "renewal.paid", order_id, renewal=body)
    return body
