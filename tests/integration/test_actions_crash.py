"""Crash safety of server actions with real `order-service serve` processes.

A process is SIGKILLed while a REBOOT or a REBUILD is under way - right
after the 202, or while DO's answer to the action request is still in
flight (DO started the action, the process never learned its id) - and
started again. The fake DigitalOcean counts the actions it started:
exactly one per requested action, and every action ends COMPLETED.
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
from mocks.catalog_service.data import IMAGE_DEBIAN_ID
from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from order_service.actions.models import ServerAction
from tests.conftest import INTERNAL, auth
from tests.integration import test_crash_safety as crash
from tests.servers import serve

pytestmark = pytest.mark.slow

ServiceProcess = crash.ServiceProcess
pay_orders = crash.pay_orders
wait_all_active = crash.wait_all_active
# The fixtures of the SIGKILL tests of provisioning, on this module's `neighbours`.
service_env = crash.service_env
processes = crash.processes


@pytest.fixture
async def neighbours() -> AsyncIterator[tuple[str, str, httpx.AsyncClient]]:
    # Every DO answer takes 300 ms (the request is counted when it arrives),
    # so a kill can land between DO starting an action and the process
    # storing its id; actions take 1.5 s.
    fake = create_fake_do(FakeConfig(boot_seconds=0.5, action_seconds=1.5, latency_ms=300))
    async with (
        serve(create_catalog()) as catalog_url,
        serve(fake) as do_url,
        httpx.AsyncClient(base_url=do_url) as control,
    ):
        yield catalog_url, do_url, control


async def do_stats(control: httpx.AsyncClient) -> dict[str, Any]:
    return (await control.get("/_fake/stats")).json()


async def post_action(url: str, order_id: str, body: dict[str, Any], *, ops: bool = False) -> str:
    """As the owner (pay_orders' first order is crash-user-0's), or as an operator."""
    path = f"/api/v1/{'internal/' if ops else ''}orders/{order_id}/actions"
    headers = INTERNAL if ops else auth("crash-user-0")
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


async def wait_counted(control: httpx.AsyncClient, kind: str, at_least: int) -> None:
    deadline = time.monotonic() + 20
    while (await do_stats(control))["actions"][kind] < at_least:
        assert time.monotonic() < deadline, f"DO never saw {at_least} {kind}"
        await asyncio.sleep(0.02)


async def wait_completed(url: str, order_ids_actions: list[tuple[str, str]]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=url, headers=INTERNAL) as client:
        for order_id, action_id in order_ids_actions:
            while True:
                response = await client.get(
                    f"/api/v1/internal/orders/{order_id}/actions/{action_id}"
                )
                action = response.json()["data"]
                if action["status"] in ("COMPLETED", "FAILED"):
                    assert action["status"] == "COMPLETED", action
                    break
                assert time.monotonic() < deadline, f"action stuck: {action}"
                await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("body", "kind"),
    [({"type": "REBOOT"}, "reboot"), ({"type": "REBUILD", "imageId": IMAGE_DEBIAN_ID}, "rebuild")],
)
@pytest.mark.parametrize("moment", ["after_202", "answer_in_flight"])
async def test_sigkill_during_an_action_then_restart_does_it_exactly_once(
    service_env: dict[str, str],
    neighbours: tuple[str, str, httpx.AsyncClient],
    processes: list[ServiceProcess],
    tmp_path: Path,
    engine: AsyncEngine,
    body: dict[str, Any],
    kind: str,
    moment: str,
) -> None:
    control = neighbours[2]
    first = ServiceProcess(service_env, tmp_path / "first.log")
    processes.append(first)
    await first.wait_ready()
    [order_id] = await pay_orders(first.url, 1)
    await wait_all_active(first.url, [order_id])

    action_id = await post_action(first.url, order_id, body)
    if moment == "answer_in_flight":
        await wait_counted(control, kind, 1)  # DO started it; its answer is 300 ms away
    first.kill()

    if moment == "answer_in_flight":
        # The window the crash rule is for: an intent, and no DO action id.
        async with engine.connect() as connection:
            row = (
                (
                    await connection.execute(
                        select(ServerAction.__table__).where(
                            ServerAction.__table__.c.id == uuid.UUID(action_id)
                        )
                    )
                )
                .mappings()
                .one()
            )
        assert row["intent_at"] is not None and row["do_action_id"] is None, dict(row)
    second = ServiceProcess(service_env, tmp_path / "second.log")
    processes.append(second)
    await second.wait_ready()

    await wait_completed(second.url, [(order_id, action_id)])
    stats = await do_stats(control)
    assert stats["actions"][kind] == 1, stats["actions"]
    assert sum(stats["actions"].values()) == 1
    assert second.terminate()


@pytest.mark.postgres_only
async def test_two_processes_twenty_actions_one_killed(
    service_env: dict[str, str],
    neighbours: tuple[str, str, httpx.AsyncClient],
    processes: list[ServiceProcess],
    tmp_path: Path,
    engine: AsyncEngine,
) -> None:
    control = neighbours[2]
    replicas = [ServiceProcess(service_env, tmp_path / f"replica-{n}.log") for n in (1, 2)]
    processes.extend(replicas)
    await asyncio.gather(*(replica.wait_ready() for replica in replicas))
    ids = await pay_orders(replicas[0].url, 20)
    try:
        await wait_all_active(replicas[0].url, ids)
    except AssertionError:
        from order_service.provisioning.models import ProvisioningTask

        async with engine.connect() as connection:
            rows = (
                (
                    await connection.execute(
                        select(ProvisioningTask.__table__).where(
                            ProvisioningTask.__table__.c.status != "SUCCESS"
                        )
                    )
                )
                .mappings()
                .all()
            )
        raise AssertionError([dict(r) for r in rows]) from None

    # Half the requests reach each process, as behind a load balancer.
    requested = await asyncio.gather(
        *(
            post_action(replicas[i % 2].url, order_id, {"type": "REBOOT"}, ops=True)
            for i, order_id in enumerate(ids)
        )
    )
    await wait_counted(control, "reboot", 5)
    replicas[0].kill()

    await wait_completed(replicas[1].url, list(zip(ids, requested, strict=True)))
    stats = await do_stats(control)
    assert stats["actions"]["reboot"] == 20, stats["actions"]
    assert replicas[1].terminate()
