"""Ids in bodies are UUIDs (SPEC section 5) and MAX_UNPAID_ORDERS_PER_USER (SPEC section 2)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from mocks.catalog_service import data as catalog_data
from mocks.catalog_service.data import IMAGE_UBUNTU_ID, PLAN_BASIC_ID
from order_service.orders.models import Order
from tests.conftest import auth, make_settings
from tests.database import TestDatabase
from tests.helpers import assert_error, create_order, order_body, pay

ORDERS = "/api/v1/orders"


async def count_orders(engine: AsyncEngine, status: str | None = None) -> int:
    query = select(func.count()).select_from(Order)
    if status is not None:
        query = query.where(Order.status == status)
    async with engine.connect() as connection:
        return (await connection.execute(query)).scalar_one()


# ------------------------------------------------------------------ UUID ids


def test_the_mock_catalogs_ids_are_uuids() -> None:
    ids = [*catalog_data.PLAN_IDS, *catalog_data.IMAGE_IDS]
    assert PLAN_BASIC_ID in ids and IMAGE_UBUNTU_ID in ids
    for value in ids:
        assert str(uuid.UUID(value)) == value, value


@pytest.mark.parametrize("field", ["planId", "imageId"])
@pytest.mark.parametrize(
    "value",
    [
        "plan-1",
        "../../images/x",
        "a1000000-0000-4000-8000-00000000000",  # one digit short
        "a1000000-0000-4000-8000-0000000000011",  # one digit long
        "a1000000-0000-4000-8000-00000000000g",
        " ",
        "",
        12345,
    ],
)
async def test_a_body_id_that_is_not_a_uuid_is_a_validation_error_naming_it(
    client: httpx.AsyncClient, engine: AsyncEngine, field: str, value: Any
) -> None:
    response = await client.post(ORDERS, json=order_body(**{field: value}), headers=auth("u"))
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert [(f["field"], f["in"]) for f in error["details"]["fields"]] == [(field, "body")]
    assert await count_orders(engine) == 0


async def test_a_uuid_in_another_spelling_is_stored_in_canonical_form(
    client: httpx.AsyncClient,
) -> None:
    order = await create_order(
        client, planId=PLAN_BASIC_ID.upper(), imageId=IMAGE_UBUNTU_ID.replace("-", "")
    )
    assert (order["planId"], order["imageId"]) == (PLAN_BASIC_ID, IMAGE_UBUNTU_ID)


async def test_an_unknown_uuid_is_still_an_invalid_plan(client: httpx.AsyncClient) -> None:
    response = await client.post(
        ORDERS, json=order_body(planId=str(uuid.uuid4())), headers=auth("u")
    )
    assert_error(response, 400, "INVALID_PLAN")


@pytest.mark.parametrize("path", ["/api/v1/orders/plan-1", "/api/v1/internal/orders/plan-1"])
async def test_a_malformed_id_in_a_path_is_still_404(client: httpx.AsyncClient, path: str) -> None:
    headers = {**auth("u"), "X-API-Key": "test-internal-api-key"}
    assert_error(await client.get(path, headers=headers), 404, "ORDER_NOT_FOUND")


# ------------------------------------------------------------------ unpaid limit


@pytest.fixture
def limit() -> int:
    """MAX_UNPAID_ORDERS_PER_USER of the `limited` service; parametrize to change it."""
    return 3


@pytest.fixture
async def limited(
    database: TestDatabase, catalog_app: Any, clean_db: None, limit: int
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with MAX_UNPAID_ORDERS_PER_USER=`limit`, no provisioner."""
    from order_service.app import create_app

    settings = make_settings(database.url, max_unpaid_orders_per_user=limit)
    app = create_app(
        settings, catalog_transport=httpx.ASGITransport(app=catalog_app), start_provisioner=False
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


def test_the_default_limit_is_ten(database: TestDatabase) -> None:
    assert make_settings(database.url).max_unpaid_orders_per_user == 10


async def test_one_more_unpaid_order_than_the_limit_is_429_with_the_limit(
    limited: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for _ in range(3):
        await create_order(limited, "alice")
    response = await limited.post(ORDERS, json=order_body(), headers=auth("alice"))
    error = assert_error(response, 429, "TOO_MANY_UNPAID_ORDERS")
    assert error["details"] == {"limit": 3}
    assert await count_orders(engine) == 3
    # Another user has a limit of their own.
    await create_order(limited, "bob")


async def test_paying_or_canceling_an_order_frees_a_place(limited: httpx.AsyncClient) -> None:
    orders = [await create_order(limited, "alice") for _ in range(3)]
    refused = await limited.post(ORDERS, json=order_body(), headers=auth("alice"))
    assert_error(refused, 429, "TOO_MANY_UNPAID_ORDERS")

    assert (await pay(limited, orders[0]["id"])).status_code == 200
    await create_order(limited, "alice")
    refused = await limited.post(ORDERS, json=order_body(), headers=auth("alice"))
    assert_error(refused, 429, "TOO_MANY_UNPAID_ORDERS")

    canceled = await limited.post(f"{ORDERS}/{orders[1]['id']}/cancel", headers=auth("alice"))
    assert canceled.status_code == 200, canceled.text
    await create_order(limited, "alice")


async def test_a_payment_failure_keeps_the_order_unpaid(limited: httpx.AsyncClient) -> None:
    orders = [await create_order(limited, "alice") for _ in range(3)]
    assert (await pay(limited, orders[0]["id"], "PAYMENT_FAILED")).status_code == 200
    refused = await limited.post(ORDERS, json=order_body(), headers=auth("alice"))
    assert_error(refused, 429, "TOO_MANY_UNPAID_ORDERS")


async def test_an_idempotent_replay_at_the_limit_still_replays(
    limited: httpx.AsyncClient,
) -> None:
    await create_order(limited, "alice")
    await create_order(limited, "alice")
    key = {"Idempotency-Key": "the-third", **auth("alice")}
    first = await limited.post(ORDERS, json=order_body(), headers=key)
    assert first.status_code == 201, first.text
    replay = await limited.post(ORDERS, json=order_body(), headers=key)
    assert (replay.status_code, replay.json()) == (201, first.json())


async def test_a_refused_create_releases_its_idempotency_key(limited: httpx.AsyncClient) -> None:
    orders = [await create_order(limited, "alice") for _ in range(3)]
    key = {"Idempotency-Key": "retry-me", **auth("alice")}
    refused = await limited.post(ORDERS, json=order_body(), headers=key)
    assert_error(refused, 429, "TOO_MANY_UNPAID_ORDERS")
    await limited.post(f"{ORDERS}/{orders[0]['id']}/cancel", headers=auth("alice"))
    retried = await limited.post(ORDERS, json=order_body(), headers=key)
    assert retried.status_code == 201, retried.text


@pytest.mark.parametrize("limit", [0])
async def test_zero_means_no_limit(limited: httpx.AsyncClient, engine: AsyncEngine) -> None:
    for _ in range(12):
        await create_order(limited, "alice")
    assert await count_orders(engine, "PENDING_PAYMENT") == 12


@pytest.mark.postgres_only
@pytest.mark.parametrize("limit", [5])
async def test_concurrent_creates_at_the_limit_cannot_all_pass(
    limited: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for _ in range(4):
        await create_order(limited, "alice")

    async def attempt() -> httpx.Response:
        return await limited.post(ORDERS, json=order_body(), headers=auth("alice"))

    for round_ in range(3):
        responses = await asyncio.gather(*(attempt() for _ in range(10)))
        statuses = sorted(r.status_code for r in responses)
        expected = [201] if round_ == 0 else []
        assert statuses == expected + [429] * (10 - len(expected)), [r.text for r in responses]
    assert await count_orders(engine, "PENDING_PAYMENT") == 5
