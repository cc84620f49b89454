"""The catalog-service mock serves exactly the contract the order service relies on."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mocks.catalog_service import create_app
from mocks.catalog_service.data import (
    COUPON_CODES,
    IMAGE_DEBIAN_ID,
    IMAGE_DOCKER_ID,
    IMAGE_IDS,
    IMAGE_INACTIVE_ID,
    IMAGE_NOT_ALLOWED_ID,
    IMAGE_UBUNTU_ID,
    PLAN_BAD_PRICE_ID,
    PLAN_BASIC_ID,
    PLAN_IDS,
    PLAN_INACTIVE_ID,
    PLAN_NO_DISPLAY_NAME_ID,
    PLAN_PRO_ID,
    PLAN_STANDARD_ID,
    PROMO_BASIC_EXPIRED_ID,
    PROMO_BASIC_INACTIVE_ID,
    PROMO_BASIC_PERCENT_ID,
)

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"
PLAN_KEYS = {
    "id",
    "name",
    "displayName",
    "description",
    "cpu",
    "memoryMb",
    "diskGb",
    "bandwidthTb",
    "provider",
    "providerSizeSlug",
    "isActive",
    "allowedImageIds",
    "pricings",
    "promos",
}


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://catalog")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client(create_app()) as http:
        yield http


async def _plan(client: httpx.AsyncClient, plan_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/catalog/plans/{plan_id}")
    assert response.status_code == 200, response.text
    plan: dict[str, Any] = response.json()["data"]
    return plan


async def _validate(
    client: httpx.AsyncClient, code: str, amount: int, plan_id: str = PLAN_BASIC_ID
) -> httpx.Response:
    body = {"code": code, "planId": plan_id, "userId": "user-1", "amount": amount}
    return await client.post("/api/v1/catalog/coupons/validate", json=body)


def _parse(moment: str) -> datetime:
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# ------------------------------------------------------------------------- plans


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_basic_plan_has_the_contract_shape(client: httpx.AsyncClient) -> None:
    plan = await _plan(client, PLAN_BASIC_ID)

    assert set(plan) == PLAN_KEYS
    assert plan["id"] == PLAN_BASIC_ID
    assert plan["displayName"] == "Basic 1GB"
    assert plan["provider"] == "DIGITALOCEAN"
    assert plan["providerSizeSlug"] == "s-1vcpu-1gb"
    assert plan["isActive"] is True
    prices = {p["duration"]: p["price"] for p in plan["pricings"]}
    assert prices == {"MONTHLY": 100000, "YEARLY": 1000000}
    assert all(set(p) == {"id", "duration", "price", "cost", "isActive"} for p in plan["pricings"])


async def test_basic_plan_promos_are_active_expired_and_disabled(
    client: httpx.AsyncClient,
) -> None:
    plan = await _plan(client, PLAN_BASIC_ID)
    promos = {promo["id"]: promo for promo in plan["promos"]}
    now = datetime.now(UTC)

    for promo in promos.values():
        assert ISO_UTC.match(promo["startDate"]) and ISO_UTC.match(promo["endDate"])
    active = promos[PROMO_BASIC_PERCENT_ID]
    assert (active["discountType"], active["discountValue"], active["isActive"]) == (
        "PERCENT",
        10,
        True,
    )
    assert _parse(active["startDate"]) < now < _parse(active["endDate"])
    assert _parse(promos[PROMO_BASIC_EXPIRED_ID]["endDate"]) < now
    assert promos[PROMO_BASIC_INACTIVE_ID]["isActive"] is False


async def test_standard_plan_has_two_active_promos(client: httpx.AsyncClient) -> None:
    plan = await _plan(client, PLAN_STANDARD_ID)
    now = datetime.now(UTC)

    assert plan["providerSizeSlug"] == "s-1vcpu-2gb"
    assert {p["duration"]: p["price"] for p in plan["pricings"]} == {
        "MONTHLY": 200000,
        "YEARLY": 2000000,
    }
    offers = {(p["discountType"], p["discountValue"]) for p in plan["promos"]}
    assert offers == {("PERCENT", 5), ("FIXED", 15000)}
    assert all(
        p["isActive"] and _parse(p["startDate"]) < now < _parse(p["endDate"])
        for p in plan["promos"]
    )


async def test_pro_plan_sends_integral_floats_and_an_inactive_yearly(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/api/v1/catalog/plans/{PLAN_PRO_ID}")
    plan = response.json()["data"]
    pricings = {p["duration"]: p for p in plan["pricings"]}

    assert '"price":350000.0' in response.text  # on the wire, not just after parsing
    assert isinstance(pricings["MONTHLY"]["price"], float)
    assert pricings["MONTHLY"]["isActive"] is True
    assert pricings["YEARLY"]["isActive"] is False
    assert plan["promos"] == []


@pytest.mark.parametrize(
    ("plan_id", "field", "expected"),
    [
        (PLAN_INACTIVE_ID, "isActive", False),
        (PLAN_NO_DISPLAY_NAME_ID, "displayName", None),
        (PLAN_NO_DISPLAY_NAME_ID, "name", "nodisplay-plan"),
    ],
)
async def test_odd_plans(
    client: httpx.AsyncClient, plan_id: str, field: str, expected: object
) -> None:
    assert (await _plan(client, plan_id))[field] == expected


async def test_bad_price_plan_has_a_non_integral_monthly_price(
    client: httpx.AsyncClient,
) -> None:
    plan = await _plan(client, PLAN_BAD_PRICE_ID)
    assert plan["isActive"] is True
    assert [p["price"] for p in plan["pricings"] if p["duration"] == "MONTHLY"] == [100000.5]


async def test_upper_case_plan_id_is_found(client: httpx.AsyncClient) -> None:
    assert (await _plan(client, PLAN_BASIC_ID.upper()))["id"] == PLAN_BASIC_ID


@pytest.mark.parametrize("plan_id", [UNKNOWN_UUID, "not-a-uuid", IMAGE_UBUNTU_ID])
async def test_unknown_plan_is_404(client: httpx.AsyncClient, plan_id: str) -> None:
    response = await client.get(f"/api/v1/catalog/plans/{plan_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "PLAN_NOT_FOUND"
    assert response.json()["error"]["message"]


# ------------------------------------------------------------------------ images


@pytest.mark.parametrize(
    ("image_id", "slug", "category", "active"),
    [
        (IMAGE_UBUNTU_ID, "ubuntu-22-04-x64", "OS", True),
        (IMAGE_DEBIAN_ID, "debian-12-x64", "OS", True),
        (IMAGE_DOCKER_ID, "docker-20-04", "APP", True),
        (IMAGE_INACTIVE_ID, "centos-7-x64", "OS", False),
        (IMAGE_NOT_ALLOWED_ID, "fedora-39-x64", "OS", True),
    ],
)
async def test_image_found(
    client: httpx.AsyncClient, image_id: str, slug: str, category: str, active: bool
) -> None:
    response = await client.get(f"/api/v1/catalog/images/{image_id}")
    image = response.json()["data"]
    assert response.status_code == 200
    assert set(image) == {
        "id",
        "provider",
        "providerSlug",
        "displayName",
        "description",
        "category",
        "version",
        "isActive",
    }
    assert (image["providerSlug"], image["category"], image["isActive"]) == (
        slug,
        category,
        active,
    )


async def test_ubuntu_display_name(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/catalog/images/{IMAGE_UBUNTU_ID}")
    assert response.json()["data"]["displayName"] == "Ubuntu 22.04 LTS"


@pytest.mark.parametrize("image_id", [UNKNOWN_UUID, "nope", PLAN_BASIC_ID])
async def test_unknown_image_is_404(client: httpx.AsyncClient, image_id: str) -> None:
    response = await client.get(f"/api/v1/catalog/images/{image_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "IMAGE_NOT_FOUND"


async def test_allowed_images_per_plan(client: httpx.AsyncClient) -> None:
    for plan_id in PLAN_IDS:
        allowed = (await _plan(client, plan_id))["allowedImageIds"]
        assert IMAGE_NOT_ALLOWED_ID not in allowed
        if plan_id in (PLAN_BASIC_ID, PLAN_STANDARD_ID, PLAN_PRO_ID):
            assert set(allowed) == {
                IMAGE_UBUNTU_ID,
                IMAGE_DEBIAN_ID,
                IMAGE_DOCKER_ID,
                IMAGE_INACTIVE_ID,
            }


async def test_every_exported_id_is_served(client: httpx.AsyncClient) -> None:
    assert len(set(PLAN_IDS)) == len(PLAN_IDS) == 6
    assert len(set(IMAGE_IDS)) == len(IMAGE_IDS) == 5
    for image_id in IMAGE_IDS:
        assert (await client.get(f"/api/v1/catalog/images/{image_id}")).status_code == 200
    for plan_id in PLAN_IDS:
        await _plan(client, plan_id)


# ----------------------------------------------------------------------- coupons


@pytest.mark.parametrize(
    ("code", "amount", "plan_id", "discount", "final"),
    [
        ("HEMAT20", 90000, PLAN_BASIC_ID, 18000, 72000),
        ("hemat20", 90000, PLAN_BASIC_ID, 18000, 72000),  # case-insensitive
        ("HEMAT20", 99999, PLAN_BASIC_ID, 19999, 80000),  # floor(19999.8)
        ("FLAT50K", 90000, PLAN_BASIC_ID, 50000, 40000),
        ("BIGFIXED", 90000, PLAN_BASIC_ID, 5000000, 0),  # FIXED is not clamped
        ("CAP25K", 1000000, PLAN_BASIC_ID, 25000, 975000),  # 50 % capped
        ("CAP25K", 40000, PLAN_BASIC_ID, 20000, 20000),  # under the cap
        ("PROONLY", 350000, PLAN_PRO_ID, 25000, 325000),
        ("MIN1M", 1000000, PLAN_BASIC_ID, 100000, 900000),  # exactly the minimum
    ],
)
async def test_valid_coupon_math(
    client: httpx.AsyncClient, code: str, amount: int, plan_id: str, discount: int, final: int
) -> None:
    response = await _validate(client, code, amount, plan_id)
    data = response.json()["data"]
    assert response.status_code == 200
    assert data["valid"] is True
    assert (data["discountAmount"], data["finalPrice"]) == (discount, final)
    assert data["coupon"]["code"] == code.upper()
    assert set(data["coupon"]) == {"code", "name", "discountType", "discountValue"}


@pytest.mark.parametrize(
    ("code", "amount", "reason"),
    [
        ("NOSUCHCODE", 100000, "NOT_FOUND"),
        ("DISABLED", 100000, "INACTIVE"),
        ("NOTYET", 100000, "BEFORE_START"),
        ("EXPIRED10", 100000, "EXPIRED"),
        ("SOLDOUT", 100000, "LIMIT_REACHED"),
        ("MIN1M", 999999, "MIN_AMOUNT"),
        ("PROONLY", 100000, "NOT_APPLICABLE"),  # planId is Basic
    ],
)
async def test_invalid_coupon_reason(
    client: httpx.AsyncClient, code: str, amount: int, reason: str
) -> None:
    response = await _validate(client, code, amount)
    assert response.status_code == 200
    assert response.json() == {"data": {"valid": False, "reason": reason}}


def test_every_listed_coupon_code_is_distinct() -> None:
    assert len(set(COUPON_CODES)) == len(COUPON_CODES)


async def test_integral_float_amount_is_accepted(client: httpx.AsyncClient) -> None:
    body = {"code": "HEMAT20", "planId": PLAN_BASIC_ID, "userId": "u", "amount": 90000.0}
    response = await client.post("/api/v1/catalog/coupons/validate", json=body)
    assert response.json()["data"]["discountAmount"] == 18000


_GOOD = {"code": "HEMAT20", "planId": PLAN_BASIC_ID, "userId": "u", "amount": 1}


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        json.dumps([_GOOD]).encode(),
        json.dumps({k: v for k, v in _GOOD.items() if k != "amount"}).encode(),
        json.dumps({**_GOOD, "amount": "100000"}).encode(),
        json.dumps({**_GOOD, "amount": 1.5}).encode(),
        json.dumps({**_GOOD, "amount": -1}).encode(),
        json.dumps({**_GOOD, "amount": True}).encode(),
        json.dumps({**_GOOD, "code": ""}).encode(),
    ],
    ids=[
        "not-json",
        "empty",
        "array",
        "no-amount",
        "str-amount",
        "fraction",
        "negative",
        "bool",
        "empty-code",
    ],
)
async def test_malformed_coupon_body_is_400(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(
        "/api/v1/catalog/coupons/validate",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert response.json()["error"]["message"]


async def test_unknown_route_keeps_the_error_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/catalog/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


# ------------------------------------------------------------------------ faults


async def _hit_every_route(client: httpx.AsyncClient) -> list[httpx.Response]:
    return [
        await client.get(f"/api/v1/catalog/plans/{PLAN_BASIC_ID}"),
        await client.get(f"/api/v1/catalog/images/{IMAGE_UBUNTU_ID}"),
        await _validate(client, "HEMAT20", 90000),
    ]


async def test_status_fault_hits_every_catalog_route_until_reset(
    client: httpx.AsyncClient,
) -> None:
    set_response = await client.post("/_mock/faults", json={"status": 503})
    assert set_response.json()["faults"] == {"status": 503, "delay_ms": 0, "malformed": False}

    for response in await _hit_every_route(client):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    # The controls and the health check are never faulted.
    assert (await client.get("/health")).status_code == 200

    assert (await client.delete("/_mock/faults")).status_code == 200
    assert [r.status_code for r in await _hit_every_route(client)] == [200, 200, 200]


async def test_malformed_fault_answers_200_with_broken_json(client: httpx.AsyncClient) -> None:
    await client.post("/_mock/faults", json={"malformed": True})
    for response in await _hit_every_route(client):
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            response.json()


async def test_delay_fault_slows_the_answer(client: httpx.AsyncClient) -> None:
    await client.post("/_mock/faults", json={"delay_ms": 60})
    started = time.perf_counter()
    response = await client.get(f"/api/v1/catalog/plans/{PLAN_BASIC_ID}")
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.06


@pytest.mark.parametrize(
    "body", [{"status": 200}, {"delay_ms": -1}, {"malformed": "yes"}, {"bogus": 1}]
)
async def test_bad_fault_settings_are_refused(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/_mock/faults", json=body)
    assert response.status_code == 400
    assert (await client.get("/_mock/faults")).json()["faults"]["status"] is None


async def test_faults_are_per_app_instance() -> None:
    async with _client(create_app()) as faulty, _client(create_app()) as healthy:
        await faulty.post("/_mock/faults", json={"status": 500})
        assert (await faulty.get(f"/api/v1/catalog/plans/{PLAN_BASIC_ID}")).status_code == 500
        assert (await healthy.get(f"/api/v1/catalog/plans/{PLAN_BASIC_ID}")).status_code == 200


async def test_stats_count_requests_per_route_including_faulted_ones(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/_mock/stats")).json() == {
        "requests": {"plans": 0, "images": 0, "coupons": 0}
    }
    await client.get(f"/api/v1/catalog/plans/{PLAN_BASIC_ID}")
    await client.get(f"/api/v1/catalog/plans/{UNKNOWN_UUID}")
    await client.post("/_mock/faults", json={"status": 503})
    await client.get(f"/api/v1/catalog/images/{IMAGE_UBUNTU_ID}")
    await _validate(client, "HEMAT20", 1)
    await client.get("/health")

    stats = (await client.get("/_mock/stats")).json()
    assert stats == {"requests": {"plans": 2, "images": 1, "coupons": 1}}

    await client.delete("/_mock/stats")
    assert (await client.get("/_mock/stats")).json()["requests"]["plans"] == 0
