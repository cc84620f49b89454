"""Writes server-action rows and their events: the one way an action is created.

Used by the actions API (users and ops), by the lifecycle (SHUTDOWN,
POWER_OFF, POWER_ON, DESTROY in the same transaction as a status change)
and by the engine when an action changes state. Every write here also
writes its event through `events.outbox.write_event`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import RowMapping, Select, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.actions.models import ServerAction
from order_service.db import utcnow
from order_service.engine import wakeup
from order_service.events.outbox import write_event
from order_service.orders.states import ActionStatus, ActionType

actions_t = ServerAction.__table__
SYSTEM = "system"
SUPERSEDED = "SUPERSEDED"
UNFINISHED = (ActionStatus.PENDING.value, ActionStatus.IN_PROGRESS.value)

_INSERT_ACTION = insert(actions_t).returning(*actions_t.c)


def action_json(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    """The SPEC's action JSON (section 10)."""
    return {
        "id": row["id"],
        "orderId": row["order_id"],
        "type": row["type"],
        "status": row["status"],
        "requestedBy": row["requested_by"],
        "reason": row["reason"],
        "imageId": row["image_id"],
        "errorCode": row["error_code"],
        "errorMessage": row["error_message"],
        "createdAt": row["created_at"],
        "startedAt": row["started_at"],
        "completedAt": row["completed_at"],
    }


def _open_actions_of(order_id: uuid.UUID) -> Select[Any]:
    """The order's actions that have not ended (no `completed_at`), oldest first.

    Filtered on `completed_at`, never on `status`, on purpose: a query naming
    the order and a status lets PostgreSQL choose the (status, next_attempt_at)
    index, which statistics taken while PENDING was rare make look free, and
    which reads every PENDING action of every order. During a backlog of
    suspensions that made each new action read all the earlier ones
    (bench/lifecycle_scan.py counted 19,900 rows read for 100 suspensions).
    With this filter only the order's own index applies; callers pick the
    status from the few rows it returns.
    """
    return (
        select(actions_t)
        .where(actions_t.c.order_id == order_id, actions_t.c.completed_at.is_(None))
        .order_by(actions_t.c.created_at)
    )


async def unfinished_action(session: AsyncSession, order_id: uuid.UUID) -> RowMapping | None:
    """The order's oldest PENDING or IN_PROGRESS action, if any."""
    rows = (await session.execute(_open_actions_of(order_id))).mappings()
    return next((row for row in rows if row["status"] in UNFINISHED), None)


async def enqueue_action(
    session: AsyncSession,
    order_id: uuid.UUID,
    action_type: ActionType,
    *,
    requested_by: str,
    reason: str | None = None,
    image: dict[str, str] | None = None,
    not_before: Any = None,
) -> RowMapping:
    """Insert a PENDING action and its `action.requested` event, in the caller's transaction.

    The caller holds the order's row lock (it went through `transition()` or
    `lock_order`), so the checks of SPEC section 10 made before this call
    still hold. A system action supersedes PENDING user actions (they end
    CANCELED, SUPERSEDED) and waits behind an IN_PROGRESS one: the engine
    works one action per order at a time, oldest first. `image` is
    {id, name, slug} for REBUILD; `not_before` delays the action (the
    suspension's POWER_OFF after its grace).
    """
    now = utcnow()
    if requested_by == SYSTEM:
        await supersede_pending_actions(
            session, order_id, also_system=_MOOT_AFTER.get(action_type, ())
        )
    row = (
        (
            await session.execute(
                _INSERT_ACTION,
                {
                    "id": uuid.uuid4(),
                    "order_id": order_id,
                    "type": action_type.value,
                    "status": ActionStatus.PENDING.value,
                    "requested_by": requested_by,
                    "reason": reason,
                    "image_id": image["id"] if image else None,
                    "image_name": image["name"] if image else None,
                    "image_slug": image["slug"] if image else None,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                    "next_attempt_at": not_before or now,
                },
            )
        )
        .mappings()
        .one()
    )
    await write_event(session, "action.requested", order_id, action=action_json(row))
    wakeup.wake_after_commit(session, wakeup.ACTIONS)
    return row


# A system action makes these PENDING system actions of the order moot: a
# renewal's POWER_ON after a suspension must not wait for the suspension's
# delayed POWER_OFF (SHUTDOWN_GRACE), nor a termination's DESTROY (which makes
# a RESIZE not started yet moot as well: its plan change ended with the order).
_POWER = (ActionType.SHUTDOWN, ActionType.POWER_OFF, ActionType.POWER_ON)
_MOOT_AFTER: dict[ActionType, tuple[ActionType, ...]] = {
    ActionType.POWER_ON: _POWER,
    ActionType.DESTROY: (*_POWER, ActionType.RESIZE),
}


async def supersede_pending_actions(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    also_system: tuple[ActionType, ...] = (),
    users: bool = True,
    message: str = "Superseded by a lifecycle action of the service",
) -> None:
    """End the order's PENDING user actions: the lifecycle comes first (SPEC section 10).

    They never reached DO, so they end CANCELED (SPEC section 3), not FAILED,
    with `errorCode` SUPERSEDED and `message` saying why, and an
    `action.canceled` event each. `also_system`: PENDING system actions of
    these types end the same way (`users=False`: only those). An IN_PROGRESS
    action is never touched: the new one waits for it.
    """
    moot = {t.value for t in also_system}
    # Locked so the engine cannot start one of them between this read and the update.
    open_actions = (await session.execute(_open_actions_of(order_id).with_for_update())).mappings()
    ids = [
        row["id"]
        for row in open_actions
        if row["status"] == ActionStatus.PENDING.value
        and ((users and row["requested_by"] != SYSTEM) or row["type"] in moot)
    ]
    if not ids:
        return
    now = utcnow()
    statement = (
        update(actions_t)
        .where(actions_t.c.id.in_(ids))
        .values(
            status=ActionStatus.CANCELED.value,
            error_code=SUPERSEDED,
            error_message=message,
            completed_at=now,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(*actions_t.c)
    )
    for row in (await session.execute(statement)).mappings().all():
        await write_event(session, "action.canceled", order_id, action=action_json(row))


async def end_moot_power_off(session: AsyncSession, order_id: uuid.UUID) -> None:
    """A suspension's graceful SHUTDOWN turned the droplet off: its hard POWER_OFF is moot.

    SPEC section 9 sends the POWER_OFF "only if the droplet is not off within
    2 minutes". Left pending, it would still cost a DO request to find the
    droplet off; in a backlog of suspensions that was one request in six.
    """
    await supersede_pending_actions(
        session,
        order_id,
        also_system=(ActionType.POWER_OFF,),
        users=False,
        message="The graceful SHUTDOWN turned the droplet off: no hard POWER_OFF is needed",
    )
