"""Deadlines are judged on DO's word (SPEC section 7): a process that was down longer
than the provisioning deadline looks at the droplet once more, and an active
droplet makes the order ACTIVE instead of PROVISIONING_TIMEOUT.

A real `order-service serve` is SIGKILLed right after its create reached DO (the
droplet id is recorded), kept down well past the 2-second deadline while the
droplet boots, then started again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from order_service.provisioning.models import ProvisioningTask
from tests.integration.test_crash_safety import (
    ServiceProcess,
    assert_one_droplet_per_order,
    neighbours,  # noqa: F401  (fixture)
    pay_orders,
    processes,  # noqa: F401  (fixture)
    service_env,  # noqa: F401  (fixture)
    wait_all_active,
)

pytestmark = pytest.mark.slow

DEADLINE_S = 2.0  # 200 ms x 10 attempts


async def wait_recorded(engine: Any, order_id: str, within: float = 20) -> None:
    table = ProvisioningTask.__table__
    query = select(table.c.droplet_id).where(table.c.order_id == uuid.UUID(order_id))
    deadline = time.monotonic() + within
    while True:
        async with engine.connect() as connection:
            if (await connection.execute(query)).scalar_one_or_none() is not None:
                return
        assert time.monotonic() < deadline, "the droplet was never recorded"
        await asyncio.sleep(0.02)


async def test_down_longer_than_the_deadline_then_back_finds_the_droplet_active(
    service_env: dict[str, str],  # noqa: F811
    neighbours: tuple[str, str, httpx.AsyncClient],  # noqa: F811
    processes: list[ServiceProcess],  # noqa: F811
    tmp_path: Path,
    engine: Any,
) -> None:
    env = {**service_env, "PROVISIONING_MAX_ATTEMPTS": "10"}  # 200 ms x 10: a 2 s deadline
    first = ServiceProcess(env, tmp_path / "first.log")
    processes.append(first)
    await first.wait_ready()
    [order_id] = await pay_orders(first.url, 1)
    await wait_recorded(engine, order_id)

    first.kill()
    # The fake boots the droplet in 3 s; we stay away for twice the deadline and more.
    await asyncio.sleep(DEADLINE_S * 2 + 3)
    second = ServiceProcess(env, tmp_path / "second.log")
    processes.append(second)
    await second.wait_ready()

    await wait_all_active(second.url, [order_id], within=30)
    await assert_one_droplet_per_order(neighbours[2], [order_id])
    assert second.terminate()
