"""The one door for order status changes.

`transition()` locks the order row, checks the move against the table in
`states.py`, updates the status and appends the history row, all in the
caller's transaction: they commit together or not at all, and of two racing
requests only the first can see the status it needs. Nothing else writes
`orders.status`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Update, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from order_service import metrics
from order_service.access import credentials
from order_service.db import utcnow
from order_service.errors import AppError, OrderNotFound, OrderStatusConflict
from order_service.events.outbox import history_event_type, write_event
from order_service.orders.repository import (
    OrderWithTask,
    history_t,
    lock_order_with_task,
    orders_t,
)
from order_service.orders.states import OrderEvent, OrderStatus, can_transition

SYSTEM = "system"
ADMIN = "admin"
# The moves after which the order's first-access password is erased at once.
_ENDED = (OrderStatus.CANCELED, OrderStatus.TERMINATED)

# Statements built once (building them per call was a third of a payment's CPU).
# SET-clause parameters are named p_*: SQLAlchemy reserves the column names.
_INSERT_HISTORY = insert(history_t)
_TOUCH_ORDER = (
    update(orders_t)
    .where(orders_t.c.id == bindparam("p_order_id"))
    .values(updated_at=bindparam("p_updated_at"))
)
_SET_STATUS: dict[tuple[str, ...], Update] = {}


def _set_status(extra: tuple[str, ...]) -> Update:
    """UPDATE orders SET status, updated_at (and the `extra` columns) for one order."""
    statement = _SET_STATUS.get(extra)
    if statement is None:
        statement = (
            update(orders_t)
            .where(orders_t.c.id == bindparam("p_order_id"))
            .values(
                status=bindparam("p_status"),
                updated_at=bindparam("p_updated_at"),
                **{column: bindparam(f"p_{column}") for column in extra},
            )
        )
        _SET_STATUS[extra] = statement
    return statement


def _default_conflict(current: str, target: str) -> AppError:
    return OrderStatusConflict(
        f"Cannot move the order from {current} to {target}",
        details={"currentStatus": current, "requestedStatus": target},
    )


# An order row as the door reads it (a plain mapping of its columns).
OrderRow = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Moved:
    """What a transition did: the order before and after it, with its task.

    `after` is the row as this transaction left it, built from the locked row
    and the columns the door set (nothing else writes them in between), so the
    event and a caller's response need no read-back.
    """

    before: dict[str, Any]
    after: dict[str, Any]
    task: dict[str, Any] | None


def _row_after(order: OrderRow, updated_at: datetime, values: Mapping[str, Any]) -> dict[str, Any]:
    """The locked row with the columns this change wrote, as a read of it would return
    them (timestamps in UTC)."""
    written = {"updated_at": updated_at, **values}
    return {
        **order,
        **{
            column: value.astimezone(UTC) if isinstance(value, datetime) else value
            for column, value in written.items()
        },
    }


async def transition(
    session: AsyncSession,
    order_id: uuid.UUID,
    target: OrderStatus,
    *,
    actor: str,
    reason: str | None = None,
    metadata: dict[str, Any] | None = None,
    values: dict[str, Any] | Callable[[OrderRow], dict[str, Any]] | None = None,
    check: Callable[[OrderRow], None] | None = None,
    conflict: Callable[[str, str], AppError] = _default_conflict,
    held: OrderWithTask | None = None,
) -> Moved:
    """Move the order to `target` or raise.

    `check` runs on the locked row before the status test (e.g. ownership),
    `values` are extra columns set with the status (e.g. paid_at), or a
    function of the locked row that returns them (e.g. the period set on
    the first ACTIVE, computed from the order's duration).

    `held` is the order (and task) as this transaction already holds it locked:
    a second move in the same transaction (PAID, then PROVISIONING) passes the
    first one's `after` and the task written since, instead of locking and
    reading the row again.
    """
    found = held if held is not None else await lock_order_with_task(session, order_id)
    if found is None:
        raise OrderNotFound()
    order, task = found
    if check is not None:
        check(order)
    current = OrderStatus(order["status"])
    if not can_transition(current, target):
        raise conflict(current.value, target.value)
    now = utcnow()
    extra = (values(order) if callable(values) else values) or {}
    await session.execute(
        _set_status(tuple(sorted(extra))),
        {
            "p_order_id": order_id,
            "p_status": target.value,
            "p_updated_at": now,
            **{f"p_{column}": value for column, value in extra.items()},
        },
    )
    after = _row_after(order, now, {"status": target.value, **extra})
    if target in _ENDED:
        # A server that ended keeps no first-access password (SPEC section 14).
        await credentials.erase(session, order_id)
    await record_history(
        session,
        order_id,
        current.value,
        target.value,
        actor=actor,
        reason=reason,
        metadata=metadata,
        order=(after, task),
    )
    metrics.STATUS_TRANSITIONS.labels(current.value, target.value).inc()
    return Moved(before=order, after=after, task=task)


async def record_event(
    session: AsyncSession,
    order_id: uuid.UUID,
    event: OrderEvent,
    *,
    expected: OrderStatus | Collection[OrderStatus],
    actor: str,
    reason: str | None = None,
    metadata: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    conflict: Callable[[str, str], AppError] = _default_conflict,
) -> dict[str, Any]:
    """Record an event that leaves the status as it is (PAYMENT_FAILED, RENEWED...).

    The row is locked and the status checked like a transition, so an event
    cannot slip in beside a racing status change. `expected` is the status
    (or the statuses) the order must be in; `values` are columns the event
    changes with it (a renewal's expires_at), written before the history row
    so the event shows them. Returns the row as it was before.
    """
    found = await lock_order_with_task(session, order_id)
    if found is None:
        raise OrderNotFound()
    order, task = found
    allowed = {expected} if isinstance(expected, OrderStatus) else set(expected)
    if order["status"] not in allowed:
        raise conflict(order["status"], event.value)
    now = utcnow()
    if values:
        await session.execute(
            update(orders_t).where(orders_t.c.id == order_id).values(updated_at=now, **values)
        )
    else:
        await session.execute(_TOUCH_ORDER, {"p_order_id": order_id, "p_updated_at": now})
    await record_history(
        session,
        order_id,
        order["status"],
        event.value,
        actor=actor,
        reason=reason,
        metadata=metadata,
        order=(_row_after(order, now, values or {}), task),
    )
    return order


async def record_history(
    session: AsyncSession,
    order_id: uuid.UUID,
    previous: str | None,
    new: str,
    *,
    actor: str,
    reason: str | None = None,
    metadata: dict[str, Any] | None = None,
    order: OrderWithTask | None = None,
) -> None:
    """Append a history row and its event: every order change ends here.

    `order` is the order (and task) as this transaction leaves it, when the
    caller knows it; the event reads it back otherwise."""
    await session.execute(
        _INSERT_HISTORY,
        {
            "id": uuid.uuid4(),
            "order_id": order_id,
            "previous_status": previous,
            "new_status": new,
            "actor": actor,
            "reason": reason,
            "metadata": metadata,
            "created_at": _history_time(),
        },
    )
    await write_event(
        session,
        history_event_type(previous, new),
        order_id,
        order=order,
        history={
            "previousStatus": previous or "",
            "newStatus": new,
            "actor": actor,
            "reason": reason,
            "metadata": metadata,
        },
    )


_last_history_at = datetime.min.replace(tzinfo=UTC)


def _history_time() -> datetime:
    # History is read oldest first by created_at; two rows written in one
    # transaction (PAID then PROVISIONING) must not share a timestamp.
    global _last_history_at
    now = utcnow()
    if now <= _last_history_at:
        now = _last_history_at + timedelta(microseconds=1)
    _last_history_at = now
    return now
