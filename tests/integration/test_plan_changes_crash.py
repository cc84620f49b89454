"""Crash safety of a RESIZE with real `order-service serve` processes (SPEC sections 10, 15).

A process is SIGKILLed at each step of a paid plan change's RESIZE - right
after DO started the shutdown, while DO's answer to the resize request is
still in flight (DO resizes, the process never learned the action's id), and
after the resize finished but before the power_on was sent - and a second
process takes over. The fake DigitalOcean counts what it started: exactly one
resize, the droplet on again with the new size, the plan change COMPLETED.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from mocks.catalog_service import create_app as create_catalog
from mocks.catalog_service.data import PLAN_STANDARD_ID
from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from order_service.actions.models import ServerAction
from tests.conftest import INTERNAL, auth
from tests.integration import test_crash_safety as crash
from tests.servers import serve

pytestmark = pytest.mark.slow

ServiceProcess = crash.ServiceProcess
service_env = crash.service_env
processes = crash.processes


@pytest.fixture
async def neighbours() -> AsyncIterator[tuple[str, str, httpx.AsyncClient]]:
    # Every DO answer takes 300 ms (counted when it arrives), actions take 1.5 s:
    # a kill lands between DO starting an action and the process storing its id.
    fake = create_fake_do(FakeConfig(boot_seconds=0.5, action_seconds=1.5, latency_ms=300))
    async with (
        serve(create_catalog()) as catalog_url,
        serve(fake) as do_url,
        httpx.AsyncClient(base_url=do_url) as control,
    ):
        yield catalog_url, do_url, control


async def stats(control: httpx.AsyncClient) -> dict[str, Any]:
    return (await control.get("/_fake/stats")).json()


async def fake_droplet(control: httpx.AsyncClient, droplet_id: int) -> dict[str, Any]:
    """The droplet as the fake holds it (a control route: not a DO request)."""
    return (await control.get(f"/_fake/droplets/{droplet_id}")).json()["droplet"]


async def until(check: Any, what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"never {what}"
        await asyncio.sleep(0.02)


async def start_plan_change(url: str, order_id: str) -> tuple[str, int]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        order = (await client.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL)).json()
        droplet_id = int(order["data"]["provisioningTask"]["dropletId"])
        created = await client.post(
            f"/api/v1/orders/{order_id}/plan-changes",
            json={"planId": PLAN_STANDARD_ID},
            headers=auth("crash-user-0"),
        )
        assert created.status_code == 201, created.text
        change_id = created.json()["data"]["id"]
        paid = await client.post(
            f"/api/v1/internal/plan-changes/{change_id}/payment-status",
            json={"status": "PAID"},
            headers=INTERNAL,
        )
        assert paid.status_code == 200, paid.text
    return change_id, droplet_id


async def wait_done(url: str, order_id: str, change_id: str, within: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url, headers=INTERNAL) as client:
        while True:
            response = await client.get(f"/api/v1/internal/orders/{order_id}/plan-changes")
            [change] = [c for c in response.json()["data"] if c["id"] == change_id]
            if change["status"] in ("COMPLETED", "FAILED"):
                return change
            assert time.monotonic() < deadline, f"plan change stuck: {change}"
            await asyncio.sleep(0.1)


async def resize_row(engine: AsyncEngine, order_id: str) -> dict[str, Any]:
    t = ServerAction.__table__
    async with engine.connect() as connection:
        statement = select(t).where(t.c.order_id == uuid.UUID(order_id), t.c.type == "RESIZE")
        return dict((await connection.execute(statement)).mappings().one())


@pytest.mark.parametrize("moment", ["after_shutdown", "resize_in_flight", "before_power_on"])
async def test_sigkill_at_each_step_of_a_resize_resizes_once_and_powers_on(
    service_env: dict[str, str],
    neighbours: tuple[str, str, httpx.AsyncClient],
    processes: list[ServiceProcess],
    tmp_path: Path,
    engine: AsyncEngine,
    moment: str,
) -> None:
    control = neighbours[2]
    first = ServiceProcess(service_env, tmp_path / "first.log")
    processes.append(first)
    await first.wait_ready()
    [order_id] = await crash.pay_orders(first.url, 1)
    await crash.wait_all_active(first.url, [order_id])
    change_id, droplet_id = await start_plan_change(first.url, order_id)

    async def counted(kind: str) -> bool:
        return (await stats(control))["actions"][kind] >= 1

    if moment == "after_shutdown":
        await until(lambda: counted("shutdown"), "sent a shutdown")
    elif moment == "resize_in_flight":
        await until(lambda: counted("resize"), "sent a resize")  # its answer is 300 ms away
    else:

        async def resized() -> bool:
            return (await fake_droplet(control, droplet_id))["size_slug"] == "s-1vcpu-2gb"

        await until(resized, "resized the droplet")
    first.kill()
    row = await resize_row(engine, order_id)
    at_kill = (await stats(control))["actions"]
    if moment == "resize_in_flight":
        # The window the crash rule is for: the step's intent, and no DO action id.
        assert row["step"] == "resize", row
        assert row["intent_at"] is not None and row["do_action_id"] is None, row
    if moment == "before_power_on":
        assert at_kill["power_on"] == 0, at_kill

    second = ServiceProcess(service_env, tmp_path / "second.log")
    processes.append(second)
    await second.wait_ready()
    done = await wait_done(second.url, order_id, change_id)
    assert done["status"] == "COMPLETED", done

    counts = (await stats(control))["actions"]
    assert counts["resize"] == 1, counts
    assert counts["shutdown"] == 1 and counts["power_on"] == 1, counts
    assert counts["power_off"] == 0 and counts["reboot"] == 0, counts
    after = await fake_droplet(control, droplet_id)
    assert (after["status"], after["size_slug"], after["disk"]) == ("active", "s-1vcpu-2gb", 50)
    async with httpx.AsyncClient(base_url=second.url, headers=INTERNAL) as client:
        order = (await client.get(f"/api/v1/internal/orders/{order_id}")).json()["data"]
    assert order["planId"] == PLAN_STANDARD_ID
    assert order["provisioningTask"]["doSize"] == "s-1vcpu-2gb"
    assert [h["newStatus"] for h in order["statusHistory"]].count("PLAN_CHANGED") == 1
    assert second.terminate()
