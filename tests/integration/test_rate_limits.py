"""A payment storm against the fake DigitalOcean enforcing DO's real limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from tests.conftest import INTERNAL, auth
from tests.helpers import order_body
from tests.integration.test_provisioning import running_service
from tests.servers import serve

pytestmark = pytest.mark.slow

STORM = 100


@pytest.fixture
async def fake_do_url() -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    fake = create_fake_do(FakeConfig(boot_seconds=2, per_minute=250, per_hour=5000))
    async with serve(fake) as url, httpx.AsyncClient(base_url=url) as control:
        yield url, control


async def test_hundred_orders_paid_at_once_stay_within_do_limits(
    database: Any,
    fake_do_url: tuple[str, httpx.AsyncClient],
    catalog_app: Any,
    clean_db: None,
) -> None:
    url, control = fake_do_url
    async with running_service(
        database.url, url, catalog_app, provisioning_poll_interval_ms=500
    ) as service:
        created = await asyncio.gather(
            *(
                service.post("/api/v1/orders", json=order_body(), headers=auth(f"storm-{i}"))
                for i in range(STORM)
            )
        )
        ids = [response.json()["data"]["id"] for response in created]
        started = time.monotonic()
        paid = await asyncio.gather(
            *(
                service.post(
                    f"/api/v1/internal/orders/{order_id}/payment-status",
                    json={"status": "PAID"},
                    headers=INTERNAL,
                )
                for order_id in ids
            )
        )
        assert all(response.status_code == 200 for response in paid)

        while True:
            listing = await service.get(
                "/api/v1/internal/orders",
                params={"status": "ACTIVE", "limit": 100},
                headers=INTERNAL,
            )
            if listing.json()["meta"]["total"] == STORM:
                break
            assert time.monotonic() - started < 60, listing.json()["meta"]
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started

    stats = (await control.get("/_fake/stats")).json()
    per_droplet = stats["requests"] / STORM
    print(
        f"\n{STORM} orders: all ACTIVE in {elapsed:.1f}s; DO requests {stats['requests']} "
        f"({per_droplet:.2f} per droplet: {stats['by_route']}); 429s served {stats['rate_limited']}"
    )
    assert stats["rate_limited"] == 0
    assert stats["max_droplets_per_order_tag"] == 1
    assert stats["droplets"] == STORM
    assert per_droplet <= 3
