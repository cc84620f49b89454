"""Provisioning end to end: PAID orders against the fake DigitalOcean over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from order_service.db import utcnow
from order_service.provisioning.models import ProvisioningTask
from tests.conftest import INTERNAL, make_settings
from tests.helpers import create_order, pay
from tests.servers import serve

TERMINAL = {"ACTIVE", "FAILED"}


@pytest.fixture(scope="module")
async def fake_do_server() -> AsyncIterator[tuple[str, Any]]:
    app = create_fake_do(FakeConfig(boot_seconds=0.3))
    async with serve(app) as url:
        yield url, app


@pytest.fixture
async def fake_do(fake_do_server: tuple[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """Control client of the fake, reset to its defaults for each test."""
    url, _ = fake_do_server
    async with httpx.AsyncClient(base_url=url) as control:
        (await control.post("/_fake/reset")).raise_for_status()
        yield control


async def configure(fake_do: httpx.AsyncClient, **config: Any) -> None:
    (await fake_do.post("/_fake/config", json=config)).raise_for_status()


async def stats(fake_do: httpx.AsyncClient) -> dict[str, Any]:
    return (await fake_do.get("/_fake/stats")).json()


@pytest.fixture
def provisioning_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def service(
    database: Any,
    fake_do_server: tuple[str, Any],
    fake_do: httpx.AsyncClient,
    catalog_app: Any,
    clean_db: None,
    provisioning_overrides: dict[str, Any],
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with its provisioner running against the fake DO over HTTP."""

    async with running_service(
        database.url, fake_do_server[0], catalog_app, **provisioning_overrides
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def running_service(
    database_url: str, do_url: str, catalog_app: Any, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    from order_service.app import create_app

    values: dict[str, Any] = {
        "digitalocean_api_url": do_url,
        "provisioning_poll_interval_ms": 50,
        "provisioning_max_attempts": 200,
        "provisioning_lease_seconds": 2,
    }
    settings = make_settings(database_url, **{**values, **overrides})
    app = create_app(
        settings, catalog_transport=httpx.ASGITransport(app=catalog_app), start_provisioner=True
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


async def wait_for(
    client: httpx.AsyncClient, order_id: str, statuses: set[str], within: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = await client.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL)
        order = response.json()["data"]
        if order["status"] in statuses:
            return order
        if time.monotonic() > deadline:
            raise AssertionError(f"order stuck in {order['status']}: {order['provisioningTask']}")
        await asyncio.sleep(0.05)


async def paid_order(client: httpx.AsyncClient, **overrides: Any) -> str:
    order = await create_order(client, "prov-user", **overrides)
    assert (await pay(client, order["id"])).status_code == 200
    return order["id"]


async def test_paid_order_becomes_active_with_droplet_metadata(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id = await paid_order(service)

    order = await wait_for(service, order_id, TERMINAL)

    assert order["status"] == "ACTIVE"
    task = order["provisioningTask"]
    assert task["status"] == "SUCCESS"
    assert task["dropletName"] == f"vps-{order_id[:8]}"
    assert task["dropletStatus"] == "active"
    assert task["ipv4Public"] and task["ipv4Private"]
    assert (task["doRegion"], task["doSize"], task["doImage"]) == (
        "sgp1",
        "s-1vcpu-1gb",
        "ubuntu-22-04-x64",
    )
    assert {"order-service", f"order-{order_id}"} <= set(task["dropletTags"])
    assert task["dropletCreatedAt"] and task["completedAt"] and task["startedAt"]
    assert task["attempts"] >= 1
    assert task["errorCode"] is None
    history = [(h["previousStatus"], h["newStatus"], h["actor"]) for h in order["statusHistory"]]
    assert history[-3:] == [
        ("PENDING_PAYMENT", "PAID", "admin"),
        ("PAID", "PROVISIONING", "system"),
        ("PROVISIONING", "ACTIVE", "system"),
    ]
    do = await stats(fake_do)
    assert do["droplets_per_tag"][f"order-{order_id}"] == 1
    assert do["max_droplets_per_order_tag"] == 1


async def test_checks_that_see_no_change_write_nothing_and_the_count_comes_at_the_end(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    """A droplet that stays `new` for ~20 checks (50 ms apart) is not written per check."""
    await configure(fake_do, boot_seconds=1.5)
    order_id = await paid_order(service)

    async def task() -> dict[str, Any]:
        order = (await service.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL)).json()
        return order["data"]["provisioningTask"]

    deadline = time.monotonic() + 10
    while (first := await task())["dropletStatus"] != "new":
        assert time.monotonic() < deadline, first
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.6)  # ~12 more checks, all seeing the same `new` droplet
    later = await task()
    assert later["dropletStatus"] == "new"
    assert later["attempts"] <= 1  # at most the first check was written

    order = await wait_for(service, order_id, TERMINAL)
    assert order["status"] == "ACTIVE"
    assert order["provisioningTask"]["attempts"] >= 12  # every check counted, written once


async def test_errored_build_fails_the_order(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    await configure(fake_do, errored_images=["ubuntu-22-04-x64"])
    order_id = await paid_order(service)

    order = await wait_for(service, order_id, TERMINAL)

    assert order["status"] == "FAILED"
    task = order["provisioningTask"]
    assert task["errorCode"] == "PROVISIONING_FAILED"
    assert "errored" in task["errorMessage"]
    assert task["dropletId"] is not None


async def test_eventual_consistency_lag_is_not_taken_for_a_vanished_droplet(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    # DO hides a fresh droplet for 1 s: with a 50 ms poll interval that is 20
    # "not found" answers in a row, which must not fail the order.
    await configure(fake_do, consistency_delay_s=1.0, boot_seconds=1.2)
    order_id = await paid_order(service)

    order = await wait_for(service, order_id, TERMINAL)

    assert order["status"] == "ACTIVE", order["provisioningTask"]
    assert (await stats(fake_do))["droplets"] == 1


async def test_errored_droplet_status_fails_the_order(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    await configure(fake_do, errored_status_images=["ubuntu-22-04-x64"])
    order_id = await paid_order(service)

    order = await wait_for(service, order_id, TERMINAL)

    assert order["status"] == "FAILED"
    assert order["provisioningTask"]["errorCode"] == "PROVISIONING_FAILED"
    assert order["provisioningTask"]["dropletStatus"] == "errored"


@pytest.mark.parametrize(
    "provisioning_overrides", [{"provisioning_max_attempts": 20}], indirect=False
)
async def test_never_active_times_out_and_keeps_the_droplet(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    await configure(fake_do, never_active_images=["ubuntu-22-04-x64"])
    order_id = await paid_order(service)

    order = await wait_for(service, order_id, TERMINAL)

    assert order["status"] == "FAILED"
    task = order["provisioningTask"]
    assert task["errorCode"] == "PROVISIONING_TIMEOUT"
    assert task["dropletId"] is not None  # kept and recorded, not deleted
    assert (await stats(fake_do))["droplets"] == 1


@pytest.mark.parametrize("provisioning_overrides", [{"provisioning_max_attempts": 20}])
async def test_deadline_starts_when_do_accepted_the_droplet(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    # Deadline 1 s; DO takes 1.5 s to answer the create (as a create waiting
    # for the rate budget in a storm would). The wait before DO accepted the
    # droplet must not count: the order ends ACTIVE, not PROVISIONING_TIMEOUT.
    await configure(fake_do, latency_ms=1500, boot_seconds=0.1)
    order_id = await paid_order(service)

    order = await wait_for(service, order_id, TERMINAL)

    assert order["status"] == "ACTIVE", order["provisioningTask"]


async def test_three_server_errors_in_a_row_still_end_active(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    await configure(fake_do, fail_next={"create": 3, "get": 3, "list": 3})
    order_id = await paid_order(service)

    order = await wait_for(service, order_id, TERMINAL, within=30)

    assert order["status"] == "ACTIVE", order["provisioningTask"]
    do = await stats(fake_do)
    assert do["server_errors"] >= 3
    assert do["max_droplets_per_order_tag"] == 1


async def wait_for_task(
    client: httpx.AsyncClient, order_id: str, error_code: str, within: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = await client.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL)
        order = response.json()["data"]
        if (order["provisioningTask"] or {}).get("errorCode") == error_code:
            return order
        if time.monotonic() > deadline:
            raise AssertionError(f"task never {error_code}: {order['provisioningTask']}")
        await asyncio.sleep(0.05)


async def test_a_rejected_token_keeps_the_paid_order_waiting_until_ops_fix_it(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    # SPEC §7, §13 (v1.2): a refused token is the account's trouble, not the order's.
    # The only account goes UNHEALTHY, the order waits (never FAILED), nothing is
    # created; a token DO accepts again and a check later, the order goes ACTIVE.
    await configure(fake_do, tokens=["another-token"])
    order_id = await paid_order(service)

    order = await wait_for_task(service, order_id, "WAITING_FOR_CAPACITY")
    assert order["status"] == "PROVISIONING"
    assert order["provisioningTask"]["status"] == "PENDING"
    history = [h["newStatus"] for h in order["statusHistory"]]
    assert history.count("WAITING_FOR_CAPACITY") == 1
    accounts = (await service.get("/api/v1/internal/do-accounts", headers=INTERNAL)).json()
    default = next(a for a in accounts["data"] if a["name"] == "default")
    assert default["health"] == "UNHEALTHY" and "token" in default["lastError"]
    assert (await stats(fake_do))["by_route"]["create"] == 0

    await configure(fake_do, tokens=["fake-do-token"])
    checked = await service.post(
        f"/api/v1/internal/do-accounts/{default['id']}/check", headers=INTERNAL
    )
    assert checked.status_code == 200 and checked.json()["data"]["health"] == "HEALTHY"
    done = await wait_for(service, order_id, TERMINAL)
    assert done["status"] == "ACTIVE"
    assert (await stats(fake_do))["max_droplets_per_order_tag"] == 1


@pytest.mark.parametrize("provisioning_overrides", [{"digitalocean_api_token": None}])
async def test_without_any_account_the_paid_order_waits_and_do_hears_nothing(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id = await paid_order(service)

    order = await wait_for_task(service, order_id, "WAITING_FOR_CAPACITY")

    assert order["status"] == "PROVISIONING"
    assert (await stats(fake_do))["requests"] == 0
    accounts = (await service.get("/api/v1/internal/do-accounts", headers=INTERNAL)).json()
    default = next(a for a in accounts["data"] if a["name"] == "default")
    assert "DIGITALOCEAN_API_TOKEN" in default["lastError"]


async def test_permanent_422_fails_with_do_message(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    await configure(fake_do, create_422_permanent=True)
    order_id = await paid_order(service)

    order = await wait_for(service, order_id, TERMINAL)

    assert order["provisioningTask"]["errorCode"] == "PROVISIONING_FAILED"
    assert "invalid size" in order["provisioningTask"]["errorMessage"]


@pytest.mark.parametrize("provisioning_overrides", [{"provisioning_max_attempts": 10}])
async def test_retry_after_timeout_reuses_the_same_droplet(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    # Deadline 0.5 s, boot 1.5 s: the first run times out, the retry finds it active.
    await configure(fake_do, boot_seconds=1.5)
    order_id = await paid_order(service)
    failed = await wait_for(service, order_id, TERMINAL)
    assert failed["provisioningTask"]["errorCode"] == "PROVISIONING_TIMEOUT"
    droplet_id = failed["provisioningTask"]["dropletId"]
    await asyncio.sleep(1.5)

    retried = await service.post(
        f"/api/v1/internal/orders/{order_id}/retry-provisioning", headers=INTERNAL
    )
    assert retried.status_code == 200, retried.text
    order = await wait_for(service, order_id, TERMINAL)

    assert order["status"] == "ACTIVE"
    assert order["provisioningTask"]["dropletId"] == droplet_id
    assert order["provisioningTask"]["id"] == failed["provisioningTask"]["id"]
    assert (await stats(fake_do))["droplets"] == 1
    statuses = [h["newStatus"] for h in order["statusHistory"]]
    assert statuses[-3:] == ["FAILED", "PROVISIONING", "ACTIVE"]


async def test_a_create_that_may_have_been_sent_adopts_the_droplet(
    client: httpx.AsyncClient,
    fake_do_server: tuple[str, Any],
    fake_do: httpx.AsyncClient,
    catalog_app: Any,
    database: Any,
    engine: AsyncEngine,
) -> None:
    # As after a crash between DO's 202 and our commit: the intent to create
    # is recorded, the droplet exists at DO with the order's tag, but its id
    # never reached the database. (`client` runs no provisioner.)
    order = await create_order(client, "prov-user")
    assert (await pay(client, order["id"])).status_code == 200
    async with engine.begin() as connection:
        await connection.execute(
            update(ProvisioningTask)
            .where(ProvisioningTask.order_id == uuid.UUID(order["id"]))
            .values(create_intent_at=utcnow(), status="IN_PROGRESS")
        )
    do_api = {"Authorization": "Bearer fake-do-token"}
    created = await fake_do.post(
        "/v2/droplets",
        headers=do_api,
        json={
            "name": f"vps-{order['id'][:8]}",
            "region": "sgp1",
            "size": "s-1vcpu-1gb",
            "image": "ubuntu-22-04-x64",
            "tags": ["order-service", f"order-{order['id']}"],
        },
    )
    assert created.status_code == 202
    droplet_id = str(created.json()["droplet"]["id"])

    async with running_service(database.url, fake_do_server[0], catalog_app) as service:
        done = await wait_for(service, order["id"], TERMINAL)

    assert done["status"] == "ACTIVE"
    assert done["provisioningTask"]["dropletId"] == droplet_id
    do = await stats(fake_do)
    assert do["droplets_per_tag"][f"order-{order['id']}"] == 1
    assert do["by_route"]["create"] == 1  # ours above; the provisioner created none


async def wait_for_droplet(client: httpx.AsyncClient, order_id: str) -> str | None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response = await client.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL)
        task = response.json()["data"]["provisioningTask"]
        if task and task["dropletId"]:
            return task["dropletId"]
        await asyncio.sleep(0.05)
    return None
