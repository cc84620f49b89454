"""The lifecycle scan survives SIGKILL: `order-service serve` killed while suspending.

150 orders whose period ended long ago are due for suspension (two batches
of the scan). The first process is killed as soon as part of them is
suspended; a second process finishes the work. Every order ends SUSPENDED
exactly once with exactly one SHUTDOWN: a batch commits with its history and
its actions or not at all, and what committed is not done again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from mocks.catalog_service.data import IMAGE_UBUNTU_ID, PLAN_BASIC_ID
from order_service.db import utcnow
from order_service.orders.repository import orders_t
from order_service.orders.states import OrderStatus
from tests.integration import test_crash_safety as crash
from tests.lifecycle_helpers import actions_t, history_t

# PostgreSQL only: on SQLite every transaction, the test's reads included,
# takes the database's write lock (BEGIN IMMEDIATE), so the test cannot see
# the first batch commit before the second one does, nor kill in between.
pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

# The crash tests' real neighbours (catalog mock, fake DO), environment and
# process bookkeeping, shared as fixtures.
ServiceProcess = crash.ServiceProcess
neighbours = crash.neighbours
service_env = crash.service_env
processes = crash.processes

ORDERS = 150


async def insert_expired_orders(app: Any, count: int) -> list[uuid.UUID]:
    """ACTIVE orders whose period ended 40 days ago (past SUSPEND_GRACE), written directly.

    The test is about the scan, not about ordering: one INSERT instead of
    750 API calls keeps it quick.
    """
    now = utcnow()
    ids = [uuid.uuid4() for _ in range(count)]
    rows = [
        {
            "id": order_id,
            "user_id": f"crash-user-{n % 7}",
            "plan_id": PLAN_BASIC_ID,
            "plan_name": "Basic 1GB",
            "image_id": IMAGE_UBUNTU_ID,
            "image_name": "Ubuntu 22.04 LTS",
            "duration": "MONTHLY",
            "base_price": 100_000,
            "promo_discount": 10_000,
            "coupon_code": None,
            "coupon_discount": 0,
            "final_price": 90_000,
            "currency": "IDR",
            "status": OrderStatus.ACTIVE.value,
            "do_size_slug": "s-1vcpu-1gb",
            "do_image_slug": "ubuntu-22-04-x64",
            "created_at": now - timedelta(days=71),
            "updated_at": now,
            "paid_at": now - timedelta(days=71),
            "activated_at": now - timedelta(days=70),
            "expires_at": now - timedelta(days=40),
            "cancel_at_period_end": False,
        }
        for n, order_id in enumerate(ids)
    ]
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(insert(orders_t), rows)
    return ids


async def suspended_count(app: Any) -> int:
    async with app.state.sessionmaker() as session:
        statement = select(func.count()).where(orders_t.c.status == "SUSPENDED")
        return (await session.execute(statement)).scalar_one()


async def test_sigkill_while_suspending_then_restart(
    app: Any,
    service_env: dict[str, str],
    processes: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    ids = await insert_expired_orders(app, ORDERS)
    env = {
        **service_env,
        "PROVISIONING_ENABLED": "false",  # no droplet work: the action rows are the record
        "LIFECYCLE_SCAN_INTERVAL": "PT0.2S",
        "UNPAID_ORDER_TTL": "0",
    }
    first = ServiceProcess(env, tmp_path / "first.log")
    processes.append(first)
    deadline = time.monotonic() + 30
    while (done := await suspended_count(app)) == 0:
        assert first.process.poll() is None, first.log_path.read_text()[-2000:]
        assert time.monotonic() < deadline, "the first process never suspended anything"
        await asyncio.sleep(0.02)
    first.kill()
    killed_at = await suspended_count(app)
    # The first batch had committed, the second was under way.
    assert done <= killed_at < ORDERS

    second = ServiceProcess(env, tmp_path / "second.log")
    processes.append(second)
    await second.wait_ready()
    deadline = time.monotonic() + 60
    while await suspended_count(app) < ORDERS:
        assert time.monotonic() < deadline, f"{await suspended_count(app)}/{ORDERS} suspended"
        await asyncio.sleep(0.1)
    assert second.terminate()

    async with app.state.sessionmaker() as session:
        suspensions = Counter(
            (
                await session.execute(
                    select(history_t.c.order_id).where(history_t.c.new_status == "SUSPENDED")
                )
            ).scalars()
        )
        shutdowns = Counter(
            (
                await session.execute(
                    select(actions_t.c.order_id).where(actions_t.c.type == "SHUTDOWN")
                )
            ).scalars()
        )
    assert suspensions == dict.fromkeys(ids, 1)
    assert shutdowns == dict.fromkeys(ids, 1)
