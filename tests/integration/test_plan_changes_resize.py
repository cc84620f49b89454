"""A paid plan change carried out on the fake DigitalOcean (SPEC sections 10, 15).

The service runs its duties against the fake over real HTTP. Each test reads
what DO saw: the droplet's own action list (the types, in order, once each),
the fake's counters, and the droplet's size and disk afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mocks.catalog_service.data import PLAN_BASIC_ID, PLAN_CPU_ID, PLAN_STANDARD_ID
from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from tests.conftest import INTERNAL, auth
from tests.integration.test_provisioning import configure, paid_order, running_service, wait_for
from tests.servers import serve

DO_AUTH = {"Authorization": "Bearer fake-do-token"}


@pytest.fixture(scope="module")
async def fake_do_server() -> AsyncIterator[tuple[str, Any]]:
    app = create_fake_do(FakeConfig(boot_seconds=0.2, action_seconds=0.2))
    async with serve(app) as url:
        yield url, app


@pytest.fixture
async def fake_do(fake_do_server: tuple[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake_do_server[0]) as control:
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
        database.url, fake_do_server[0], catalog_app, shutdown_grace="PT2S"
    ) as client:
        yield client


async def active(service: httpx.AsyncClient, **overrides: Any) -> tuple[str, int]:
    order_id = await paid_order(service, **overrides)
    order = await wait_for(service, order_id, {"ACTIVE", "FAILED"})
    assert order["status"] == "ACTIVE", order["provisioningTask"]
    return order_id, int(order["provisioningTask"]["dropletId"])


async def change_and_pay(service: httpx.AsyncClient, order_id: str, plan_id: str) -> dict[str, Any]:
    created = await service.post(
        f"/api/v1/orders/{order_id}/plan-changes",
        json={"planId": plan_id},
        headers=auth("prov-user"),
    )
    assert created.status_code == 201, created.text
    change = created.json()["data"]
    if change["status"] == "PENDING_PAYMENT":
        paid = await service.post(
            f"/api/v1/internal/plan-changes/{change['id']}/payment-status",
            json={"status": "PAID"},
            headers=INTERNAL,
        )
        assert paid.status_code == 200, paid.text
        change = paid.json()["data"]
    return change


async def wait_change(
    service: httpx.AsyncClient, order_id: str, change_id: str, within: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = await service.get(
            f"/api/v1/internal/orders/{order_id}/plan-changes", headers=INTERNAL
        )
        [change] = [c for c in response.json()["data"] if c["id"] == change_id]
        if change["status"] in ("COMPLETED", "FAILED"):
            return change
        assert time.monotonic() < deadline, f"plan change stuck: {change}"
        await asyncio.sleep(0.05)


async def droplet_actions(fake_do: httpx.AsyncClient, droplet_id: int) -> list[str]:
    """The droplet's DO actions after its create, oldest first."""
    response = await fake_do.get(f"/v2/droplets/{droplet_id}/actions", headers=DO_AUTH)
    types = [action["type"] for action in reversed(response.json()["actions"])]
    assert types[0] == "create"
    return types[1:]


async def droplet(fake_do: httpx.AsyncClient, droplet_id: int) -> dict[str, Any]:
    return (await fake_do.get(f"/v2/droplets/{droplet_id}", headers=DO_AUTH)).json()["droplet"]


async def detail(service: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await service.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL)
    return response.json()["data"]


async def feed_types(service: httpx.AsyncClient, order_id: str) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        response = await service.get(
            "/api/v1/internal/events", params={"orderId": order_id, "limit": 500}, headers=INTERNAL
        )
        types = [event["type"] for event in response.json()["data"]]
        if "order.plan_changed" in types or "plan_change.failed" in types:
            return types
        assert time.monotonic() < deadline, types
        await asyncio.sleep(0.05)


async def test_upgrade_shuts_down_resizes_with_disk_powers_on_and_moves_the_plan(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id, droplet_id = await active(service)
    change = await change_and_pay(service, order_id, PLAN_STANDARD_ID)
    assert change["resizeDisk"] is True

    done = await wait_change(service, order_id, change["id"])
    assert done["status"] == "COMPLETED" and done["completedAt"], done
    assert await droplet_actions(fake_do, droplet_id) == ["shutdown", "resize", "power_on"]
    stats = (await fake_do.get("/_fake/stats")).json()
    assert stats["actions"]["resize"] == 1 and stats["actions_errored"]["resize"] == 0
    after = await droplet(fake_do, droplet_id)
    assert (after["status"], after["size_slug"], after["disk"]) == ("active", "s-1vcpu-2gb", 50)

    order = await detail(service, order_id)
    assert (order["planId"], order["planName"]) == (PLAN_STANDARD_ID, "Standard 2GB")
    assert order["provisioningTask"]["doSize"] == "s-1vcpu-2gb"
    assert order["provisioningTask"]["dropletStatus"] == "active"
    assert order["planChangedAt"] is not None
    [history] = [h for h in order["statusHistory"] if h["newStatus"] == "PLAN_CHANGED"]
    assert history["metadata"] == {
        "fromPlanId": PLAN_BASIC_ID,
        "toPlanId": PLAN_STANDARD_ID,
        "planChangeId": change["id"],
    }
    [action] = (
        await service.get(f"/api/v1/orders/{order_id}/actions", headers=auth("prov-user"))
    ).json()["data"]
    assert (action["type"], action["status"], action["requestedBy"]) == (
        "RESIZE",
        "COMPLETED",
        "system",
    )
    types = await feed_types(service, order_id)
    changes = [t for t in types if t.startswith(("plan_change.", "order.plan_changed"))]
    assert changes == [
        "plan_change.created",
        "plan_change.paid",
        "order.plan_changed",
        "plan_change.completed",
    ]
    # Renewals from now on price the new plan: Standard 200,000 a month.
    quote = await service.get(f"/api/v1/orders/{order_id}/renewal-quote", headers=auth("prov-user"))
    assert quote.json()["data"]["basePrice"] == 200000


async def test_cpu_only_resize_keeps_the_disk(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id, droplet_id = await active(service)
    change = await change_and_pay(service, order_id, PLAN_CPU_ID)
    assert change["resizeDisk"] is False
    assert (await wait_change(service, order_id, change["id"]))["status"] == "COMPLETED"
    after = await droplet(fake_do, droplet_id)
    assert (after["size_slug"], after["disk"], after["vcpus"]) == ("c-2", 25, 2)


async def test_resize_errored_powers_on_and_keeps_the_old_plan(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id, droplet_id = await active(service)
    await configure(fake_do, action_errored_next={"resize": 1})
    change = await change_and_pay(service, order_id, PLAN_STANDARD_ID)

    done = await wait_change(service, order_id, change["id"])
    assert done["status"] == "FAILED" and done["errorCode"] == "ACTION_FAILED", done
    assert "resize" in done["errorMessage"] and "errored" in done["errorMessage"]
    assert await droplet_actions(fake_do, droplet_id) == ["shutdown", "resize", "power_on"]
    after = await droplet(fake_do, droplet_id)
    assert (after["status"], after["size_slug"], after["disk"]) == ("active", "s-1vcpu-1gb", 25)
    order = await detail(service, order_id)
    assert order["planId"] == PLAN_BASIC_ID and order["provisioningTask"]["doSize"] == "s-1vcpu-1gb"
    assert order["planChangedAt"] is None
    types = await feed_types(service, order_id)
    assert "plan_change.failed" in types and "order.plan_changed" not in types
    assert "action.failed" in types


async def test_a_shutdown_that_errors_falls_back_to_power_off(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id, droplet_id = await active(service)
    await configure(fake_do, action_errored_next={"shutdown": 1})
    change = await change_and_pay(service, order_id, PLAN_STANDARD_ID)
    assert (await wait_change(service, order_id, change["id"]))["status"] == "COMPLETED"
    assert await droplet_actions(fake_do, droplet_id) == [
        "shutdown",
        "power_off",
        "resize",
        "power_on",
    ]
