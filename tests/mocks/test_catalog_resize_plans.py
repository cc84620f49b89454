"""The catalog mock's plans for plan changes (SPEC section 15) agree with the fake DO.

Each plan maps to a size of the fake DigitalOcean's catalogue with the same
disk, CPU and memory, and the plans cover the cases plan changes need.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mocks.catalog_service import create_app
from mocks.catalog_service.data import (
    PLAN_BASIC_ID,
    PLAN_BUSINESS_ID,
    PLAN_CPU_ID,
    PLAN_IDS,
    PLAN_MINI_ID,
    PLAN_STANDARD_ID,
    RESIZE_PLAN_IDS,
)
from mocks.digitalocean import FakeConfig
from mocks.digitalocean.catalogue import SIZE_SLUGS, size_spec
from mocks.digitalocean.offerings import offers


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
        yield client


async def plan(client: httpx.AsyncClient, plan_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/catalog/plans/{plan_id}")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def durations(plan_json: dict[str, Any]) -> set[str]:
    return {p["duration"] for p in plan_json["pricings"] if p["isActive"]}


async def test_every_plan_is_a_fake_do_size_with_its_disk(client: httpx.AsyncClient) -> None:
    assert not set(RESIZE_PLAN_IDS) & set(PLAN_IDS)
    for plan_id in (*PLAN_IDS, *RESIZE_PLAN_IDS):
        served = await plan(client, plan_id)
        slug = served["providerSizeSlug"]
        assert slug in SIZE_SLUGS, (plan_id, slug)
        memory, vcpus, disk = size_spec(slug)
        assert (served["diskGb"], served["cpu"], served["memoryMb"]) == (disk, vcpus, memory)


async def test_the_resize_plans_cover_the_plan_change_cases(client: httpx.AsyncClient) -> None:
    basic, standard = await plan(client, PLAN_BASIC_ID), await plan(client, PLAN_STANDARD_ID)
    mini, cpu = await plan(client, PLAN_MINI_ID), await plan(client, PLAN_CPU_ID)
    business = await plan(client, PLAN_BUSINESS_ID)
    for served in (mini, cpu, business):
        assert served["isActive"] and served["promos"] == []
        assert durations(served) == {"MONTHLY", "YEARLY"} == durations(basic)

    # An upgrade that grows the disk, within the same durations.
    assert durations(standard) == durations(basic)
    assert standard["diskGb"] > basic["diskGb"]
    # Less disk than Basic: DISK_TOO_SMALL.
    assert mini["diskGb"] < basic["diskGb"]
    # The same disk with more CPU and RAM: a resize with disk false.
    assert cpu["diskGb"] == basic["diskGb"]
    assert cpu["cpu"] > basic["cpu"] and cpu["memoryMb"] > basic["memoryMb"]
    # s-4vcpu-8gb is not offered in blr1 by the fake's defaults, and is in sgp1.
    assert business["providerSizeSlug"] == "s-4vcpu-8gb"
    assert not offers(FakeConfig(), "blr1", "s-4vcpu-8gb")
    assert offers(FakeConfig(), "sgp1", "s-4vcpu-8gb")


async def test_resize_plan_prices(client: httpx.AsyncClient) -> None:
    expected = {PLAN_MINI_ID: 60000, PLAN_CPU_ID: 250000, PLAN_BUSINESS_ID: 500000}
    for plan_id, monthly in expected.items():
        prices = {p["duration"]: p["price"] for p in (await plan(client, plan_id))["pricings"]}
        assert prices == {"MONTHLY": monthly, "YEARLY": monthly * 10}
    assert (await plan(client, PLAN_MINI_ID))["description"] == "1 vCPU, 512 MB RAM, 10 GB SSD"
