"""The lifecycle under real concurrency on PostgreSQL: replicas, racing payments (SPEC 4, 9)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from order_service import clock
from order_service.db import create_engine, create_sessionmaker
from order_service.lifecycle.scanner import LifecycleScanner
from order_service.renewals.models import Renewal
from tests.lifecycle_helpers import (
    actions_of,
    actions_t,
    active_order,
    detail,
    history,
    history_t,
    new_renewal,
    parse,
    pay_renewal,
    scan,
)

pytestmark = pytest.mark.postgres_only


async def test_two_instances_scanning_one_database_suspend_each_order_once(
    client: httpx.AsyncClient, app: Any, database: Any
) -> None:
    orders = await asyncio.gather(*(active_order(client, app, f"user-{i}") for i in range(50)))
    clock.advance(timedelta(days=40))
    engines = [create_engine(database.url, pool_size=5) for _ in range(2)]
    try:
        scanners = [
            LifecycleScanner(create_sessionmaker(engine), app.state.settings, batch=10)
            for engine in engines
        ]
        results = await asyncio.gather(*(scanner.scan() for scanner in scanners))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(result.suspended for result in results) == 50
    assert all(result.failed == 0 for result in results)
    ids = [uuid.UUID(order["id"]) for order in orders]
    async with app.state.sessionmaker() as session:
        suspensions = Counter(
            (
                await session.execute(
                    select(history_t.c.order_id).where(
                        history_t.c.order_id.in_(ids), history_t.c.new_status == "SUSPENDED"
                    )
                )
            ).scalars()
        )
        shutdowns = Counter(
            (
                await session.execute(
                    select(actions_t.c.order_id).where(
                        actions_t.c.order_id.in_(ids), actions_t.c.type == "SHUTDOWN"
                    )
                )
            ).scalars()
        )
    assert suspensions == dict.fromkeys(ids, 1)
    assert shutdowns == dict.fromkeys(ids, 1)


async def test_renewal_paid_racing_the_suspension_ends_consistent(
    client: httpx.AsyncClient, app: Any
) -> None:
    orders = await asyncio.gather(*(active_order(client, app, "life-user") for _ in range(10)))
    renewals = [(await new_renewal(client, o["id"])).json()["data"]["id"] for o in orders]
    clock.advance(timedelta(days=33))  # every order is past expiresAt + SUSPEND_GRACE
    answers = await asyncio.gather(
        scan(app, batch=3), *(pay_renewal(client, renewal) for renewal in renewals)
    )
    assert all(answer.status_code == 200 for answer in answers[1:])
    for order in orders:
        after = await detail(client, order["id"])
        assert after["status"] == "ACTIVE", after["statusHistory"]
        assert parse(after["expiresAt"]) > clock.now()
        assert after["suspendedAt"] is None
        assert len(history(after, "RENEWED")) == 1
        types = [a["type"] for a in await actions_of(app, order["id"])]
        if history(after, "SUSPENDED"):
            # Suspended first, then paid: powered off, then on again.
            assert types == ["SHUTDOWN", "POWER_OFF", "POWER_ON"]
        else:
            assert types == []
    # Nothing is left for the next scan.
    assert (await scan(app)).suspended == 0


async def test_concurrent_payments_of_one_renewal_pay_it_once(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    renewal = (await new_renewal(client, order["id"], periods=3)).json()["data"]
    answers = await asyncio.gather(*(pay_renewal(client, renewal["id"]) for _ in range(20)))
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {200: 1, 409: 19}
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["error"]["code"] == "PAYMENT_STATUS_CONFLICT"
    after = await detail(client, order["id"])
    assert len(history(after, "RENEWED")) == 1
    [paid] = [answer.json()["data"] for answer in answers if answer.status_code == 200]
    assert after["expiresAt"] == paid["newExpiresAt"]


async def test_concurrent_renewal_creates_leave_one_open(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    answers = await asyncio.gather(*(new_renewal(client, order["id"]) for _ in range(10)))
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {201: 1, 409: 9}
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
        "RENEWAL_PENDING"
    }
    async with app.state.sessionmaker() as session:
        count = (
            await session.execute(
                select(func.count())
                .select_from(Renewal.__table__)
                .where(Renewal.__table__.c.order_id == uuid.UUID(order["id"]))
            )
        ).scalar_one()
    assert count == 1
