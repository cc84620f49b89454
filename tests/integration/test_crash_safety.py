"""Crash safety with real processes: `order-service serve` killed with SIGKILL
while droplets boot, then started again (or left to a second replica).

Whatever happens, every paid order ends ACTIVE with exactly one droplet, as
counted by the fake DigitalOcean itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from mocks.catalog_service import create_app as create_catalog
from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from tests.conftest import API_KEY, INTERNAL, JWT_SECRET, SECRETS_KEY, auth
from tests.helpers import order_body
from tests.servers import free_port, serve

pytestmark = pytest.mark.slow

ORDERS = 20


class ServiceProcess:
    """One `python -m order_service serve` (or `args`, e.g. `worker`) with its own
    port (PORT, or WORKER_PORT for a worker) and log file."""

    def __init__(
        self, env: dict[str, str], log_path: Path, args: Sequence[str] = ("serve",)
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - argv built by the tests
            [sys.executable, "-m", "order_service", *args],
            env={**env, "PORT": str(self.port), "WORKER_PORT": str(self.port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, within: float = 20) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.url) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"service exited: {self.log_path.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/api/v1/health/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise AssertionError(f"service not ready: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> bool:
        """SIGTERM; True when the process shut down gracefully within 15 s.

        uvicorn re-raises the signal after its graceful shutdown, so the exit
        status is "terminated by SIGTERM"; the log says whether the shutdown
        ran to completion.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise
        else:
            code = self.process.returncode
        self._log.flush()
        log = self.log_path.read_text()
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in log

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


@pytest.fixture
async def neighbours() -> AsyncIterator[tuple[str, str, httpx.AsyncClient]]:
    """The mock catalog and the fake DO, both over real HTTP on loopback."""
    # Slow answers (300 ms) so the kill lands while creates are in flight: DO
    # builds those droplets, but their ids never reach the killed process.
    fake = create_fake_do(FakeConfig(boot_seconds=3, latency_ms=300))
    async with (
        serve(create_catalog()) as catalog_url,
        serve(fake) as do_url,
        httpx.AsyncClient(base_url=do_url) as control,
    ):
        yield catalog_url, do_url, control


@pytest.fixture
def service_env(
    database: Any, neighbours: tuple[str, str, httpx.AsyncClient], clean_db: None
) -> dict[str, str]:
    catalog_url, do_url, _ = neighbours
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV"))}
    env.update(
        DATABASE_URL=database.url,
        HOST="127.0.0.1",
        JWT_ALGORITHM="HS256",
        JWT_SECRET=JWT_SECRET,
        SECRETS_KEY=SECRETS_KEY,
        INTERNAL_API_KEY=API_KEY,
        CATALOG_SERVICE_URL=catalog_url,
        DIGITALOCEAN_API_URL=do_url,
        DIGITALOCEAN_API_TOKEN="fake-do-token",
        PROVISIONING_POLL_INTERVAL_MS="200",
        PROVISIONING_MAX_ATTEMPTS="300",
        PROVISIONING_LEASE_SECONDS="2",
        LOG_FORMAT="json",
    )
    return env


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.close()


async def pay_orders(url: str, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        ids = []
        for i in range(count):
            created = await client.post(
                "/api/v1/orders", json=order_body(), headers=auth(f"crash-user-{i % 3}")
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["data"]["id"])
        paid = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/internal/orders/{order_id}/payment-status",
                    json={"status": "PAID"},
                    headers=INTERNAL,
                )
                for order_id in ids
            )
        )
        assert all(response.status_code == 200 for response in paid)
        return ids


async def wait_droplets(control: httpx.AsyncClient, at_least: int, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while (await control.get("/_fake/stats")).json()["droplets"] < at_least:
        assert time.monotonic() < deadline, "droplets were not requested in time"
        await asyncio.sleep(0.05)


async def wait_all_active(url: str, ids: list[str], within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url, headers=INTERNAL) as client:
        while True:
            listing = await client.get(
                "/api/v1/internal/orders", params={"status": "ACTIVE", "limit": 100}
            )
            active = {order["id"] for order in listing.json()["data"]}
            if active >= set(ids):
                return
            if time.monotonic() > deadline:
                failed = await client.get("/api/v1/internal/orders", params={"status": "FAILED"})
                raise AssertionError(
                    f"{len(active)}/{len(ids)} ACTIVE; FAILED: {failed.json()['data'][:2]}"
                )
            await asyncio.sleep(0.2)


async def assert_one_droplet_per_order(control: httpx.AsyncClient, ids: list[str]) -> None:
    stats = (await control.get("/_fake/stats")).json()
    assert stats["orders_with_multiple_droplets"] == []
    assert stats["max_droplets_per_order_tag"] == 1
    assert all(stats["droplets_per_tag"].get(f"order-{i}") == 1 for i in ids)
    assert stats["droplets"] == len(ids)


async def test_sigkill_while_booting_then_restart(
    service_env: dict[str, str],
    neighbours: tuple[str, str, httpx.AsyncClient],
    processes: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    control = neighbours[2]
    first = ServiceProcess(service_env, tmp_path / "first.log")
    processes.append(first)
    await first.wait_ready()
    ids = await pay_orders(first.url, ORDERS)
    await wait_droplets(control, at_least=ORDERS // 4)

    first.kill()  # droplets are booting (3 s), some maybe not even requested yet
    second = ServiceProcess(service_env, tmp_path / "second.log")
    processes.append(second)
    await second.wait_ready()

    await wait_all_active(second.url, ids)
    await assert_one_droplet_per_order(control, ids)
    assert second.terminate()  # SIGTERM: graceful, leases released


@pytest.mark.postgres_only
async def test_two_replicas_one_killed(
    service_env: dict[str, str],
    neighbours: tuple[str, str, httpx.AsyncClient],
    processes: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    control = neighbours[2]
    replicas = [ServiceProcess(service_env, tmp_path / f"replica-{n}.log") for n in (1, 2)]
    processes.extend(replicas)
    await asyncio.gather(*(replica.wait_ready() for replica in replicas))
    # Half the payments reach each replica, as behind a load balancer.
    ids = [
        *(await pay_orders(replicas[0].url, ORDERS // 2)),
        *(await pay_orders(replicas[1].url, ORDERS // 2)),
    ]
    await wait_droplets(control, at_least=ORDERS // 2)

    replicas[0].kill()

    await wait_all_active(replicas[1].url, ids)
    await assert_one_droplet_per_order(control, ids)
    assert replicas[1].terminate()


async def test_sigterm_releases_leases_and_exits_promptly(
    service_env: dict[str, str],
    neighbours: tuple[str, str, httpx.AsyncClient],
    processes: list[ServiceProcess],
    tmp_path: Path,
    engine: Any,
) -> None:
    from sqlalchemy import func, select

    from order_service.provisioning.models import ProvisioningTask

    service = ServiceProcess(service_env, tmp_path / "term.log")
    processes.append(service)
    await service.wait_ready()
    await pay_orders(service.url, 5)
    await wait_droplets(neighbours[2], at_least=5)

    started = time.monotonic()
    assert service.terminate()
    assert time.monotonic() - started < 10

    async with engine.connect() as connection:
        held = await connection.execute(
            select(func.count())
            .select_from(ProvisioningTask)
            .where(ProvisioningTask.lease_owner.is_not(None))
        )
        assert held.scalar_one() == 0
