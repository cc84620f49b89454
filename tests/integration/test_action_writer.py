"""actions.writer.enqueue_action: which pending actions a new system action supersedes.

A superseded action never reached DO: it ends CANCELED (SPEC section 3), errorCode
SUPERSEDED, with an `action.canceled` event.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.actions.models import ServerAction
from order_service.actions.writer import SYSTEM, enqueue_action
from order_service.db import create_sessionmaker, utcnow
from order_service.events.models import Event
from order_service.orders.states import ActionType
from tests.helpers import create_order

A = ActionType


async def statuses(engine: AsyncEngine, order_id: uuid.UUID) -> list[tuple[str, str, str | None]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(ServerAction.type, ServerAction.status, ServerAction.error_code)
            .where(ServerAction.order_id == order_id)
            .order_by(ServerAction.created_at)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def enqueue(
    engine: AsyncEngine, order_id: uuid.UUID, kind: ActionType, by: str, **kw: object
) -> None:
    async with create_sessionmaker(engine)() as session, session.begin():
        await enqueue_action(session, order_id, kind, requested_by=by, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("then", [A.POWER_ON, A.DESTROY])
async def test_power_on_or_destroy_supersedes_a_suspensions_pending_power_actions(
    client: httpx.AsyncClient, engine: AsyncEngine, then: ActionType
) -> None:
    order_id = uuid.UUID((await create_order(client, "writer-user"))["id"])
    await enqueue(engine, order_id, A.REBOOT, "user:writer-user")
    await enqueue(engine, order_id, A.SHUTDOWN, SYSTEM)
    later = utcnow() + timedelta(minutes=2)
    await enqueue(engine, order_id, A.POWER_OFF, SYSTEM, not_before=later)
    assert [s for _, s, _ in await statuses(engine, order_id)] == [
        "CANCELED",  # the user's REBOOT, superseded by the suspension
        "PENDING",
        "PENDING",
    ]

    await enqueue(engine, order_id, then, SYSTEM)

    assert await statuses(engine, order_id) == [
        ("REBOOT", "CANCELED", "SUPERSEDED"),
        ("SHUTDOWN", "CANCELED", "SUPERSEDED"),
        ("POWER_OFF", "CANCELED", "SUPERSEDED"),
        (then.value, "PENDING", None),
    ]
    async with engine.connect() as connection:
        canceled = await connection.execute(
            select(Event.data).where(Event.order_id == order_id, Event.type == "action.canceled")
        )
        ended = [(d["action"]["type"], d["action"]["status"]) for (d,) in canceled]
    assert sorted(ended) == sorted(
        [("REBOOT", "CANCELED"), ("SHUTDOWN", "CANCELED"), ("POWER_OFF", "CANCELED")]
    )


async def test_a_suspension_does_not_supersede_the_systems_own_pending_actions(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order_id = uuid.UUID((await create_order(client, "writer-user"))["id"])
    await enqueue(engine, order_id, A.DESTROY, SYSTEM)
    await enqueue(engine, order_id, A.SHUTDOWN, SYSTEM)
    assert [s for _, s, _ in await statuses(engine, order_id)] == ["PENDING", "PENDING"]
