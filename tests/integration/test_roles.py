"""Roles with real processes (SPEC sections 8 and 12): `serve --no-duties` (the API
alone) and `worker` (the duties alone) on one PostgreSQL make one service.

The API-only process is pointed at a DigitalOcean of its own (a second fake,
the "decoy"): any request it sent would be counted there, and the decoy must
end with none. The worker talks to the real fake, which counts the droplets.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from mocks.catalog_service import create_app as create_catalog
from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from order_service.orders.models import Order
from order_service.provisioning.models import ProvisioningTask
from tests.conftest import INTERNAL
from tests.integration.test_crash_safety import (
    ServiceProcess,
    assert_one_droplet_per_order,
    pay_orders,
    processes,  # noqa: F401  (fixture)
    wait_all_active,
    wait_droplets,
)
from tests.integration.test_shared_budget_processes import env_for
from tests.servers import serve

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

API_ONLY = ("serve", "--no-duties")
WORKER = ("worker",)
STORM = 20
SIGTERM_LIMIT_S = 10.0


@dataclass
class Neighbours:
    catalog_url: str
    do_url: str
    decoy_url: str
    do: httpx.AsyncClient  # the fake the worker uses
    decoy: httpx.AsyncClient  # the fake the API-only process is pointed at


@pytest.fixture
async def neighbours() -> AsyncIterator[Neighbours]:
    # As in the crash tests: DO answers in 300 ms and droplets boot in 3 s, so a
    # SIGTERM lands while creates are in flight and droplets are booting.
    fake = create_fake_do(FakeConfig(boot_seconds=3, latency_ms=300))
    async with (
        serve(create_catalog()) as catalog_url,
        serve(fake) as do_url,
        serve(create_fake_do(FakeConfig())) as decoy_url,
        httpx.AsyncClient(base_url=do_url) as do,
        httpx.AsyncClient(base_url=decoy_url) as decoy,
    ):
        yield Neighbours(catalog_url, do_url, decoy_url, do, decoy)


@pytest.fixture
def api_env(database: Any, neighbours: Neighbours, clean_db: None) -> dict[str, str]:
    return env_for(
        database, neighbours.catalog_url, neighbours.decoy_url, PROVISIONING_POLL_INTERVAL_MS="200"
    )


@pytest.fixture
def worker_env(database: Any, neighbours: Neighbours, clean_db: None) -> dict[str, str]:
    return env_for(
        database, neighbours.catalog_url, neighbours.do_url, PROVISIONING_POLL_INTERVAL_MS="200"
    )


async def start(started: list[ServiceProcess], *services: ServiceProcess) -> None:
    started.extend(services)
    await asyncio.gather(*(service.wait_ready(within=30) for service in services))


async def do_requests(fake: httpx.AsyncClient) -> int:
    return int((await fake.get("/_fake/stats")).json()["requests"])


async def order_events(api_url: str, order_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=api_url, headers=INTERNAL) as client:
        response = await client.get(
            "/api/v1/internal/events", params={"orderId": order_id, "limit": 500}
        )
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def samples(metrics_text: str, name: str) -> float:
    """The sum of every sample of the counter `name` (0 when it has none)."""
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == f"{name}_total":
                total += sample.value
    return total


async def test_api_only_and_worker_take_an_order_to_active(
    api_env: dict[str, str],
    worker_env: dict[str, str],
    neighbours: Neighbours,
    processes: list[ServiceProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    api = ServiceProcess(api_env, tmp_path / "api.log", API_ONLY)
    await start(processes, api)
    [order_id] = await pay_orders(api.url, 1)

    # The API alone: the order is paid and waits; nothing reached any DO, and
    # its events are written but not in the feed (the relay is a duty).
    await asyncio.sleep(1.5)
    async with httpx.AsyncClient(base_url=api.url, headers=INTERNAL) as client:
        alone = (await client.get(f"/api/v1/internal/orders/{order_id}")).json()["data"]
    assert alone["status"] == "PROVISIONING"
    assert await order_events(api.url, order_id) == []
    assert await do_requests(neighbours.do) == 0

    worker = ServiceProcess(worker_env, tmp_path / "worker.log", WORKER)
    await start(processes, worker)
    await wait_all_active(api.url, [order_id], within=30)
    await assert_one_droplet_per_order(neighbours.do, [order_id])

    # The feed, served by the API process, stamped by the worker's relay: every
    # change from creation to ACTIVE, in sequence.
    deadline = time.monotonic() + 5
    while "order.active" not in [e["type"] for e in await order_events(api.url, order_id)]:
        assert time.monotonic() < deadline, "order.active never reached the feed"
        await asyncio.sleep(0.1)
    events = await order_events(api.url, order_id)
    types = [event["type"] for event in events]
    assert types[0] == "order.created"
    assert (
        types.index("order.paid") < types.index("order.provisioning") < types.index("order.active")
    )
    sequences = [event["sequence"] for event in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)

    async with (
        httpx.AsyncClient(base_url=worker.url) as on_worker,
        httpx.AsyncClient(base_url=api.url) as on_api,
    ):
        live = await on_worker.get("/api/v1/health")
        assert (live.status_code, live.json()) == (200, {"data": {"status": "ok"}})
        ready = await on_worker.get("/api/v1/health/ready")
        assert (ready.status_code, ready.json()) == (
            200,
            {"data": {"status": "ready", "database": "ok"}},
        )
        assert ready.json() == (await on_api.get("/api/v1/health/ready")).json()
        # The worker serves no API.
        assert (await on_worker.get("/api/v1/orders")).status_code == 404
        worker_metrics = await on_worker.get("/metrics")
        api_metrics = await on_api.get("/metrics")
    assert worker_metrics.status_code == 200
    assert worker_metrics.headers["content-type"].startswith("text/plain")
    # The duties' metrics are in the worker's registry; the API process sent no
    # DO request (none counted, none at its decoy), the worker all of them.
    sent_by_worker = samples(worker_metrics.text, "order_service_digitalocean_requests")
    assert sent_by_worker >= 1
    assert samples(worker_metrics.text, "order_service_status_transitions") >= 1
    assert samples(api_metrics.text, "order_service_digitalocean_requests") == 0
    assert await do_requests(neighbours.decoy) == 0
    assert await do_requests(neighbours.do) == sent_by_worker


async def test_sigterm_of_a_worker_mid_storm_loses_nothing(
    api_env: dict[str, str],
    worker_env: dict[str, str],
    neighbours: Neighbours,
    processes: list[ServiceProcess],  # noqa: F811
    tmp_path: Path,
    engine: AsyncEngine,
) -> None:
    # The default 30 s lease: the second worker finishes the storm well before
    # a lease the first one kept could have expired.
    worker_env = {**worker_env, "PROVISIONING_LEASE_SECONDS": "30"}
    api = ServiceProcess(api_env, tmp_path / "api.log", API_ONLY)
    first = ServiceProcess(worker_env, tmp_path / "worker-1.log", WORKER)
    await start(processes, api, first)
    ids = await pay_orders(api.url, STORM)
    await wait_droplets(neighbours.do, at_least=STORM // 4)

    asked = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(first.process.wait, SIGTERM_LIMIT_S + 5)
    took = time.monotonic() - asked
    log = first.log_path.read_text()
    assert code == 0, log[-2000:]
    assert took < SIGTERM_LIMIT_S, f"the worker took {took:.1f} s to stop"
    assert "provisioning stopped; released" in log

    async with engine.connect() as connection:
        held = await connection.scalar(
            select(func.count())
            .select_from(ProvisioningTask)
            .where(ProvisioningTask.lease_owner.is_not(None))
        )
        unfinished = await connection.scalar(
            select(func.count()).select_from(Order).where(Order.status == "PROVISIONING")
        )
    assert held == 0
    assert unfinished > 0, "the storm was over before the SIGTERM"

    second = ServiceProcess(worker_env, tmp_path / "worker-2.log", WORKER)
    await start(processes, second)
    await wait_all_active(api.url, ids, within=25)
    await assert_one_droplet_per_order(neighbours.do, ids)
    assert await do_requests(neighbours.decoy) == 0
