"""The one writer of events: the transactional outbox of SPEC section 11.

`write_event` inserts an event in the caller's transaction, so the event
exists exactly when the change it describes commits. It is called from one
place for order changes (`orders.transitions.record_history`, which every
status change and history event goes through, so a new transition cannot
forget its event) and by the writers of renewals, plan changes and server
actions.
Nothing else inserts into `events`.

The event is written without a sequence; the relay (`events/relay.py`)
stamps sequences in commit order, which is what makes the feed gap-free.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.db import utcnow
from order_service.engine import wakeup
from order_service.events.models import Event
from order_service.jsonresponse import dumps
from order_service.orders import repository as repo
from order_service.orders.states import OrderStatus
from order_service.orders.views import order_json

events_t = Event.__table__
_INSERT_EVENT = insert(events_t)

# Every event type of SPEC section 11 that goes to the feed (webhook.ping does not).
ORDER_STATUS_EVENTS = {
    f"order.{status.lower()}" for status in OrderStatus if status != OrderStatus.PENDING_PAYMENT
}
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "order.created",
        "order.paid",
        "order.payment_failed",
        "order.provisioning",
        "order.active",
        "order.failed",
        "order.canceled",
        "order.expiring",
        "order.renewed",
        "order.expiry_changed",
        "order.cancel_scheduled",
        "order.cancel_unscheduled",
        "order.suspended",
        "order.unsuspended",
        "order.terminated",
        "renewal.created",
        "renewal.paid",
        "renewal.payment_failed",
        "renewal.canceled",
        "action.requested",
        "action.completed",
        "action.failed",
        # v1.2 (SPEC sections 11, 13, 15)
        "order.waiting_for_capacity",
        "order.plan_changed",
        "plan_change.created",
        "plan_change.paid",
        "plan_change.payment_failed",
        "plan_change.canceled",
        "plan_change.completed",
        "plan_change.failed",
        "do_account.unhealthy",
        "do_account.healthy",
        # v1.2: an action ended before anything was sent to DO (SPEC section 3's CANCELED).
        "action.canceled",
    }
)
#: Events about a DO account, not an order: `data.account`, no `orderId`.
ACCOUNT_EVENTS = frozenset({"do_account.unhealthy", "do_account.healthy"})


def history_event_type(previous: str | None, new: str) -> str:
    """The event type of one history row (SPEC section 11)."""
    if previous is None:
        return "order.created"
    if previous == OrderStatus.SUSPENDED and new == OrderStatus.ACTIVE:
        return "order.unsuspended"
    return f"order.{new.lower()}"


async def write_account_event(
    session: AsyncSession, event_type: str, account: dict[str, Any]
) -> uuid.UUID:
    """An event about a DO account (SPEC section 13): `data.account`, no order."""
    if event_type not in ACCOUNT_EVENTS:
        raise ValueError(f"{event_type!r} is not an account event")
    return await _insert(session, event_type, None, {"account": account})


async def write_event(
    session: AsyncSession,
    event_type: str,
    order_id: uuid.UUID,
    *,
    order: repo.OrderWithTask | None = None,
    history: dict[str, Any] | None = None,
    renewal: dict[str, Any] | None = None,
    action: dict[str, Any] | None = None,
    plan_change: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Insert one event about `order_id`, with the order as it is now in this transaction.

    `order` is that order (and task) when the caller holds it (the status door
    does); otherwise it is read back here."""
    if event_type not in EVENT_TYPES or event_type in ACCOUNT_EVENTS:
        raise ValueError(f"unknown order event type {event_type!r}")
    found = order if order is not None else await repo.get_order_with_task(session, order_id)
    if found is None:
        raise ValueError(f"event {event_type} for an unknown order {order_id}")
    order, task = found
    items = await repo.items_of(session, order_id)
    data: dict[str, Any] = {"order": order_json(order, items, task)}
    if history is not None:
        data["history"] = history
    if renewal is not None:
        data["renewal"] = renewal
    if action is not None:
        data["action"] = action
    if plan_change is not None:
        data["planChange"] = plan_change
    return await _insert(session, event_type, order_id, data)


async def _insert(
    session: AsyncSession, event_type: str, order_id: uuid.UUID | None, data: dict[str, Any]
) -> uuid.UUID:
    event_id = uuid.uuid4()
    await session.execute(
        _INSERT_EVENT,
        {
            "id": event_id,
            "sequence": None,
            "type": event_type,
            "order_id": order_id,
            # Stored as plain JSON (UUIDs and times as the API shows them).
            "data": orjson.loads(dumps(data)),
            "created_at": utcnow(),
        },
    )
    # This process's relay stamps it as soon as the change commits, so the
    # feed and webhooks follow within milliseconds instead of the next tick.
    wakeup.wake_after_commit(session, wakeup.EVENTS)
    return event_id
