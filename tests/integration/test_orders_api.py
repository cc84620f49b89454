"""The user order API end to end: HTTP -> service -> real database, mock catalog."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from mocks.catalog_service.data import (
    IMAGE_DEBIAN_ID,
    IMAGE_INACTIVE_ID,
    IMAGE_NOT_ALLOWED_ID,
    IMAGE_UBUNTU_ID,
    PLAN_BAD_PRICE_ID,
    PLAN_BASIC_ID,
    PLAN_INACTIVE_ID,
    PLAN_NO_DISPLAY_NAME_ID,
    PLAN_PRO_ID,
    PLAN_STANDARD_ID,
)
from order_service.orders.models import Order, OrderItem, StatusHistory
from order_service.orders.schemas import DataEnvelope, ListEnvelope, OrderOut
from tests.conftest import auth, make_token
from tests.helpers import assert_error, create_order, order_body, pay

ORDERS = "/api/v1/orders"
OTHER_SECRET = "another-secret-that-is-long-enough-too"


async def count(engine: AsyncEngine, model: type) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(model))).scalar_one()


async def test_create_order_prices_and_snapshots(client: httpx.AsyncClient) -> None:
    response = await client.post(
        ORDERS, json=order_body(couponCode="HEMAT20"), headers=auth("alice")
    )

    assert response.status_code == 201, response.text
    order = DataEnvelope[OrderOut].model_validate(response.json()).data
    assert order.user_id == "alice"
    assert order.status == "PENDING_PAYMENT"
    assert order.plan_name == "Basic 1GB"
    assert order.image_name == "Ubuntu 22.04 LTS"
    # 100000 base, 10% promo = 10000, HEMAT20 on 90000 = 18000.
    assert order.pricing.model_dump() == {
        "base_price": 100000,
        "promo_discount": 10000,
        "coupon_code": "HEMAT20",
        "coupon_discount": 18000,
        "final_price": 72000,
        "currency": "IDR",
    }
    assert [(i.item_type, i.reference_id, i.unit_price) for i in order.items] == [
        ("PLAN", PLAN_BASIC_ID, 100000),
        ("IMAGE", IMAGE_UBUNTU_ID, 0),
    ]
    assert order.provisioning_task is None
    assert order.paid_at is None
    assert response.json()["data"]["createdAt"].endswith("Z")


async def test_annual_uses_yearly_price_and_best_promo(client: httpx.AsyncClient) -> None:
    order = await create_order(client, planId=PLAN_STANDARD_ID, duration="ANNUAL")
    # YEARLY 2,000,000: PERCENT 5% (100,000) beats FIXED 15,000.
    assert order["pricing"]["basePrice"] == 2_000_000
    assert order["pricing"]["promoDiscount"] == 100_000
    assert order["pricing"]["finalPrice"] == 1_900_000


async def test_float_prices_from_catalog_become_whole_idr(client: httpx.AsyncClient) -> None:
    order = await create_order(client, planId=PLAN_PRO_ID)
    assert order["pricing"]["basePrice"] == 350000
    assert isinstance(order["pricing"]["basePrice"], int)


async def test_plan_without_display_name_uses_name(client: httpx.AsyncClient) -> None:
    order = await create_order(client, planId=PLAN_NO_DISPLAY_NAME_ID, imageId=IMAGE_DEBIAN_ID)
    assert order["planName"] == "nodisplay-plan"


async def test_coupon_larger_than_price_clamps_final_price_at_zero(
    client: httpx.AsyncClient,
) -> None:
    order = await create_order(client, couponCode="BIGFIXED")
    assert order["pricing"]["couponDiscount"] == 5_000_000  # stored as catalog gave it
    assert order["pricing"]["finalPrice"] == 0


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"planId": str(uuid.uuid4())}, "INVALID_PLAN"),
        ({"planId": PLAN_INACTIVE_ID}, "INVALID_PLAN"),
        ({"planId": "../../images/x"}, "VALIDATION_ERROR"),
        ({"imageId": str(uuid.uuid4())}, "INVALID_IMAGE"),
        ({"imageId": IMAGE_INACTIVE_ID}, "INVALID_IMAGE"),
        ({"imageId": IMAGE_NOT_ALLOWED_ID}, "INVALID_IMAGE"),
        ({"planId": PLAN_PRO_ID, "duration": "ANNUAL"}, "INVALID_DURATION"),
        ({"duration": "QUARTERLY"}, "INVALID_DURATION"),
        ({"duration": "WEEKLY"}, "VALIDATION_ERROR"),
        ({"planId": None}, "VALIDATION_ERROR"),
    ],
)
async def test_invalid_orders_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, engine: AsyncEngine, overrides: dict[str, str | None], code: str
) -> None:
    response = await client.post(ORDERS, json=order_body(**overrides), headers=auth("bob"))
    assert_error(response, 400, code)
    assert await count(engine, Order) == 0


@pytest.mark.parametrize(
    ("coupon", "reason"),
    [
        ("NOPE", "NOT_FOUND"),
        ("EXPIRED10", "EXPIRED"),
        ("NOTYET", "BEFORE_START"),
        ("DISABLED", "INACTIVE"),
        ("SOLDOUT", "LIMIT_REACHED"),
        ("MIN1M", "MIN_AMOUNT"),
        ("PROONLY", "NOT_APPLICABLE"),
    ],
)
async def test_invalid_coupon_carries_catalog_reason(
    client: httpx.AsyncClient, engine: AsyncEngine, coupon: str, reason: str
) -> None:
    response = await client.post(ORDERS, json=order_body(couponCode=coupon), headers=auth("bob"))
    error = assert_error(response, 400, "INVALID_COUPON")
    assert error["details"] == {"reason": reason}
    assert await count(engine, Order) == 0


async def test_non_integral_catalog_price_is_a_catalog_fault(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await client.post(
        ORDERS, json=order_body(planId=PLAN_BAD_PRICE_ID), headers=auth("bob")
    )
    assert_error(response, 503, "CATALOG_SERVICE_UNAVAILABLE")
    assert await count(engine, Order) == 0


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 500}, {"malformed": True}])
async def test_catalog_faults_give_503_and_write_nothing(
    client: httpx.AsyncClient, catalog_app: object, engine: AsyncEngine, fault: dict[str, object]
) -> None:
    catalog = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=catalog_app),
        base_url="http://catalog",  # type: ignore[arg-type]
    )
    (await catalog.post("/_mock/faults", json=fault)).raise_for_status()

    response = await client.post(ORDERS, json=order_body(couponCode="HEMAT20"), headers=auth("x"))

    assert_error(response, 503, "CATALOG_SERVICE_UNAVAILABLE")
    assert await count(engine, Order) == 0
    assert await count(engine, StatusHistory) == 0


async def test_catalog_down_gives_503_and_writes_nothing(
    settings: object, engine: AsyncEngine, clean_db: None
) -> None:
    from order_service.app import create_app
    from tests.conftest import make_settings

    # Nothing listens on port 9 (discard) of loopback: connection refused.
    down = make_settings(settings.database_url, catalog_service_url="http://127.0.0.1:9")  # type: ignore[attr-defined]
    application = create_app(down, start_provisioner=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(ORDERS, json=order_body(), headers=auth("x"))
    assert_error(response, 503, "CATALOG_SERVICE_UNAVAILABLE")
    assert await count(engine, Order) == 0


async def test_get_own_order_and_not_someone_elses(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "alice")

    own = await client.get(f"{ORDERS}/{order['id']}", headers=auth("alice"))
    assert own.status_code == 200
    assert own.json()["data"]["id"] == order["id"]
    assert "statusHistory" not in own.json()["data"]

    other = await client.get(f"{ORDERS}/{order['id']}", headers=auth("mallory"))
    assert_error(other, 403, "ORDER_ACCESS_DENIED")


@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "not-a-uuid", "1", "f" * 100])
async def test_unknown_or_malformed_order_id_is_404(
    client: httpx.AsyncClient, order_id: str
) -> None:
    response = await client.get(f"{ORDERS}/{order_id}", headers=auth("alice"))
    assert_error(response, 404, "ORDER_NOT_FOUND")


async def test_list_paginates_newest_first_with_true_meta(client: httpx.AsyncClient) -> None:
    created = [await create_order(client, "carol") for _ in range(5)]
    await create_order(client, "dave")

    first = await client.get(ORDERS, params={"page": 1, "limit": 2}, headers=auth("carol"))
    assert first.status_code == 200
    body = ListEnvelope[OrderOut].model_validate(first.json())
    assert [o.id for o in body.data] == [uuid.UUID(created[4]["id"]), uuid.UUID(created[3]["id"])]
    assert first.json()["meta"] == {"page": 1, "limit": 2, "total": 5, "totalPages": 3}

    last = await client.get(ORDERS, params={"page": 3, "limit": 2}, headers=auth("carol"))
    assert [o["id"] for o in last.json()["data"]] == [created[0]["id"]]
    assert last.json()["data"][0]["items"]  # items come with list entries

    past = await client.get(ORDERS, params={"page": 9, "limit": 2}, headers=auth("carol"))
    assert past.status_code == 200
    assert past.json() == {"data": [], "meta": {"page": 9, "limit": 2, "total": 5, "totalPages": 3}}


async def test_list_filters_by_status(client: httpx.AsyncClient) -> None:
    keep = await create_order(client, "erin")
    gone = await create_order(client, "erin")
    cancel = await client.post(f"{ORDERS}/{gone['id']}/cancel", headers=auth("erin"))
    assert cancel.status_code == 200

    response = await client.get(ORDERS, params={"status": "CANCELED"}, headers=auth("erin"))
    assert [o["id"] for o in response.json()["data"]] == [gone["id"]]
    response = await client.get(ORDERS, params={"status": "PENDING_PAYMENT"}, headers=auth("erin"))
    assert [o["id"] for o in response.json()["data"]] == [keep["id"]]


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"limit": 0}, {"limit": 101}, {"page": "x"}, {"status": "NOPE"}, {"page": -1}],
)
async def test_list_rejects_bad_query(client: httpx.AsyncClient, params: dict[str, object]) -> None:
    response = await client.get(ORDERS, params=params, headers=auth("erin"))
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"]["fields"]


async def test_owner_cancels_unpaid_order_but_not_a_paid_one(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "frank")
    stranger = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=auth("grace"))
    assert_error(stranger, 403, "ORDER_ACCESS_DENIED")

    paid = await create_order(client, "frank")
    assert (await pay(client, paid["id"])).status_code == 200
    refused = await client.post(f"{ORDERS}/{paid['id']}/cancel", headers=auth("frank"))
    error = assert_error(refused, 409, "ORDER_STATUS_CONFLICT")
    assert error["details"]["currentStatus"] == "PROVISIONING"

    done = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=auth("frank"))
    assert done.status_code == 200
    assert done.json()["data"]["status"] == "CANCELED"
    again = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=auth("frank"))
    assert_error(again, 409, "ORDER_STATUS_CONFLICT")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"Bearer {make_token('alice', ttl=-60)}"},
        {"Authorization": f"Bearer {make_token('alice', secret=OTHER_SECRET)}"},
    ],
    ids=["missing", "garbage", "basic", "expired", "wrong-secret"],
)
async def test_user_endpoints_need_a_valid_token(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for method, path in [("GET", ORDERS), ("POST", ORDERS), ("GET", f"{ORDERS}/{uuid.uuid4()}")]:
        response = await client.request(method, path, headers=headers, json=order_body())
        assert_error(response, 401, "UNAUTHORIZED")


async def test_history_rows_record_creation_and_cancel(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(client, "henry")
    await client.post(f"{ORDERS}/{order['id']}/cancel", headers=auth("henry"))
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(StatusHistory.previous_status, StatusHistory.new_status, StatusHistory.actor)
                .where(StatusHistory.order_id == uuid.UUID(order["id"]))
                .order_by(StatusHistory.created_at)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (None, "PENDING_PAYMENT", "user:henry"),
        ("PENDING_PAYMENT", "CANCELED", "user:henry"),
    ]
    assert await count(engine, OrderItem) == 2


async def test_the_largest_page_is_an_empty_page_not_an_error(client: httpx.AsyncClient) -> None:
    # offset = (page - 1) * limit outgrows a 32-bit integer.
    params = {"page": 2_147_483_647, "limit": 100}
    response = await client.get(ORDERS, params=params, headers=auth("carol"))
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []
    assert response.json()["meta"]["page"] == 2_147_483_647
