"""A server's life against the fake DigitalOcean, every duty running (SPEC sections 9, 10).

The lifecycle scanner runs by itself every 0.1 s; the clock is moved, and the
droplet really goes off when the service is suspended, comes back when the
renewal is paid, and is destroyed when the order is terminated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from order_service import clock
from tests.conftest import INTERNAL, auth
from tests.integration.test_provisioning import paid_order, running_service, stats, wait_for
from tests.servers import serve


@pytest.fixture(scope="module")
async def fake_do_server() -> AsyncIterator[tuple[str, Any]]:
    app = create_fake_do(FakeConfig(boot_seconds=0.2, action_seconds=0.2))
    async with serve(app) as url:
        yield url, app


@pytest.fixture
async def fake_do(fake_do_server: tuple[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    url, _ = fake_do_server
    async with httpx.AsyncClient(base_url=url) as control:
        (await control.post("/_fake/reset")).raise_for_status()
        yield control


@pytest.fixture
async def service(
    database: Any,
    fake_do_server: tuple[str, Any],
    fake_do: httpx.AsyncClient,
    catalog_app: Any,
    clean_db: None,
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(
        database.url, fake_do_server[0], catalog_app, lifecycle_scan_interval="0.1"
    ) as client:
        yield client


async def eventually(probe: Callable[[], Awaitable[Any]], within: float = 15) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def detail(service: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await service.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL)
    return response.json()["data"]


async def actions(service: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    response = await service.get(
        f"/api/v1/internal/orders/{order_id}/actions", params={"limit": 100}, headers=INTERNAL
    )
    return list(reversed(response.json()["data"]))  # oldest first


def done(kind: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda listed: any(a["type"] == kind and a["status"] == "COMPLETED" for a in listed)


async def test_suspended_off_renewed_on_terminated_destroyed(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id = await paid_order(service)
    order = await wait_for(service, order_id, {"ACTIVE", "FAILED"})
    assert order["status"] == "ACTIVE", order["provisioningTask"]
    expires = order["expiresAt"]
    assert expires is not None and order["activatedAt"] is not None
    renewal = await service.post(
        f"/api/v1/orders/{order_id}/renewals", json={"periods": 1}, headers=auth("prov-user")
    )
    assert renewal.status_code == 201, renewal.text

    # The period ends and SUSPEND_GRACE passes: the scanner suspends, the droplet goes off.
    clock.advance(timedelta(days=33))

    async def droplet_off() -> Any:
        current = await detail(service, order_id)
        listed = await actions(service, order_id)
        off = current["provisioningTask"]["dropletStatus"] == "off" and done("SHUTDOWN")(listed)
        return current if current["status"] == "SUSPENDED" and off else None

    suspended = await eventually(droplet_off)
    assert suspended["suspensionReason"] == "EXPIRED"
    # The droplet went off gracefully: the hard POWER_OFF is ended unsent (SPEC 9: "only if").
    listed = await actions(service, order_id)
    assert [(a["type"], a["status"], a["errorCode"]) for a in listed] == [
        ("SHUTDOWN", "COMPLETED", None),
        ("POWER_OFF", "CANCELED", "SUPERSEDED"),
    ]
    assert (await stats(fake_do))["actions"]["power_off"] == 0
    assert (await stats(fake_do))["actions"]["shutdown"] == 1

    # Paid: back on.
    paid = await service.post(
        f"/api/v1/internal/renewals/{renewal.json()['data']['id']}/payment-status",
        json={"status": "PAID"},
        headers=INTERNAL,
    )
    assert paid.status_code == 200, paid.text
    assert (await detail(service, order_id))["status"] == "ACTIVE"

    async def droplet_active() -> Any:
        current = await detail(service, order_id)
        listed = await actions(service, order_id)
        return current["provisioningTask"]["dropletStatus"] == "active" and done("POWER_ON")(listed)

    await eventually(droplet_active)
    assert (await stats(fake_do))["actions"]["power_on"] == 1

    # Ops terminate: the droplet is destroyed; history stays.
    ended = await service.post(f"/api/v1/internal/orders/{order_id}/terminate", headers=INTERNAL)
    assert ended.status_code == 200, ended.text

    async def destroyed() -> Any:
        current = await detail(service, order_id)
        return current if current["provisioningTask"]["dropletStatus"] == "destroyed" else None

    final = await eventually(destroyed)
    assert final["status"] == "TERMINATED" and final["terminationReason"] == "ADMIN"
    droplet_id = final["provisioningTask"]["dropletId"]
    gone = await fake_do.get(
        f"/v2/droplets/{droplet_id}", headers={"Authorization": "Bearer fake-do-token"}
    )
    assert gone.status_code == 404
    assert (await stats(fake_do))["droplets"] == 1  # one droplet in the order's whole life


async def _when(
    probe: Awaitable[list[dict[str, Any]]], test: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]] | None:
    value = await probe
    return value if test(value) else None
