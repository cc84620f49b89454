"""`order-service seed` fills a database with orders in every resting state."""

from __future__ import annotations

from typing import Any

import httpx

from order_service.seed import SCENARIOS, seed
from tests.conftest import INTERNAL, auth


async def test_seed_writes_every_state_with_history(
    database: Any, client: httpx.AsyncClient
) -> None:
    lines = await seed(database.url, ["seed-user"])

    assert len(lines) == len(SCENARIOS)
    listing = await client.get("/api/v1/internal/orders", params={"limit": 100}, headers=INTERNAL)
    statuses = sorted(order["status"] for order in listing.json()["data"])
    assert statuses == sorted(
        [
            *("PENDING_PAYMENT", "PENDING_PAYMENT", "CANCELED", "PROVISIONING", "ACTIVE", "FAILED"),
            *("ACTIVE", "ACTIVE", "SUSPENDED", "TERMINATED"),  # after ACTIVE (v1.1)
        ]
    )
    for order in listing.json()["data"]:
        detail = await client.get(f"/api/v1/internal/orders/{order['id']}", headers=INTERNAL)
        history = detail.json()["data"]["statusHistory"]
        assert history[0]["previousStatus"] == ""
        # The last row is the status, or an event that left it as it was.
        events = {"PAYMENT_FAILED", "RENEWED", "CANCEL_SCHEDULED"}
        assert history[-1]["newStatus"] in {order["status"], *events}


async def test_seed_writes_the_lifecycle_samples(database: Any, client: httpx.AsyncClient) -> None:
    lines = await seed(database.url, ["seed-user"])
    by_scenario = {line.split()[-1]: line.split()[0] for line in lines}

    async def detail(scenario: str) -> dict[str, Any]:
        response = await client.get(
            f"/api/v1/internal/orders/{by_scenario[scenario]}", headers=INTERNAL
        )
        return response.json()["data"]

    active = await detail("ACTIVE")
    assert active["activatedAt"] is not None and active["expiresAt"] > active["activatedAt"]
    assert (await detail("CANCEL_SCHEDULED"))["cancelAtPeriodEnd"] is True
    suspended = await detail("SUSPENDED")
    assert suspended["status"] == "SUSPENDED" and suspended["suspensionReason"] == "EXPIRED"
    assert suspended["expiresAt"] < suspended["suspendedAt"]
    terminated = await detail("TERMINATED")
    assert terminated["terminationReason"] == "ADMIN"
    renewed = await detail("RENEWED")
    assert [e["newStatus"] for e in renewed["statusHistory"]][-1] == "RENEWED"
    response = await client.get(
        f"/api/v1/orders/{by_scenario['RENEWED']}/renewals", headers=auth("seed-user")
    )
    assert [r["status"] for r in response.json()["data"]] == ["PENDING_PAYMENT", "PAID"]
