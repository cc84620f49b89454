"""Three real `order-service serve` processes on one PostgreSQL share one DO budget.

The full-size scenario of issue 11 is 300 orders against DO's 250/min with the
budget at 225/min: minutes of wall time. Scaled down here so the storm stays
near a minute and a half, with the same shape: the budget (60/min) sits below
the fake's enforced limit (66/min, the same 10 % headroom as 225 under 250), and
72 orders need more DO requests (a create each, plus the coalesced lookups
before creating and the polls, ~80) than one minute allows. Three processes each keeping their own
60/min would send up to 180/min and collect 429s; sharing one budget, the fake's
busiest rolling minute stays at or under 66 and no 429 is served - also when
one of the three is SIGKILLed mid-storm.

The fake sits behind a thin ASGI wrapper that logs every /v2 arrival and can
answer the next one with 429 + Retry-After (the fake itself has no such switch).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mocks.catalog_service import create_app as create_catalog
from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from tests.conftest import API_KEY, JWT_SECRET, SECRETS_KEY
from tests.integration.test_crash_safety import (
    ServiceProcess,
    assert_one_droplet_per_order,
    pay_orders,
    processes,  # noqa: F401  (fixture)
    wait_all_active,
    wait_droplets,
)
from tests.integration.test_shared_budget import busiest_window
from tests.servers import serve

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

BUDGET_PER_MINUTE = 60
FAKE_PER_MINUTE = 66
ORDERS = 72
RETRY_AFTER_S = 3


class LoggedDO:
    """ASGI wrapper: when each /v2 request arrived, and 429s on demand."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.arrivals: list[float] = []
        self.answer_429 = 0
        self.answered_429: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v2"):
            now = time.monotonic()
            if self.answer_429 > 0:
                self.answer_429 -= 1
                self.answered_429.append(now)
                body = json.dumps(
                    {"id": "too_many_requests", "message": "API Rate limit exceeded."}
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 429,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"retry-after", str(RETRY_AFTER_S).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            self.arrivals.append(now)
        await self.app(scope, receive, send)


@pytest.fixture
async def do_log() -> AsyncIterator[tuple[LoggedDO, str, str, httpx.AsyncClient]]:
    fake = LoggedDO(
        create_fake_do(FakeConfig(boot_seconds=0.5, per_minute=FAKE_PER_MINUTE, per_hour=5000))
    )
    async with (
        serve(create_catalog()) as catalog_url,
        serve(fake) as do_url,
        httpx.AsyncClient(base_url=do_url) as control,
    ):
        yield fake, catalog_url, do_url, control


def env_for(database: Any, catalog_url: str, do_url: str, **extra: str) -> dict[str, str]:
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
        PROVISIONING_POLL_INTERVAL_MS="500",
        PROVISIONING_MAX_ATTEMPTS="600",
        LOG_FORMAT="json",
        MAX_UNPAID_ORDERS_PER_USER="0",  # pay_orders creates all before paying
    )
    env.update(extra)
    return env


async def start_three(env: dict[str, str], tmp_path: Path, started: list[ServiceProcess]) -> None:
    replicas = [ServiceProcess(env, tmp_path / f"replica-{n}.log") for n in (1, 2, 3)]
    started.extend(replicas)
    await asyncio.gather(*(replica.wait_ready(within=60) for replica in replicas))


@pytest.mark.parametrize("kill_one", [False, True], ids=["all-three", "one-sigkilled"])
async def test_three_processes_storm_within_one_budget(
    database: Any,
    do_log: tuple[LoggedDO, str, str, httpx.AsyncClient],
    processes: list[ServiceProcess],  # noqa: F811
    clean_db: None,
    tmp_path: Path,
    kill_one: bool,
) -> None:
    fake, catalog_url, do_url, control = do_log
    env = env_for(
        database,
        catalog_url,
        do_url,
        DIGITALOCEAN_RATE_PER_MINUTE=str(BUDGET_PER_MINUTE),
        DIGITALOCEAN_RATE_PER_HOUR="4750",
        PROVISIONING_LEASE_SECONDS="2",  # a killed process's tasks move on quickly
    )
    await start_three(env, tmp_path, processes)
    # A third of the payments reach each process, at once.
    batches = await asyncio.gather(*(pay_orders(p.url, ORDERS // 3) for p in processes))
    ids = [order_id for batch in batches for order_id in batch]
    if kill_one:
        # Mid-storm: droplets being created and polled, the budget in use. The
        # slice it held counts as sent until it leaves the window.
        await wait_droplets(control, ORDERS // 3, within=60)
        processes[0].kill()
    await wait_all_active(processes[1].url, ids, within=150)

    stats = (await control.get("/_fake/stats")).json()
    busiest = busiest_window(sorted(fake.arrivals), 60.0)
    print(
        f"\n{ORDERS} orders over 3 processes (one killed: {kill_one}): {stats['requests']} DO "
        f"requests, busiest rolling minute {busiest}, 429s {stats['rate_limited']}"
    )
    assert stats["rate_limited"] == 0
    assert busiest <= FAKE_PER_MINUTE
    # The budget was the bottleneck (the scenario means something).
    assert stats["requests"] > BUDGET_PER_MINUTE
    await assert_one_droplet_per_order(control, ids)


async def test_a_retry_after_answered_to_one_process_holds_back_the_others(
    database: Any,
    do_log: tuple[LoggedDO, str, str, httpx.AsyncClient],
    processes: list[ServiceProcess],  # noqa: F811
    clean_db: None,
    tmp_path: Path,
) -> None:
    fake, catalog_url, do_url, control = do_log
    env = env_for(database, catalog_url, do_url, PROVISIONING_POLL_INTERVAL_MS="100")
    await control.post("/_fake/config", json={"boot_seconds": 4})
    await start_three(env, tmp_path, processes)
    batches = await asyncio.gather(*(pay_orders(p.url, 3) for p in processes))
    ids = [order_id for batch in batches for order_id in batch]
    # All nine droplets requested; the three processes now poll them busily.
    await wait_droplets(control, 9, within=60)
    fake.answer_429 = 1
    await wait_all_active(processes[0].url, ids, within=60)

    assert len(fake.answered_429) == 1
    answered = fake.answered_429[0]
    # Requests already on their way when the 429 was answered may still land
    # (grace 0.5 s: the pause is written, then NOTIFY reaches the others).
    during = [t - answered for t in fake.arrivals if answered + 0.5 < t < answered + RETRY_AFTER_S]
    before = [t for t in fake.arrivals if answered - 1.0 < t < answered]
    print(f"\nrequests in the second before the 429: {len(before)}; during the wait: {during}")
    assert len(before) >= 3  # they were really polling when it came
    assert during == []
    await assert_one_droplet_per_order(control, ids)
