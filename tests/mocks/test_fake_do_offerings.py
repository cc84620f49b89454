"""The fake DigitalOcean API's regions and sizes: listings, knobs, and refused creates."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mocks.digitalocean.catalogue import REGION_SLUGS, SIZE_SLUGS, size_spec
from tests.mocks.fake_do import AUTH, ClientFactory, droplet_body, stats

NOT_IN_REGION = {"id": "unprocessable_entity", "message": "Size is not available in this region."}


async def everything(client: httpx.AsyncClient, what: str) -> dict[str, dict[str, Any]]:
    body = (await client.get(f"/v2/{what}?per_page=200", headers=AUTH)).json()
    return {row["slug"]: row for row in body[what]}


async def try_create(client: httpx.AsyncClient, region: str, size: str) -> httpx.Response:
    body = droplet_body(region=region, size=size)
    return await client.post("/v2/droplets", json=body, headers=AUTH)


async def test_regions_by_default(make_client: ClientFactory) -> None:
    client = make_client()
    response = await client.get("/v2/regions", headers=AUTH)
    assert response.status_code == 200 and "ratelimit-remaining" in response.headers
    body = response.json()
    assert body["meta"] == {"total": 12} and body["links"] == {"pages": {}}
    regions = {row["slug"]: row for row in body["regions"]}
    assert list(regions) == list(REGION_SLUGS)
    assert set(regions["sgp1"]) == {"slug", "name", "sizes", "available", "features"}
    assert regions["sgp1"]["name"] == "Singapore 1"
    # sgp1, the service's default region, offers every size.
    assert regions["sgp1"]["sizes"] == list(SIZE_SLUGS) and regions["sgp1"]["available"]
    # blr1 lacks one size; nyc2 is unavailable and lists no sizes.
    assert regions["blr1"]["sizes"] == [s for s in SIZE_SLUGS if s != "s-4vcpu-8gb"]
    assert regions["nyc2"]["available"] is False and regions["nyc2"]["sizes"] == []
    assert sum(not row["available"] for row in regions.values()) == 1
    assert (await stats(client))["by_route"]["regions"] == 1


async def test_sizes_by_default(make_client: ClientFactory) -> None:
    client = make_client()
    body = (await client.get("/v2/sizes", headers=AUTH)).json()
    assert body["meta"] == {"total": len(SIZE_SLUGS)}
    sizes = {row["slug"]: row for row in body["sizes"]}
    assert list(sizes) == list(SIZE_SLUGS)
    basic = sizes["s-1vcpu-1gb"]
    assert basic == {
        "slug": "s-1vcpu-1gb",
        "memory": 1024,
        "vcpus": 1,
        "disk": 25,
        "transfer": 1.0,
        "price_monthly": 6.0,
        "price_hourly": 0.00893,
        "regions": [r for r in REGION_SLUGS if r != "nyc2"],
        "available": True,
        "description": "Basic",
    }
    for slug, size in sizes.items():
        assert (size["memory"], size["vcpus"], size["disk"]) == size_spec(slug)
    assert "blr1" not in sizes["s-4vcpu-8gb"]["regions"]
    assert "sgp1" in sizes["s-4vcpu-8gb"]["regions"]
    assert (await stats(client))["by_route"]["sizes"] == 1


async def test_regions_and_sizes_are_paged(make_client: ClientFactory) -> None:
    client = make_client()
    first = (await client.get("/v2/regions?per_page=5", headers=AUTH)).json()
    assert len(first["regions"]) == 5 and first["meta"] == {"total": 12}
    assert first["links"]["pages"] == {
        "next": "http://do/v2/regions?page=2&per_page=5",
        "last": "http://do/v2/regions?page=3&per_page=5",
    }
    last = (await client.get(first["links"]["pages"]["last"], headers=AUTH)).json()
    assert [r["slug"] for r in last["regions"]] == list(REGION_SLUGS[10:])
    sizes = (await client.get("/v2/sizes?page=2&per_page=3", headers=AUTH)).json()
    assert [s["slug"] for s in sizes["sizes"]] == list(SIZE_SLUGS[3:6])
    assert (await client.get("/v2/sizes?per_page=x", headers=AUTH)).status_code == 422


async def test_knobs_change_the_listings_at_run_time(make_client: ClientFactory) -> None:
    client = make_client()
    await client.post(
        "/_fake/config",
        json={"unavailable_regions": ["ams3"], "sizes_missing": {"c-2": ["sgp1", "fra1"]}},
    )
    regions = await everything(client, "regions")
    assert regions["nyc2"]["available"] and "c-2" not in regions["sgp1"]["sizes"]
    assert not regions["ams3"]["available"] and regions["ams3"]["sizes"] == []
    sizes = await everything(client, "sizes")
    assert "blr1" in sizes["s-4vcpu-8gb"]["regions"]  # the default was replaced
    assert set(REGION_SLUGS) - set(sizes["c-2"]["regions"]) == {"sgp1", "fra1", "ams3"}

    # A size offered nowhere is listed as unavailable.
    await client.post("/_fake/config", json={"sizes_missing": {"c-2": list(REGION_SLUGS)}})
    c2 = (await everything(client, "sizes"))["c-2"]
    assert c2["regions"] == [] and c2["available"] is False


@pytest.mark.parametrize("kind", ["regions", "sizes"])
async def test_fail_next_for_regions_and_sizes(make_client: ClientFactory, kind: str) -> None:
    client = make_client()
    await client.post("/_fake/config", json={"fail_next": {kind: 1}})
    assert (await client.get(f"/v2/{kind}", headers=AUTH)).status_code == 500
    assert (await client.get(f"/v2/{kind}", headers=AUTH)).status_code == 200
    assert (await client.get(f"/v2/{kind}")).status_code == 401


async def test_create_where_the_size_or_region_is_not_offered(make_client: ClientFactory) -> None:
    client = make_client()
    refused = await try_create(client, "blr1", "s-4vcpu-8gb")
    assert refused.status_code == 422 and refused.json() == NOT_IN_REGION
    unavailable = await try_create(client, "nyc2", "s-1vcpu-1gb")
    assert unavailable.status_code == 422
    assert "region" in unavailable.json()["message"]
    assert (await try_create(client, "sgp1", "s-4vcpu-8gb")).status_code == 202
    # Slugs the catalogue does not know are accepted, as before.
    assert (await try_create(client, "xyz9", "s-4vcpu-8gb")).status_code == 202
    assert (await try_create(client, "nyc2", "g-2vcpu-8gb")).status_code == 202
    counters = await stats(client)
    assert (counters["droplets"], counters["unprocessable"]) == (3, 2)

    await client.post("/_fake/config", json={"sizes_missing": {}, "unavailable_regions": []})
    assert (await try_create(client, "blr1", "s-4vcpu-8gb")).status_code == 202
    assert (await try_create(client, "nyc2", "s-1vcpu-1gb")).status_code == 202


async def test_offering_config_validation(make_client: ClientFactory) -> None:
    client = make_client()
    for bad in ({"unavailable_regions": "nyc2"}, {"sizes_missing": {"c-2": "sgp1"}}):
        assert (await client.post("/_fake/config", json=bad)).status_code == 422, bad
