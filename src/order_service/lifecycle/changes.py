"""The lifecycle's status changes, each with its droplet action in the same transaction.

Used by the scanner (SPEC section 9's rules), by ops (suspend, unsuspend,
terminate) and by users (cancel of an expired service). Every change goes
through `transitions.transition`, so of two processes (or a process and a
request) acting on one order only the first wins; the action rows are
written in the same transaction, so a change and its droplet work commit
together or not at all. The actions engine works the rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from order_service.actions.writer import SYSTEM, enqueue_action
from order_service.db import utcnow
from order_service.errors import AppError, OrderStatusConflict
from order_service.orders.states import (
    ActionType,
    OrderStatus,
    SuspensionReason,
    TerminationReason,
)
from order_service.orders.transitions import Moved, OrderRow, transition
from order_service.plan_changes.service import cancel_open_plan_changes
from order_service.renewals.service import cancel_open_renewals


def require_status(*statuses: OrderStatus) -> Callable[[OrderRow], None]:
    """A `transition(check=...)` that refuses any status but `statuses`.

    The transition table allows PROVISIONING → ACTIVE too; unsuspending must
    not move a PROVISIONING order.
    """

    def check(order: OrderRow) -> None:
        if order["status"] not in statuses:
            raise OrderStatusConflict(
                f"Order is {order['status']}; this needs "
                + " or ".join(status.value for status in statuses),
                details={"currentStatus": order["status"]},
            )

    return check


async def suspend(
    session: AsyncSession,
    order_id: uuid.UUID,
    why: SuspensionReason,
    *,
    actor: str,
    reason: str,
    shutdown_grace: timedelta,
    check: Callable[[OrderRow], None] | None = None,
) -> Moved:
    """ACTIVE → SUSPENDED, and the droplet is turned off.

    A graceful SHUTDOWN now, and a hard POWER_OFF after `shutdown_grace`
    (SHUTDOWN_GRACE) that completes without a DO request if the droplet is
    already off by then.
    """
    now = utcnow()
    moved = await transition(
        session,
        order_id,
        OrderStatus.SUSPENDED,
        actor=actor,
        reason=reason,
        metadata={"suspensionReason": why.value},
        values={"suspended_at": now, "suspension_reason": why.value},
        check=check,
    )
    await enqueue_action(
        session, order_id, ActionType.SHUTDOWN, requested_by=SYSTEM, reason=f"Suspended: {reason}"
    )
    await enqueue_action(
        session,
        order_id,
        ActionType.POWER_OFF,
        requested_by=SYSTEM,
        reason="Suspended: the droplet must be off (no-op if the shutdown did it)",
        not_before=now + shutdown_grace,
    )
    return moved


async def unsuspend(
    session: AsyncSession, order_id: uuid.UUID, *, actor: str, reason: str
) -> Moved:
    """SUSPENDED → ACTIVE and the droplet is powered on; refused while expiresAt is past."""

    def check(order: OrderRow) -> None:
        require_status(OrderStatus.SUSPENDED)(order)
        expires_at = order["expires_at"]
        if expires_at is not None and expires_at <= utcnow():
            raise OrderStatusConflict(
                "The order's period has ended: renew it or set its expiry first",
                details={"currentStatus": order["status"], "expiresAt": expires_at.isoformat()},
            )

    moved = await transition(
        session,
        order_id,
        OrderStatus.ACTIVE,
        actor=actor,
        reason=reason,
        values={"suspended_at": None, "suspension_reason": None},
        check=check,
    )
    await enqueue_action(session, order_id, ActionType.POWER_ON, requested_by=SYSTEM, reason=reason)
    return moved


async def terminate(
    session: AsyncSession,
    order_id: uuid.UUID,
    why: TerminationReason,
    *,
    actor: str,
    reason: str,
    check: Callable[[OrderRow], None] | None = None,
    conflict: Callable[[str, str], AppError] | None = None,
) -> Moved:
    """→ TERMINATED: the droplet is destroyed; open renewals, plan changes and pending
    user actions end (a pending RESIZE too: DESTROY makes it moot).

    History stays. DESTROY is enqueued even when no droplet was recorded
    (a FAILED order): the actions engine completes it at once then.
    """
    now = utcnow()
    extra = {"conflict": conflict} if conflict is not None else {}
    moved = await transition(
        session,
        order_id,
        OrderStatus.TERMINATED,
        actor=actor,
        reason=reason,
        metadata={"terminationReason": why.value},
        values={"terminated_at": now, "termination_reason": why.value, "next_reminder_at": None},
        check=check,
        **extra,
    )
    await cancel_open_renewals(session, order_id)
    await cancel_open_plan_changes(session, order_id)
    # A system action supersedes the order's PENDING user actions (writer.py).
    await enqueue_action(
        session, order_id, ActionType.DESTROY, requested_by=SYSTEM, reason=f"Terminated: {reason}"
    )
    return moved
