"""INTERNAL_API_KEYS: several operator keys at once, each named in the status history."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.auth import InternalCaller
from order_service.orders.models import Order
from tests.conftest import API_KEY, auth, make_settings
from tests.database import TestDatabase
from tests.helpers import assert_error, create_order

INTERNAL_ORDERS = "/api/v1/internal/orders"
OLD, NEW = "old-rotated-key-0001", "new-rotated-key=0002="


@pytest.fixture
async def service(
    database: TestDatabase, catalog_app: Any, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    """INTERNAL_API_KEY plus two named keys (a rotation in progress)."""
    from order_service.app import create_app

    settings = make_settings(database.url, internal_api_keys=f"ops-old={OLD},ops-new={NEW}")
    app = create_app(
        settings, catalog_transport=httpx.ASGITransport(app=catalog_app), start_provisioner=False
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


def key(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


def actors(order: dict[str, Any]) -> list[str]:
    return [entry["actor"] for entry in order["statusHistory"]]


def test_the_actor_of_a_caller() -> None:
    assert InternalCaller(None).actor == "admin"
    assert InternalCaller("ops-new").actor == "admin:ops-new"


@pytest.mark.parametrize("value", [API_KEY, OLD, NEW])
async def test_every_configured_key_is_let_in(service: httpx.AsyncClient, value: str) -> None:
    assert (await service.get(INTERNAL_ORDERS, headers=key(value))).status_code == 200


@pytest.mark.parametrize(
    "value", ["", OLD[:-1], OLD + "x", NEW.upper(), f"{OLD},{NEW}", "ops-old", f"ops-old={OLD}"]
)
async def test_anything_else_is_401(service: httpx.AsyncClient, value: str) -> None:
    response = await service.get(INTERNAL_ORDERS, headers=key(value))
    assert_error(response, 401, "UNAUTHORIZED")


async def test_payment_and_cancel_record_the_keys_name(service: httpx.AsyncClient) -> None:
    first = await create_order(service, "alice")
    failed = await service.post(
        f"{INTERNAL_ORDERS}/{first['id']}/payment-status",
        json={"status": "PAYMENT_FAILED"},
        headers=key(OLD),
    )
    assert failed.status_code == 200, failed.text
    paid = await service.post(
        f"{INTERNAL_ORDERS}/{first['id']}/payment-status",
        json={"status": "PAID"},
        headers=key(NEW),
    )
    assert paid.status_code == 200, paid.text
    assert actors(paid.json()["data"]) == ["user:alice", "admin:ops-old", "admin:ops-new", "system"]

    second = await create_order(service, "alice")
    canceled = await service.post(f"{INTERNAL_ORDERS}/{second['id']}/cancel", headers=key(API_KEY))
    assert canceled.status_code == 200, canceled.text
    assert actors(canceled.json()["data"]) == ["user:alice", "admin"]


async def test_retry_provisioning_records_the_keys_name(
    service: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(service, "alice")
    paid = await service.post(
        f"{INTERNAL_ORDERS}/{order['id']}/payment-status",
        json={"status": "PAID"},
        headers=key(OLD),
    )
    assert paid.status_code == 200, paid.text
    # As if provisioning had failed (no provisioner runs here).
    async with engine.begin() as connection:
        await connection.execute(
            update(Order).where(Order.id == uuid.UUID(order["id"])).values(status="FAILED")
        )
    retried = await service.post(
        f"{INTERNAL_ORDERS}/{order['id']}/retry-provisioning", headers=key(NEW)
    )
    assert retried.status_code == 200, retried.text
    assert actors(retried.json()["data"])[-1] == "admin:ops-new"


async def test_a_users_jwt_is_not_an_operator_key(service: httpx.AsyncClient) -> None:
    response = await service.get(INTERNAL_ORDERS, headers=auth("alice"))
    assert_error(response, 401, "UNAUTHORIZED")
