"""Two real `order-service serve` processes on one PostgreSQL race for an account's last
slots (SPEC section 13): never over a limit, never two droplets for one order.

Two accounts with 3 slots each and 10 paid orders, half sent to each process:
6 become ACTIVE (3 per account at the fake), 4 wait for capacity. A larger
limit at DO, seen by a check, lets 2 more through - still one droplet each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from mocks.catalog_service import create_app as create_catalog
from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from tests.conftest import INTERNAL
from tests.integration.test_crash_safety import (
    ServiceProcess,
    pay_orders,
    processes,  # noqa: F401  (fixture)
)
from tests.integration.test_shared_budget_processes import env_for
from tests.servers import serve

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

SECOND = "second-token-0123456789"


@pytest.fixture
async def neighbours() -> AsyncIterator[tuple[str, str, httpx.AsyncClient]]:
    fake = create_fake_do(
        FakeConfig(
            tokens=["fake-do-token", SECOND],
            droplet_limits={"fake-do-token": 3, SECOND: 3},
            boot_seconds=0.5,
        )
    )
    async with (
        serve(create_catalog()) as catalog_url,
        serve(fake) as do_url,
        httpx.AsyncClient(base_url=do_url) as control,
    ):
        yield catalog_url, do_url, control


async def orders_by_state(url: str, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {"ACTIVE": [], "WAITING": [], "OTHER": []}
    async with httpx.AsyncClient(base_url=url, headers=INTERNAL) as client:
        for order_id in ids:
            order = (await client.get(f"/api/v1/internal/orders/{order_id}")).json()["data"]
            task = order["provisioningTask"] or {}
            if order["status"] == "ACTIVE":
                found["ACTIVE"].append(order)
            elif task.get("errorCode") == "WAITING_FOR_CAPACITY" and not task.get("dropletId"):
                found["WAITING"].append(order)
            else:
                found["OTHER"].append(order)
    return found


async def settle(url: str, ids: list[str], active: int, waiting: int, within: float = 60) -> Any:
    deadline = time.monotonic() + within
    while True:
        found = await orders_by_state(url, ids)
        if len(found["ACTIVE"]) == active and len(found["WAITING"]) == waiting:
            return found
        assert time.monotonic() < deadline, {k: len(v) for k, v in found.items()}
        await asyncio.sleep(0.3)


async def test_two_processes_never_fill_an_accounts_last_slot_twice(
    database: Any,
    neighbours: tuple[str, str, httpx.AsyncClient],
    processes: list[ServiceProcess],  # noqa: F811
    clean_db: None,
    tmp_path: Path,
) -> None:
    catalog_url, do_url, control = neighbours
    env = env_for(
        database,
        catalog_url,
        do_url,
        SECRETS_KEY=Fernet.generate_key().decode(),
        PROVISIONING_POLL_INTERVAL_MS="100",
        PROVISIONING_LEASE_SECONDS="2",
    )
    pair = [ServiceProcess(env, tmp_path / f"replica-{n}.log") for n in (1, 2)]
    processes.extend(pair)
    await asyncio.gather(*(process.wait_ready(within=60) for process in pair))
    async with httpx.AsyncClient(base_url=pair[0].url, headers=INTERNAL) as ops:
        added = await ops.post(
            "/api/v1/internal/do-accounts", json={"name": "second", "token": SECOND}
        )
        assert added.status_code == 201, added.text
        second_id = added.json()["data"]["id"]

    batches = await asyncio.gather(*(pay_orders(process.url, 5) for process in pair))
    ids = [order_id for batch in batches for order_id in batch]

    found = await settle(pair[1].url, ids, active=6, waiting=4)
    accounts = sorted(o["provisioningTask"]["doAccount"] for o in found["ACTIVE"])
    assert accounts == ["default"] * 3 + ["second"] * 3
    stats = (await control.get("/_fake/stats")).json()
    assert stats["accounts"]["fake-do-token"]["droplets"] == 3
    assert stats["accounts"][SECOND]["droplets"] == 3
    assert stats["unprocessable"] == 0  # no create was sent past a limit
    assert stats["max_droplets_per_order_tag"] == 1

    raised = await control.post(f"/_fake/accounts/{SECOND}", json={"droplet_limit": 5})
    raised.raise_for_status()
    async with httpx.AsyncClient(base_url=pair[0].url, headers=INTERNAL) as ops:
        checked = await ops.post(f"/api/v1/internal/do-accounts/{second_id}/check")
        assert checked.json()["data"]["dropletLimit"] == 5

    await settle(pair[1].url, ids, active=8, waiting=2)
    stats = (await control.get("/_fake/stats")).json()
    assert stats["accounts"][SECOND]["droplets"] == 5
    assert stats["max_droplets_per_order_tag"] == 1
    assert all(process.terminate() for process in pair)
