"""Every change writes exactly one event of the right type (SPEC section 11), table-driven
over the state machine: a new transition or history event without its event fails here."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.actions.writer import enqueue_action
from order_service.events.models import Event
from order_service.events.outbox import EVENT_TYPES
from order_service.orders.models import Order
from order_service.orders.states import TRANSITIONS, ActionType, OrderEvent, OrderStatus
from order_service.orders.transitions import record_event, transition
from tests.helpers import create_order

events_t = Event.__table__
orders_t = Order.__table__

ALL_TRANSITIONS = [
    (source, target) for source, targets in TRANSITIONS.items() for target in targets
]


def expected_type(source: OrderStatus, target: OrderStatus) -> str:
    """SPEC section 11, written out independently of the code under test."""
    if source == OrderStatus.SUSPENDED and target == OrderStatus.ACTIVE:
        return "order.unsuspended"
    return "order." + target.value.lower()


async def seeded(client: httpx.AsyncClient, app: Any, status: OrderStatus) -> uuid.UUID:
    """An order put straight into `status` (no event: only the creation's)."""
    order_id = uuid.UUID((await create_order(client, f"table-{uuid.uuid4().hex[:8]}"))["id"])
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
        await transition(session, order_id, target, actor="test", reason="table")
    new = (await events_of(app.state.sessionmaker, order_id))[len(before) :]
    assert [e.type for e in new] == [expected_type(source, target)]
    assert new[0].type in EVENT_TYPES
    assert new[0].data["order"]["status"] == target.value  # the state as of the change
    assert new[0].data["history"]["previousStatus"] == source.value
    assert new[0].data["history"]["newStatus"] == target.value


@pytest.mark.parametrize("event", list(OrderEvent), ids=str)
async def test_each_history_event_writes_one_event(
    client: httpx.AsyncClient, app: Any, event: OrderEvent
) -> None:
    order_id = await seeded(client, app, OrderStatus.ACTIVE)
    before = await events_of(app.state.sessionmaker, order_id)
    async with app.state.sessionmaker() as session, session.begin():
        await record_event(session, order_id, event, expected=OrderStatus.ACTIVE, actor="test")
    new = (await events_of(app.state.sessionmaker, order_id))[len(before) :]
    assert [e.type for e in new] == ["order." + event.value.lower()]
    assert new[0].type in EVENT_TYPES


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


def test_the_tables_cover_every_order_type() -> None:
    """Every order.* type of SPEC section 11 is produced by a row of the tables above."""
    produced = {"order.created"} | {expected_type(s, t) for s, t in ALL_TRANSITIONS}
    produced |= {"order." + e.value.lower() for e in OrderEvent}
    assert produced == {t for t in EVENT_TYPES if t.startswith("order.")}
