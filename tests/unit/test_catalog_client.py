"""catalog-service client against respx: parsing, 404s, and every fault -> CatalogUnavailable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from mocks.catalog_service.data import (
    IMAGE_UBUNTU_ID,
    PLAN_BASIC_ID,
    PLAN_NO_DISPLAY_NAME_ID,
    PLAN_PRO_ID,
    build_catalog,
)
from order_service.catalog.client import CatalogClient
from order_service.errors import CatalogUnavailable

BASE = "http://catalog.test"
PLANS = f"{BASE}/api/v1/catalog/plans"
IMAGES = f"{BASE}/api/v1/catalog/images"
COUPONS = f"{BASE}/api/v1/catalog/coupons/validate"

CATALOG = build_catalog()


def plan_json(plan_id: str = PLAN_BASIC_ID, **changes: Any) -> dict[str, Any]:
    plan = json.loads(json.dumps(CATALOG.plans[plan_id]))
    plan.update(changes)
    return plan


def image_json(**changes: Any) -> dict[str, Any]:
    image = dict(CATALOG.images[IMAGE_UBUNTU_ID])
    image.update(changes)
    return image


@pytest.fixture
async def client() -> AsyncIterator[CatalogClient]:
    catalog = CatalogClient(BASE + "/", timeout_ms=250)
    yield catalog
    await catalog.aclose()


@pytest.fixture
def mock() -> Any:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


async def unavailable(call: Any) -> CatalogUnavailable:
    with pytest.raises(CatalogUnavailable) as caught:
        await call
    assert caught.value.code == "CATALOG_SERVICE_UNAVAILABLE"
    assert caught.value.status_code == 503
    return caught.value


# ------------------------------------------------------------------ plans/images


async def test_plan_is_parsed(client: CatalogClient, mock: respx.Router) -> None:
    route = mock.get(f"{PLANS}/{PLAN_BASIC_ID}").respond(200, json={"data": plan_json()})
    plan = await client.get_plan(PLAN_BASIC_ID)
    assert plan is not None
    assert plan.id == PLAN_BASIC_ID
    assert plan.label == "Basic 1GB"
    assert plan.provider_size_slug == "s-1vcpu-1gb"
    assert plan.is_active
    assert IMAGE_UBUNTU_ID in plan.allowed_image_ids
    assert {(p.duration, p.price) for p in plan.pricings} == {
        ("MONTHLY", 100000),
        ("YEARLY", 1000000),
    }
    assert len(plan.promos) == 3
    request = route.calls.last.request
    assert request.headers["accept"] == "application/json"
    # The configured per-request timeout (ms) reaches httpx in seconds.
    assert request.extensions["timeout"]["read"] == pytest.approx(0.25)


async def test_float_prices_are_whole_idr(client: CatalogClient, mock: respx.Router) -> None:
    mock.get(f"{PLANS}/{PLAN_PRO_ID}").respond(200, json={"data": plan_json(PLAN_PRO_ID)})
    plan = await client.get_plan(PLAN_PRO_ID)
    assert plan is not None
    assert [p.price for p in plan.pricings] == [350000, 3500000]
    assert all(type(p.price) is int for p in plan.pricings)


async def test_plan_without_display_name_is_labelled_by_name(
    client: CatalogClient, mock: respx.Router
) -> None:
    data = plan_json(PLAN_NO_DISPLAY_NAME_ID)
    mock.get(f"{PLANS}/{PLAN_NO_DISPLAY_NAME_ID}").respond(200, json={"data": data})
    plan = await client.get_plan(PLAN_NO_DISPLAY_NAME_ID)
    assert plan is not None and plan.label == "nodisplay-plan"


async def test_image_is_parsed(client: CatalogClient, mock: respx.Router) -> None:
    mock.get(f"{IMAGES}/{IMAGE_UBUNTU_ID}").respond(200, json={"data": image_json()})
    image = await client.get_image(IMAGE_UBUNTU_ID)
    assert image is not None
    assert image.provider_slug == "ubuntu-22-04-x64"
    assert image.display_name == "Ubuntu 22.04 LTS"
    assert image.is_active


async def test_unknown_plan_and_image_are_none(client: CatalogClient, mock: respx.Router) -> None:
    not_found = {"error": {"code": "PLAN_NOT_FOUND", "message": "nope"}}
    mock.get(f"{PLANS}/missing").respond(404, json=not_found)
    mock.get(f"{IMAGES}/missing").respond(404, json={"error": {"code": "IMAGE_NOT_FOUND"}})
    assert await client.get_plan("missing") is None
    assert await client.get_image("missing") is None


@pytest.mark.parametrize(
    "bad_id",
    ["../x", "../../images/b2", "x/", "a/b", "..", ".", "a?b=c#d", "a b", "%2F", "a\\b", "ü"],
)
async def test_ids_that_are_not_one_plain_path_segment_are_not_sent(
    client: CatalogClient, mock: respx.Router, bad_id: str
) -> None:
    # Such an id names no plan or image, and it cannot escape the path: no request at all.
    route = mock.route(host="catalog.test").respond(500)
    assert await client.get_plan(bad_id) is None
    assert await client.get_image(bad_id) is None
    assert not route.called


@pytest.mark.parametrize("plain_id", [PLAN_BASIC_ID, "basic-1gb", "v1.2_x~y", "A"])
async def test_plain_ids_are_sent_as_one_path_segment(
    client: CatalogClient, mock: respx.Router, plain_id: str
) -> None:
    route = mock.route(host="catalog.test").respond(404)
    assert await client.get_plan(plain_id) is None
    assert await client.get_image(plain_id) is None
    assert [call.request.url.raw_path for call in route.calls] == [
        f"/api/v1/catalog/plans/{plain_id}".encode(),
        f"/api/v1/catalog/images/{plain_id}".encode(),
    ]


# ---------------------------------------------------------------------- coupons


async def test_valid_coupon(client: CatalogClient, mock: respx.Router) -> None:
    route = mock.post(COUPONS).respond(
        200,
        json={
            "data": {
                "valid": True,
                "discountAmount": 18000.0,
                "finalPrice": 72000,
                "coupon": {
                    "code": "HEMAT20",
                    "name": "Hemat 20%",
                    "discountType": "PERCENT",
                    "discountValue": 20,
                },
            }
        },
    )
    result = await client.validate_coupon(
        code="hemat20", plan_id=PLAN_BASIC_ID, user_id="alice", amount=90000
    )
    assert result.valid
    assert result.discount_amount == 18000
    assert type(result.discount_amount) is int
    assert result.coupon is not None and result.coupon.code == "HEMAT20"
    assert json.loads(route.calls.last.request.content) == {
        "code": "hemat20",
        "planId": PLAN_BASIC_ID,
        "userId": "alice",
        "amount": 90000,
    }


@pytest.mark.parametrize("reason", ["NOT_FOUND", "EXPIRED", "MIN_AMOUNT"])
async def test_invalid_coupon_carries_the_reason(
    client: CatalogClient, mock: respx.Router, reason: str
) -> None:
    mock.post(COUPONS).respond(200, json={"data": {"valid": False, "reason": reason}})
    result = await client.validate_coupon(code="X", plan_id="p", user_id="u", amount=1)
    assert not result.valid
    assert result.reason == reason


@pytest.mark.parametrize(
    "data",
    [
        {"valid": True},  # no discountAmount
        {"valid": True, "discountAmount": 100.5},
        {"valid": True, "discountAmount": -1},
        {"valid": "maybe"},
        {},
    ],
    ids=["no-amount", "fractional", "negative", "not-bool", "empty"],
)
async def test_coupon_answer_breaking_the_contract(
    client: CatalogClient, mock: respx.Router, data: dict[str, Any]
) -> None:
    mock.post(COUPONS).respond(200, json={"data": data})
    await unavailable(client.validate_coupon(code="X", plan_id="p", user_id="u", amount=1))


@pytest.mark.parametrize("status", [400, 404, 500, 503])
async def test_coupon_non_200_is_unavailable(
    client: CatalogClient, mock: respx.Router, status: int
) -> None:
    mock.post(COUPONS).respond(status, json={"error": {"code": "X", "message": "x"}})
    await unavailable(client.validate_coupon(code="X", plan_id="p", user_id="u", amount=1))


# ----------------------------------------------------------------------- faults

FAULTS = {
    "timeout": httpx.ReadTimeout("read timed out"),
    "connect-timeout": httpx.ConnectTimeout("connect timed out"),
    "connect-error": httpx.ConnectError("connection refused"),
    "remote-closed": httpx.RemoteProtocolError("server disconnected"),
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
async def test_transport_faults_are_unavailable(
    client: CatalogClient, mock: respx.Router, fault: str
) -> None:
    mock.route(host="catalog.test").mock(side_effect=FAULTS[fault])
    await unavailable(client.get_plan(PLAN_BASIC_ID))
    await unavailable(client.get_image(IMAGE_UBUNTU_ID))
    await unavailable(client.validate_coupon(code="X", plan_id="p", user_id="u", amount=1))


async def test_timeout_is_reported_as_such(client: CatalogClient, mock: respx.Router) -> None:
    mock.get(f"{PLANS}/{PLAN_BASIC_ID}").mock(side_effect=httpx.ReadTimeout("slow"))
    error = await unavailable(client.get_plan(PLAN_BASIC_ID))
    assert error.details is not None and "timed out" in error.details["reason"]


@pytest.mark.parametrize("status", [500, 502, 503, 401, 403, 429])
async def test_unexpected_statuses_are_unavailable(
    client: CatalogClient, mock: respx.Router, status: int
) -> None:
    mock.get(f"{PLANS}/{PLAN_BASIC_ID}").respond(status, json={"error": {"code": "E"}})
    mock.get(f"{IMAGES}/{IMAGE_UBUNTU_ID}").respond(status, text="oops")
    await unavailable(client.get_plan(PLAN_BASIC_ID))
    await unavailable(client.get_image(IMAGE_UBUNTU_ID))


@pytest.mark.parametrize(
    "body",
    [b'{"data": {"id": "a1000000-0000-4000-8000-0000', b"", b"<html>oops</html>", b"null"],
    ids=["truncated", "empty", "html", "null"],
)
async def test_malformed_json_is_unavailable(
    client: CatalogClient, mock: respx.Router, body: bytes
) -> None:
    mock.get(f"{PLANS}/{PLAN_BASIC_ID}").respond(
        200, content=body, headers={"content-type": "application/json"}
    )
    await unavailable(client.get_plan(PLAN_BASIC_ID))


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def _with_price(price: Any) -> dict[str, Any]:
    plan = plan_json()
    plan["pricings"][0]["price"] = price
    return plan


def _with_fixed_promo(value: Any) -> dict[str, Any]:
    plan = plan_json()
    plan["promos"][0].update(discountType="FIXED", discountValue=value)
    return plan


@pytest.mark.parametrize(
    "data",
    [
        _without(plan_json(), "providerSizeSlug"),
        plan_json(providerSizeSlug=""),
        _without(plan_json(), "isActive"),
        _without(plan_json(), "id"),
        _with_price(100000.5),
        _with_price(-100000),
        _with_price("100000.5"),
        _with_price(None),
        _with_price(True),
        _with_price(2**60),
        _with_fixed_promo(1500.5),
        plan_json(pricings="none"),
        "not an object",
    ],
    ids=[
        "no-size-slug",
        "empty-size-slug",
        "no-isActive",
        "no-id",
        "fractional-price",
        "negative-price",
        "fractional-price-string",
        "null-price",
        "bool-price",
        "huge-price",
        "fractional-fixed-promo",
        "pricings-not-list",
        "data-not-object",
    ],
)
async def test_plan_breaking_the_contract_is_unavailable(
    client: CatalogClient, mock: respx.Router, data: Any
) -> None:
    mock.get(f"{PLANS}/{PLAN_BASIC_ID}").respond(200, json={"data": data})
    error = await unavailable(client.get_plan(PLAN_BASIC_ID))
    assert error.details is not None and "contract" in error.details["reason"]


@pytest.mark.parametrize(
    "data",
    [
        _without(image_json(), "providerSlug"),
        image_json(providerSlug=""),
        _without(image_json(), "displayName"),
    ],
    ids=["no-slug", "empty-slug", "no-display-name"],
)
async def test_image_breaking_the_contract_is_unavailable(
    client: CatalogClient, mock: respx.Router, data: dict[str, Any]
) -> None:
    mock.get(f"{IMAGES}/{IMAGE_UBUNTU_ID}").respond(200, json={"data": data})
    await unavailable(client.get_image(IMAGE_UBUNTU_ID))


async def test_envelope_without_data_is_unavailable(
    client: CatalogClient, mock: respx.Router
) -> None:
    mock.get(f"{PLANS}/{PLAN_BASIC_ID}").respond(200, json=plan_json())
    await unavailable(client.get_plan(PLAN_BASIC_ID))
