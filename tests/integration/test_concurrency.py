"""Races on PostgreSQL: of many requests competing for one transition, exactly one wins.

All requests go through one ASGI app whose pool has room for all of them, so
they really run side by side, each in its own transaction and connection.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.config import Settings
from order_service.orders.models import IdempotencyKey, Order, StatusHistory
from order_service.provisioning.models import ProvisioningTask
from tests.conftest import INTERNAL, auth, make_settings
from tests.helpers import create_order, order_body

pytestmark = pytest.mark.postgres_only

INTERNAL_ORDERS = "/api/v1/internal/orders"


@pytest.fixture
async def client(
    settings: Settings, catalog_app: Any, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    from order_service.app import create_app

    application = create_app(
        # Every payment really runs at once: no PAYMENT_CONCURRENCY queue, and
        # 25 write connections (the other half of the pool serves GETs).
        make_settings(settings.database_url, database_pool_size=50, payment_concurrency=25),
        catalog_transport=httpx.ASGITransport(app=catalog_app),
        start_provisioner=False,
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://order-service") as c:
            yield c


async def scalar(engine: AsyncEngine, statement: Any) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(statement)).scalar_one()


async def history(engine: AsyncEngine, order_id: str) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(StatusHistory.new_status)
            .where(StatusHistory.order_id == uuid.UUID(order_id))
            .order_by(StatusHistory.created_at, StatusHistory.id)
        )
        return list(rows.scalars())


async def set_catalog_faults(catalog_app: Any, faults: dict[str, Any]) -> None:
    transport = httpx.ASGITransport(app=catalog_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as catalog:
        (await catalog.post("/_mock/faults", json=faults)).raise_for_status()


def codes(responses: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    return Counter(
        (r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else None)
        for r in responses
    )


def paid(client: httpx.AsyncClient, order_id: str, status: str = "PAID") -> Any:
    return client.post(
        f"{INTERNAL_ORDERS}/{order_id}/payment-status", json={"status": status}, headers=INTERNAL
    )


async def test_twenty_concurrent_paid_exactly_one_wins(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(client, "racer")

    responses = await asyncio.gather(*(paid(client, order["id"]) for _ in range(20)))

    assert codes(responses) == {(200, None): 1, (409, "PAYMENT_STATUS_CONFLICT"): 19}
    winner = next(r for r in responses if r.status_code == 200)
    assert winner.json()["data"]["status"] == "PROVISIONING"
    for loser in responses:
        if loser.status_code == 409:
            assert loser.json()["error"]["details"]["currentStatus"] == "PROVISIONING"
    assert await scalar(engine, select(func.count()).select_from(ProvisioningTask)) == 1
    assert Counter(await history(engine, order["id"])) == {
        "PENDING_PAYMENT": 1,
        "PAID": 1,
        "PROVISIONING": 1,
    }


async def test_races_on_many_orders_at_once(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    orders = [await create_order(client, f"user-{i}") for i in range(5)]
    calls = [paid(client, o["id"]) for o in orders for _ in range(5)]

    responses = await asyncio.gather(*calls)

    assert codes(responses) == {(200, None): 5, (409, "PAYMENT_STATUS_CONFLICT"): 20}
    assert await scalar(engine, select(func.count()).select_from(ProvisioningTask)) == 5
    for order in orders:
        assert await history(engine, order["id"]) == ["PENDING_PAYMENT", "PAID", "PROVISIONING"]


@pytest.mark.parametrize("catalog_delay_ms", [0, 200], ids=["fast-catalog", "slow-catalog"])
async def test_concurrent_creates_with_one_idempotency_key(
    client: httpx.AsyncClient,
    catalog_app: Any,
    engine: AsyncEngine,
    catalog_delay_ms: int,
) -> None:
    # A slow catalog keeps the first request in flight while the others arrive.
    await set_catalog_faults(catalog_app, {"delay_ms": catalog_delay_ms})
    headers = {**auth("idem-user"), "Idempotency-Key": "one-key"}

    responses = await asyncio.gather(
        *(client.post("/api/v1/orders", json=order_body(), headers=headers) for _ in range(10))
    )

    counts = codes(responses)
    assert set(counts) <= {(201, None), (409, "IDEMPOTENCY_KEY_IN_USE")}, counts
    created = [r for r in responses if r.status_code == 201]
    assert created
    assert len({r.content for r in created}) == 1  # byte-identical bodies, one order id
    assert await scalar(engine, select(func.count()).select_from(Order)) == 1
    assert await scalar(engine, select(Order.id)) == uuid.UUID(created[0].json()["data"]["id"])
    if catalog_delay_ms:
        assert counts[(409, "IDEMPOTENCY_KEY_IN_USE")] == 9

    # Once the first has finished, a retry replays it.
    await set_catalog_faults(catalog_app, {})
    replay = await client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert replay.status_code == 201
    assert replay.content == created[0].content
    assert await scalar(engine, select(func.count()).select_from(IdempotencyKey)) == 1


async def test_concurrent_creates_with_distinct_keys_all_succeed(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/v1/orders",
                json=order_body(),
                headers={**auth("many"), "Idempotency-Key": f"key-{i}"},
            )
            for i in range(10)
        )
    )
    assert codes(responses) == {(201, None): 10}
    assert await scalar(engine, select(func.count()).select_from(Order)) == 10


async def test_cancels_race_payment_one_winner_overall(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for round_ in range(3):
        order = await create_order(client, "kate")
        oid = order["id"]
        cancels = [
            client.post(f"/api/v1/orders/{oid}/cancel", headers=auth("kate"))
            if i % 2
            else client.post(f"{INTERNAL_ORDERS}/{oid}/cancel", headers=INTERNAL)
            for i in range(20)
        ]
        # The payment is put in the middle, so it does not always start first.
        calls = [*cancels[:10], paid(client, oid), *cancels[10:]]

        responses = await asyncio.gather(*calls)

        counts = codes(responses)
        assert counts[(200, None)] == 1, (round_, counts)
        assert set(counts) <= {
            (200, None),
            (409, "ORDER_STATUS_CONFLICT"),
            (409, "PAYMENT_STATUS_CONFLICT"),
        }, counts
        payment = responses[10]
        tasks = await scalar(
            engine,
            select(func.count())
            .select_from(ProvisioningTask)
            .where(ProvisioningTask.order_id == uuid.UUID(oid)),
        )
        if payment.status_code == 200:
            assert await history(engine, oid) == ["PENDING_PAYMENT", "PAID", "PROVISIONING"]
            assert tasks == 1
        else:
            assert payment.json()["error"]["details"]["currentStatus"] == "CANCELED"
            assert await history(engine, oid) == ["PENDING_PAYMENT", "CANCELED"]
            assert tasks == 0


async def test_payment_failed_racing_paid(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    order = await create_order(client, "lena")
    calls = [paid(client, order["id"], "PAYMENT_FAILED" if i % 2 else "PAID") for i in range(20)]

    responses = await asyncio.gather(*calls)

    paid_ok = [r for i, r in enumerate(responses) if i % 2 == 0 and r.status_code == 200]
    failed_ok = [r for i, r in enumerate(responses) if i % 2 == 1 and r.status_code == 200]
    assert len(paid_ok) == 1
    assert {r.status_code for r in responses} <= {200, 409}
    rows = await history(engine, order["id"])
    # Every accepted PAYMENT_FAILED left one row, all before the payment; none after it.
    assert rows == [
        "PENDING_PAYMENT",
        *["PAYMENT_FAILED"] * len(failed_ok),
        "PAID",
        "PROVISIONING",
    ]


async def test_concurrent_retries_of_a_failed_order(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(client, "mike")
    assert (await paid(client, order["id"])).status_code == 200
    oid = uuid.UUID(order["id"])
    async with engine.begin() as connection:
        await connection.execute(
            update(Order.__table__).where(Order.__table__.c.id == oid).values(status="FAILED")
        )
        await connection.execute(
            update(ProvisioningTask.__table__)
            .where(ProvisioningTask.__table__.c.order_id == oid)
            .values(status="FAILED", error_code="PROVISIONING_FAILED", error_message="boom")
        )

    responses = await asyncio.gather(
        *(
            client.post(f"{INTERNAL_ORDERS}/{order['id']}/retry-provisioning", headers=INTERNAL)
            for _ in range(10)
        )
    )

    assert codes(responses) == {(200, None): 1, (409, "ORDER_STATUS_CONFLICT"): 9}
    assert (await history(engine, order["id"]))[-2:] == ["PROVISIONING", "PROVISIONING"]
    assert (await history(engine, order["id"])).count("PROVISIONING") == 2
    assert await scalar(engine, select(func.count()).select_from(ProvisioningTask)) == 1
