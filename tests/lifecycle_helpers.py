"""Helpers of the lifecycle and renewal tests: ACTIVE orders, scans, action rows, events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select, update

from order_service.actions.models import ServerAction
from order_service.db import utcnow
from order_service.events.models import Event
from order_service.lifecycle.period import first_period
from order_service.lifecycle.scanner import LifecycleScanner, ScanResult
from order_service.orders.models import StatusHistory
from order_service.orders.states import OrderStatus, TaskStatus
from order_service.orders.transitions import SYSTEM, transition
from order_service.provisioning.models import ProvisioningTask
from tests.conftest import INTERNAL, auth
from tests.helpers import create_order, pay

actions_t = ServerAction.__table__
events_t = Event.__table__
history_t = StatusHistory.__table__
tasks_t = ProvisioningTask.__table__


async def activate(app: Any, order_id: str) -> None:
    """PROVISIONING → ACTIVE as the provisioner's finish does it (no DigitalOcean)."""
    settings = app.state.settings
    async with app.state.sessionmaker() as session, session.begin():
        now = utcnow()
        await session.execute(
            update(tasks_t)
            .where(tasks_t.c.order_id == uuid.UUID(order_id))
            .values(
                status=TaskStatus.SUCCESS.value,
                droplet_id=abs(hash(order_id)) % 10**9,
                droplet_status="active",
                completed_at=now,
                updated_at=now,
            )
        )
        await transition(
            session,
            uuid.UUID(order_id),
            OrderStatus.ACTIVE,
            actor=SYSTEM,
            reason="test: droplet active",
            values=lambda row: first_period(row, now, settings.expiry_reminders),
        )


async def fail(app: Any, order_id: str) -> None:
    """PROVISIONING → FAILED (the droplet never came up)."""
    async with app.state.sessionmaker() as session, session.begin():
        await transition(
            session, uuid.UUID(order_id), OrderStatus.FAILED, actor=SYSTEM, reason="test: failed"
        )


async def active_order(
    client: httpx.AsyncClient, app: Any, user: str = "life-user", **overrides: Any
) -> dict[str, Any]:
    order = await create_order(client, user, **overrides)
    assert (await pay(client, order["id"])).status_code == 200
    await activate(app, order["id"])
    return await detail(client, order["id"])


async def detail(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def scan(app: Any, settings: Any = None, **kwargs: Any) -> ScanResult:
    """One lifecycle scan, as the background duty runs it (a new scanner: nothing remembered)."""
    kwargs.setdefault("catalog", app.state.catalog)
    scanner = LifecycleScanner(app.state.sessionmaker, settings or app.state.settings, **kwargs)
    return await scanner.scan()


async def actions_of(app: Any, order_id: str) -> list[dict[str, Any]]:
    """The order's action rows, oldest first."""
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(actions_t)
            .where(actions_t.c.order_id == uuid.UUID(order_id))
            .order_by(actions_t.c.created_at, actions_t.c.id)
        )
        return [dict(row) for row in rows.mappings()]


async def event_types(app: Any, order_id: str) -> list[str]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(events_t.c.type)
            .where(events_t.c.order_id == uuid.UUID(order_id))
            .order_by(events_t.c.created_at)
        )
        return list(rows.scalars())


async def events_of(app: Any, order_id: str, event_type: str) -> list[dict[str, Any]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(events_t.c.data)
            .where(events_t.c.order_id == uuid.UUID(order_id), events_t.c.type == event_type)
            .order_by(events_t.c.created_at)
        )
        return list(rows.scalars())


def history(order: dict[str, Any], new_status: str) -> list[dict[str, Any]]:
    return [entry for entry in order["statusHistory"] if entry["newStatus"] == new_status]


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def ops(client: httpx.AsyncClient, order_id: str, verb: str, **body: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/internal/orders/{order_id}/{verb}", json=body or None, headers=INTERNAL
    )


async def new_renewal(
    client: httpx.AsyncClient, order_id: str, user: str = "life-user", **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v1/orders/{order_id}/renewals", json=body or None, headers=auth(user)
    )


async def pay_renewal(
    client: httpx.AsyncClient, renewal_id: str, status: str = "PAID"
) -> httpx.Response:
    return await client.post(
        f"/api/v1/internal/renewals/{renewal_id}/payment-status",
        json={"status": status},
        headers=INTERNAL,
    )
