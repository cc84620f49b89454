"""The customer's server at order time (SPEC section 14): hostname, region, SSH keys, access.

The API alone (no background duty) with the fake DigitalOcean in process, so every
DO request the API makes is counted by the fake itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from mocks.catalog_service.data import PLAN_BASIC_ID, PLAN_BUSINESS_ID
from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from order_service import clock
from order_service.orders.models import Order
from tests.conftest import INTERNAL, auth, make_settings
from tests.helpers import assert_error, order_body
from tests.integration.test_ssh_keys_api import added

pytestmark = pytest.mark.usefixtures("fast_do_retries")

ORDERS = "/api/v1/orders"
REGIONS = "/api/v1/regions"


@contextlib.asynccontextmanager
async def api_with_fake_do(
    database_url: str, catalog_app: Any, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """The API with these settings and a fake DO of its own; yields a client and the fake."""
    from order_service.app import create_app

    fake = create_fake_do(FakeConfig())
    settings = make_settings(database_url, digitalocean_api_url="http://do", **overrides)
    app = create_app(
        settings,
        catalog_transport=httpx.ASGITransport(app=catalog_app),
        digitalocean_transport=httpx.ASGITransport(app=fake),
        start_provisioner=False,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client, fake.state.fake


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def api(
    database: Any, catalog_app: Any, clean_db: None, overrides: dict[str, Any]
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    async with api_with_fake_do(database.url, catalog_app, **overrides) as pair:
        yield pair


async def count_orders(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(Order))).scalar_one()


# ------------------------------------------------------------------ the order's fields


async def test_an_order_keeps_hostname_region_and_a_copy_of_the_keys(
    api: tuple[httpx.AsyncClient, Any],
) -> None:
    client, _ = api
    key = await added(client, "ani", name="laptop")
    created = await client.post(
        ORDERS,
        json=order_body(hostname="Web-1.Example.COM", region="blr1", sshKeyIds=[key["id"]]),
        headers=auth("ani"),
    )
    assert created.status_code == 201, created.text
    order = created.json()["data"]
    assert order["hostname"] == "web-1.example.com"
    assert order["region"] == "blr1"
    assert order["access"] == "SSH_KEYS"
    assert order["sshKeys"] == [{"name": "laptop", "fingerprint": key["fingerprint"]}]
    assert order["planChangedAt"] is None
    # The same fields in the owner's read and the ops read; no public key in either
    # (the feed's copy: tests/integration/test_first_access.py).
    mine = (await client.get(f"{ORDERS}/{order['id']}", headers=auth("ani"))).json()["data"]
    ops = (await client.get(f"/api/v1/internal/orders/{order['id']}", headers=INTERNAL)).json()[
        "data"
    ]
    for seen in (mine, ops):
        for field in ("hostname", "region", "access", "sshKeys", "planChangedAt"):
            assert seen[field] == order[field], (field, seen)
        assert "publicKey" not in str(seen) and "ssh-ed25519" not in str(seen)
    # Deleting the key changes no order.
    assert (
        await client.delete(f"/api/v1/ssh-keys/{key['id']}", headers=auth("ani"))
    ).status_code == 204
    again = (await client.get(f"{ORDERS}/{order['id']}", headers=auth("ani"))).json()["data"]
    assert again["sshKeys"] == order["sshKeys"]


async def test_an_order_without_a_region_takes_the_default_and_never_asks_do(
    api: tuple[httpx.AsyncClient, Any],
) -> None:
    client, fake = api
    order = (await client.post(ORDERS, json=order_body(), headers=auth("ani"))).json()["data"]
    assert (order["region"], order["access"], order["hostname"], order["sshKeys"]) == (
        "sgp1",
        "PASSWORD",
        None,
        [],
    )
    assert fake.stats()["requests"] == 0


@pytest.mark.parametrize(
    "hostname", ["-web", "web-", "a..b", "under_score", "x" * 64, "a." * 126 + "ab", ""]
)
async def test_a_bad_hostname_is_a_validation_error(
    api: tuple[httpx.AsyncClient, Any], engine: AsyncEngine, hostname: str
) -> None:
    client, _ = api
    response = await client.post(ORDERS, json=order_body(hostname=hostname), headers=auth("ani"))
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert any(f["field"] == "hostname" for f in error["details"]["fields"]), error
    assert await count_orders(engine) == 0


@pytest.mark.parametrize("overrides", [{"digitalocean_regions": "sgp1,blr1,nyc2,ams3"}])
async def test_a_region_not_offered_for_the_plan_is_invalid_and_writes_nothing(
    api: tuple[httpx.AsyncClient, Any], engine: AsyncEngine
) -> None:
    client, _ = api
    for plan, region in (
        (PLAN_BASIC_ID, "nyc2"),  # DO lists it unavailable
        (PLAN_BASIC_ID, "fra1"),  # offered by DO, not in DIGITALOCEAN_REGIONS
        (PLAN_BUSINESS_ID, "blr1"),  # the size is not offered there
        (PLAN_BASIC_ID, "xyz9"),  # no such region
    ):
        response = await client.post(
            ORDERS, json=order_body(planId=plan, region=region), headers=auth("ani")
        )
        error = assert_error(response, 400, "INVALID_REGION")
        assert error["details"] == {"region": region, "planId": plan}
    assert await count_orders(engine) == 0
    ok = await client.post(ORDERS, json=order_body(region="ams3"), headers=auth("ani"))
    assert ok.status_code == 201 and ok.json()["data"]["region"] == "ams3"


async def test_a_region_while_do_was_never_reached_is_503_and_writes_nothing(
    api: tuple[httpx.AsyncClient, Any], engine: AsyncEngine
) -> None:
    client, fake = api
    fake.update_config({"fail_next": {"regions": 100}})
    response = await client.post(ORDERS, json=order_body(region="sgp1"), headers=auth("ani"))
    assert_error(response, 503, "DIGITALOCEAN_UNAVAILABLE")
    assert await count_orders(engine) == 0
    # Without a region DO is not needed: the order goes through.
    assert (await client.post(ORDERS, json=order_body(), headers=auth("ani"))).status_code == 201


async def test_another_users_key_is_refused_at_order_time(
    api: tuple[httpx.AsyncClient, Any], engine: AsyncEngine
) -> None:
    client, _ = api
    mine = await added(client, "ani")
    theirs = await added(client, "budi")
    response = await client.post(
        ORDERS, json=order_body(sshKeyIds=[mine["id"], theirs["id"]]), headers=auth("ani")
    )
    error = assert_error(response, 400, "INVALID_SSH_KEY")
    assert error["details"] == {"sshKeyId": theirs["id"]}
    malformed = await client.post(ORDERS, json=order_body(sshKeyIds=["nope"]), headers=auth("ani"))
    assert_error(malformed, 400, "VALIDATION_ERROR")
    too_many = await client.post(
        ORDERS, json=order_body(sshKeyIds=[mine["id"]] * 11), headers=auth("ani")
    )
    assert_error(too_many, 400, "VALIDATION_ERROR")
    assert await count_orders(engine) == 0


@pytest.mark.parametrize("overrides", [{"secrets_key": None}])
async def test_without_secrets_key_only_key_orders_are_taken(
    api: tuple[httpx.AsyncClient, Any], engine: AsyncEngine
) -> None:
    client, _ = api
    refused = await client.post(ORDERS, json=order_body(), headers=auth("ani"))
    assert_error(refused, 409, "SECRETS_KEY_REQUIRED")
    empty = await client.post(ORDERS, json=order_body(sshKeyIds=[]), headers=auth("ani"))
    assert_error(empty, 409, "SECRETS_KEY_REQUIRED")
    assert await count_orders(engine) == 0
    key = await added(client, "ani")
    taken = await client.post(ORDERS, json=order_body(sshKeyIds=[key["id"]]), headers=auth("ani"))
    assert taken.status_code == 201 and taken.json()["data"]["access"] == "SSH_KEYS"


async def test_the_idempotency_key_covers_the_new_fields(
    api: tuple[httpx.AsyncClient, Any],
) -> None:
    client, _ = api
    headers = {**auth("ani"), "Idempotency-Key": "order-with-host"}
    first = await client.post(ORDERS, json=order_body(hostname="a.example"), headers=headers)
    assert first.status_code == 201
    replay = await client.post(ORDERS, json=order_body(hostname="A.example"), headers=headers)
    assert replay.status_code == 201 and replay.json() == first.json()  # same name, any case
    other = await client.post(ORDERS, json=order_body(hostname="b.example"), headers=headers)
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    region = await client.post(
        ORDERS, json=order_body(hostname="a.example", region="sgp1"), headers=headers
    )
    assert_error(region, 422, "IDEMPOTENCY_KEY_REUSED")


# ------------------------------------------------------------------ GET /api/v1/regions


@pytest.mark.parametrize("overrides", [{"digitalocean_catalog_ttl": "PT10M"}])
async def test_regions_of_a_plan_sorted_filtered_and_cached(
    api: tuple[httpx.AsyncClient, Any],
) -> None:
    client, fake = api
    basic = await client.get(REGIONS, params={"planId": PLAN_BASIC_ID}, headers=auth("ani"))
    assert basic.status_code == 200, basic.text
    slugs = [region["slug"] for region in basic.json()["data"]]
    assert slugs == sorted(slugs) and "sgp1" in slugs and "blr1" in slugs
    assert "nyc2" not in slugs  # unavailable at DO
    assert all(set(region) == {"slug", "name"} for region in basic.json()["data"])
    business = await client.get(REGIONS, params={"planId": PLAN_BUSINESS_ID}, headers=auth("ani"))
    assert "blr1" not in [region["slug"] for region in business.json()["data"]]
    # One fetch of DO's lists for all of that, and none while the copy is fresh.
    assert (fake.stats()["by_route"]["regions"], fake.stats()["by_route"]["sizes"]) == (1, 1)
    # DO down past the TTL: the last lists.
    fake.update_config({"fail_next": {"regions": 100}})
    clock.advance(timedelta(minutes=11))
    stale = await client.get(REGIONS, params={"planId": PLAN_BASIC_ID}, headers=auth("ani"))
    assert stale.status_code == 200 and stale.json() == basic.json()


@pytest.mark.parametrize("overrides", [{"digitalocean_regions": "sgp1,blr1,nyc2"}])
async def test_regions_are_limited_to_digitalocean_regions(
    api: tuple[httpx.AsyncClient, Any],
) -> None:
    client, _ = api
    response = await client.get(REGIONS, params={"planId": PLAN_BASIC_ID}, headers=auth("ani"))
    assert [region["slug"] for region in response.json()["data"]] == ["blr1", "sgp1"]


async def test_regions_errors(api: tuple[httpx.AsyncClient, Any]) -> None:
    client, fake = api
    unknown = "a1000000-0000-4000-8000-0000000000ff"
    assert_error(
        await client.get(REGIONS, params={"planId": unknown}, headers=auth("ani")),
        400,
        "INVALID_PLAN",
    )
    assert_error(
        await client.get(REGIONS, params={"planId": "a1000000-0000-4000-8000-000000000004"},
                         headers=auth("ani")),
        400,
        "INVALID_PLAN",
    )  # fmt: skip
    assert_error(await client.get(REGIONS, headers=auth("ani")), 400, "VALIDATION_ERROR")
    assert_error(
        await client.get(REGIONS, params={"planId": "x"}, headers=auth("ani")),
        400,
        "VALIDATION_ERROR",
    )
    assert_error(await client.get(REGIONS, params={"planId": PLAN_BASIC_ID}), 401, "UNAUTHORIZED")
    fake.update_config({"fail_next": {"regions": 100}})
    never = await client.get(REGIONS, params={"planId": PLAN_BASIC_ID}, headers=auth("ani"))
    assert_error(never, 503, "DIGITALOCEAN_UNAVAILABLE")


async def test_regions_when_catalog_is_down_is_503(database: Any, clean_db: None) -> None:
    class Down(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

    from order_service.app import create_app

    app = create_app(
        make_settings(database.url, digitalocean_api_url="http://do"),
        catalog_transport=Down(),
        digitalocean_transport=httpx.ASGITransport(app=create_fake_do(FakeConfig())),
        start_provisioner=False,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            response = await client.get(
                REGIONS, params={"planId": PLAN_BASIC_ID}, headers=auth("ani")
            )
    assert_error(response, 503, "CATALOG_SERVICE_UNAVAILABLE")


# ------------------------------------------------------------------ credentials before ACTIVE


async def test_credentials_before_active_and_of_others(api: tuple[httpx.AsyncClient, Any]) -> None:
    client, _ = api
    order = (await client.post(ORDERS, json=order_body(), headers=auth("ani"))).json()["data"]
    path = f"{ORDERS}/{order['id']}/credentials"
    error = assert_error(await client.get(path, headers=auth("ani")), 409, "ORDER_STATUS_CONFLICT")
    assert error["details"] == {"currentStatus": "PENDING_PAYMENT"}
    assert_error(await client.get(path, headers=auth("budi")), 403, "ORDER_ACCESS_DENIED")
    assert_error(await client.get(path), 401, "UNAUTHORIZED")
    missing = f"{ORDERS}/a1000000-0000-4000-8000-0000000000ff/credentials"
    assert_error(await client.get(missing, headers=auth("ani")), 404, "ORDER_NOT_FOUND")
    assert_error(await client.get(f"{ORDERS}/nope/credentials", headers=auth("ani")), 404,
                 "ORDER_NOT_FOUND")  # fmt: skip
