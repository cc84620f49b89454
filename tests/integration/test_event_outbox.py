"""Every change writes exactly one event of the right type (SPEC section 11), table-driven
over the state machine: a new transition or history event without its event fails here."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.actions.writer import enqueue_action
from order_service.events.models import Event
from order_service.events.outbox import EVENT_TYPES
from order_service.jsonresponse import dumps
from order_service.orders.models import Order
from order_service.orders.service import get_order
from order_service.orders.states import TRANSITIONS, ActionType, OrderEvent, OrderStatus
from order_service.orders.transitions import record_event, transition
from order_service.provisioning.models import ProvisioningTask
from tests.conftest import INTERNAL
from tests.helpers import create_order, pay

events_t = Event.__table__
orders_t = Order.__table__
# A time given in another zone: an event shows it in UTC, as a read does.
ANOTHER_ZONE = {
    "expires_at": datetime(2027, 3, 1, 7, 30, 0, 123456, tzinfo=timezone(timedelta(hours=7)))
}

ALL_TRANSITIONS = [
    (source, target) for source, targets in TRANSITIONS.items() for target in targets
]


def expected_type(source: OrderStatus, target: OrderStatus) -> str:
    """SPEC section 11, written out independently of the code under test."""
    if source == OrderStatus.SUSPENDED and target == OrderStatus.ACTIVE:
        return "order.unsuspended"
    return "order." + target.value.lower()


async def seeded(client: httpx.AsyncClient, app: Any, status: OrderStatus) -> uuid.UUID:
    """A paid order (so it has a provisioning task) put straight into `status`."""
    order_id = uuid.UUID((await create_order(client, f"table-{uuid.uuid4().hex[:8]}"))["id"])
    assert (await pay(client, str(order_id))).status_code == 200
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(orders_t).where(orders_t.c.id == order_id).values(status=status.value)
        )
    return order_id


async def events_of(sessionmaker: async_sessionmaker[AsyncSession], order_id: uuid.UUID) -> list:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(events_t.c.type, events_t.c.data)
            .where(events_t.c.order_id == order_id)
            .order_by(events_t.c.created_at)
        )
        return list(rows)


# ------------------------------------------------- the order an event shows
# The door builds an event's order from the row it locked and the columns it
# set, without reading it back: each event must still equal a read of the order
# right after the change (times in UTC, the task included).


async def order_as_read(app: Any, order_id: uuid.UUID) -> dict[str, Any]:
    async with app.state.sessionmaker() as session:
        order = (await get_order(session, order_id, owner=None, history=False))["data"]
    return orjson_roundtrip(order)


def orjson_roundtrip(value: Any) -> Any:
    """As events are stored: plain JSON."""
    return orjson.loads(dumps(value))


async def test_creating_an_order_writes_order_created(client: httpx.AsyncClient, app: Any) -> None:
    order = await create_order(client, "created-user")
    (event,) = await events_of(app.state.sessionmaker, uuid.UUID(order["id"]))
    assert event.type == "order.created"
    assert event.data["order"]["status"] == "PENDING_PAYMENT"
    assert event.data["history"]["previousStatus"] == ""


@pytest.mark.parametrize(("source", "target"), ALL_TRANSITIONS, ids=lambda s: str(s))
async def test_each_transition_writes_one_event(
    client: httpx.AsyncClient, app: Any, source: OrderStatus, target: OrderStatus
) -> None:
    order_id = await seeded(client, app, source)
    before = await events_of(app.state.sessionmaker, order_id)
    async with app.state.sessionmaker() as session, session.begin():
        await transition(
            session, order_id, target, actor="test", reason="table", values=ANOTHER_ZONE
        )
    new = (await events_of(app.state.sessionmaker, order_id))[len(before) :]
    assert [e.type for e in new] == [expected_type(source, target)]
    assert new[0].type in EVENT_TYPES
    assert new[0].data["order"]["status"] == target.value  # the state as of the change
    assert new[0].data["history"]["previousStatus"] == source.value
    assert new[0].data["history"]["newStatus"] == target.value
    # Built by the door without a read-back: equal to a read right after the change.
    read = await order_as_read(app, order_id)
    assert read["expiresAt"] == "2027-03-01T00:30:00.123456Z"
    assert read["provisioningTask"] is not None
    assert new[0].data["order"] == read


@pytest.mark.parametrize("event", list(OrderEvent), ids=str)
async def test_each_history_event_writes_one_event(
    client: httpx.AsyncClient, app: Any, event: OrderEvent
) -> None:
    order_id = await seeded(client, app, OrderStatus.ACTIVE)
    before = await events_of(app.state.sessionmaker, order_id)
    async with app.state.sessionmaker() as session, session.begin():
        await record_event(
            session, order_id, event, expected=OrderStatus.ACTIVE, actor="test", values=ANOTHER_ZONE
        )
    new = (await events_of(app.state.sessionmaker, order_id))[len(before) :]
    assert [e.type for e in new] == ["order." + event.value.lower()]
    assert new[0].type in EVENT_TYPES
    assert new[0].data["order"] == await order_as_read(app, order_id)


async def test_an_action_request_writes_action_requested(
    client: httpx.AsyncClient, app: Any
) -> None:
    order_id = await seeded(client, app, OrderStatus.ACTIVE)
    before = await events_of(app.state.sessionmaker, order_id)
    async with app.state.sessionmaker() as session, session.begin():
        await enqueue_action(session, order_id, ActionType.REBOOT, requested_by="user:x")
    new = (await events_of(app.state.sessionmaker, order_id))[len(before) :]
    assert [e.type for e in new] == ["action.requested"]
    assert new[0].data["action"]["type"] == "REBOOT"


async def test_a_rolled_back_change_leaves_no_event(client: httpx.AsyncClient, app: Any) -> None:
    order_id = await seeded(client, app, OrderStatus.ACTIVE)
    before = await events_of(app.state.sessionmaker, order_id)
    with pytest.raises(RuntimeError):
        async with app.state.sessionmaker() as session, session.begin():
            await transition(session, order_id, OrderStatus.SUSPENDED, actor="test")
            raise RuntimeError("the change fails after its event was written")
    assert await events_of(app.state.sessionmaker, order_id) == before


# ------------------------------------------------- payments and retries


async def test_a_payment_shows_each_step_and_answers_the_order_as_read(
    client: httpx.AsyncClient, app: Any
) -> None:
    """One transaction, two moves (PAID, then PROVISIONING with the new task), one lock."""
    order_id = uuid.UUID((await create_order(client, "pay-events"))["id"])
    response = await pay(client, str(order_id))
    assert response.status_code == 200
    paid, provisioning = (await events_of(app.state.sessionmaker, order_id))[1:]
    read = await order_as_read(app, order_id)
    assert provisioning.type == "order.provisioning"
    assert provisioning.data["order"] == read
    assert read["provisioningTask"]["status"] == "PENDING"
    # order.paid: the order before its task existed.
    assert paid.type == "order.paid"
    assert paid.data["order"]["status"] == "PAID"
    assert paid.data["order"]["provisioningTask"] is None
    assert paid.data["order"]["paidAt"] == read["paidAt"]
    # The answer is the order as read, with its history.
    answered = response.json()["data"]
    assert [h["newStatus"] for h in answered.pop("statusHistory")] == [
        "PENDING_PAYMENT",
        "PAID",
        "PROVISIONING",
    ]
    assert answered == {k: v for k, v in read.items() if k != "statusHistory"}


async def test_a_retry_event_shows_the_task_queued_again(
    client: httpx.AsyncClient, app: Any
) -> None:
    order_id = await seeded(client, app, OrderStatus.FAILED)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(ProvisioningTask.__table__)
            .where(ProvisioningTask.__table__.c.order_id == order_id)
            .values(status="FAILED", error_code="PROVISIONING_TIMEOUT", error_message="slow")
        )
    response = await client.post(
        f"/api/v1/internal/orders/{order_id}/retry-provisioning", json={}, headers=INTERNAL
    )
    assert response.status_code == 200, response.text
    event = (await events_of(app.state.sessionmaker, order_id))[-1]
    assert event.type == "order.provisioning"
    task = event.data["order"]["provisioningTask"]
    assert (task["status"], task["errorCode"]) == ("PENDING", None)
    assert event.data["order"] == await order_as_read(app, order_id)


def test_the_tables_cover_every_order_type() -> None:
    """Every order.* type of SPEC section 11 is produced by a row of the tables above."""
    produced = {"order.created"} | {expected_type(s, t) for s, t in ALL_TRANSITIONS}
    produced |= {"order." + e.value.lower() for e in OrderEvent}
    assert produced == {t for t in EVENT_TYPES if t.startswith("order.")}
