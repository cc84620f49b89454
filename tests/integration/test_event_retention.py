"""EVENT_RETENTION: old events and finished deliveries are purged; pending work is kept."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service import clock
from order_service.events.models import Event, WebhookDelivery
from order_service.events.relay import stamp_pending
from order_service.events.retention import purge_old_events
from tests.helpers import create_order
from tests.webhooks import register

events_t = Event.__table__
deliveries_t = WebhookDelivery.__table__


@pytest.fixture
def moving_clock() -> Iterator[None]:
    yield
    clock.reset()


async def test_old_events_and_finished_deliveries_go_pending_ones_stay(
    client: httpx.AsyncClient, app: Any, engine: AsyncEngine, moving_clock: None
) -> None:
    sessionmaker = app.state.sessionmaker
    endpoint = await register(client, "http://receiver.test/hook", ["order.created"])
    delivered = await create_order(client, "retention-user")
    pending = await create_order(client, "retention-user")
    await stamp_pending(sessionmaker)
    async with engine.begin() as connection:
        await connection.execute(
            update(deliveries_t)
            .where(
                deliveries_t.c.event_id.in_(
                    select(events_t.c.id).where(events_t.c.order_id == uuid.UUID(delivered["id"]))
                )
            )
            .values(status="DELIVERED")
        )
    unstamped = await create_order(client, "retention-user")  # not stamped yet

    clock.advance(timedelta(days=30, seconds=1))
    fresh = await create_order(client, "retention-user")
    assert await purge_old_events(sessionmaker, timedelta(days=30)) == 2  # 1 delivery, 1 event

    async with engine.connect() as connection:
        kept = {str(row.order_id) for row in await connection.execute(select(events_t.c.order_id))}
        statuses = (await connection.execute(select(deliveries_t.c.status))).scalars().all()
    assert kept == {pending["id"], unstamped["id"], fresh["id"]}
    assert statuses == ["PENDING"]
    assert endpoint["id"]


async def test_nothing_younger_than_the_retention_is_purged(
    client: httpx.AsyncClient, app: Any
) -> None:
    await create_order(client, "retention-user")
    await stamp_pending(app.state.sessionmaker)
    assert await purge_old_events(app.state.sessionmaker, timedelta(days=30)) == 0
