"""`order-service seed` fills a database with orders in every resting state."""

from __future__ import annotations

from typing import Any

import httpx

from order_service.seed import SCENARIOS, seed
from tests.conftest import INTERNAL


async def test_seed_writes_every_state_with_history(
    database: Any, client: httpx.AsyncClient
) -> None:
    lines = await seed(database.url, ["seed-user"])

    assert len(lines) == len(SCENARIOS)
    listing = await client.get("/api/v1/internal/orders", params={"limit": 100}, headers=INTERNAL)
    statuses = sorted(order["status"] for order in listing.json()["data"])
    assert statuses == sorted(
        ["PENDING_PAYMENT", "PENDING_PAYMENT", "CANCELED", "PROVISIONING", "ACTIVE", "FAILED"]
    )
    for order in listing.json()["data"]:
        detail = await client.get(f"/api/v1/internal/orders/{order['id']}", headers=INTERNAL)
        history = detail.json()["data"]["statusHistory"]
        assert history[0]["previousStatus"] == ""
        assert history[-1]["newStatus"] in {order["status"], "PAYMENT_FAILED"}
