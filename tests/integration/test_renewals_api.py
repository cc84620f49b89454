"""Renewals through the HTTP API (SPEC sections 5 and 9): priced live, paid, canceled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from mocks.catalog_service.data import PLAN_BASIC_ID, PLAN_STANDARD_ID
from order_service import clock
from order_service.lifecycle.period import extend
from tests.conftest import INTERNAL, auth
from tests.helpers import assert_error, create_order
from tests.lifecycle_helpers import (
    actions_of,
    active_order,
    detail,
    event_types,
    events_of,
    history,
    new_renewal,
    ops,
    parse,
    pay_renewal,
    scan,
)

RENEWAL_KEYS = {
    "id",
    "orderId",
    "status",
    "periods",
    "duration",
    "pricing",
    "previousExpiresAt",
    "newExpiresAt",
    "createdAt",
    "updatedAt",
    "paidAt",
}


async def test_quote_prices_periods_live_with_promo_and_coupon(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    response = await client.get(
        f"/api/v1/orders/{order['id']}/renewal-quote",
        params={"periods": 3, "couponCode": "HEMAT20"},
        headers=auth("life-user"),
    )
    assert response.status_code == 200, response.text
    quote = response.json()["data"]
    # Basic 1GB: 100,000 a month x 3; promo 10 % of the whole; HEMAT20 on what is left.
    assert quote == {
        "periods": 3,
        "duration": "MONTHLY",
        "basePrice": 300000,
        "promoDiscount": 30000,
        "couponCode": "HEMAT20",
        "couponDiscount": 54000,
        "finalPrice": 216000,
        "currency": "IDR",
        "newExpiresAt": quote["newExpiresAt"],
    }
    assert parse(quote["newExpiresAt"]) == extend(parse(order["expiresAt"]), "MONTHLY", 3)
    # Nothing is stored.
    listed = await client.get(f"/api/v1/orders/{order['id']}/renewals", headers=auth("life-user"))
    assert listed.json()["data"] == []


async def test_annual_order_renews_at_the_yearly_price(client: httpx.AsyncClient, app: Any) -> None:
    order = await active_order(client, app, duration="ANNUAL", planId=PLAN_STANDARD_ID)
    created = await new_renewal(client, order["id"], periods=2)
    assert created.status_code == 201, created.text
    pricing = created.json()["data"]["pricing"]
    # Standard 2GB YEARLY 2,000,000 x 2; best promo: 5 % (200,000) beats 15,000 fixed.
    assert pricing["basePrice"] == 4000000
    assert pricing["promoDiscount"] == 200000
    assert pricing["finalPrice"] == 3800000


async def test_create_list_cancel_and_one_open_renewal_per_order(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    created = await new_renewal(client, order["id"])
    assert created.status_code == 201, created.text
    renewal = created.json()["data"]
    assert set(renewal) == RENEWAL_KEYS
    assert renewal["status"] == "PENDING_PAYMENT"
    assert renewal["periods"] == 1 and renewal["duration"] == "MONTHLY"
    assert renewal["previousExpiresAt"] is None and renewal["newExpiresAt"] is None
    assert renewal["pricing"]["basePrice"] == 100000

    second = await new_renewal(client, order["id"], periods=2)
    error = assert_error(second, 409, "RENEWAL_PENDING")
    assert error["details"]["renewalId"] == renewal["id"]

    url = f"/api/v1/orders/{order['id']}/renewals"
    canceled = await client.post(f"{url}/{renewal['id']}/cancel", headers=auth("life-user"))
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["data"]["status"] == "CANCELED"
    again = await client.post(f"{url}/{renewal['id']}/cancel", headers=auth("life-user"))
    assert_error(again, 409, "ORDER_STATUS_CONFLICT")

    third = await new_renewal(client, order["id"], periods=2)
    assert third.status_code == 201
    listed = await client.get(url, params={"limit": 1}, headers=auth("life-user"))
    body = listed.json()
    assert [r["id"] for r in body["data"]] == [third.json()["data"]["id"]]  # newest first
    assert body["meta"] == {"page": 1, "limit": 1, "total": 2, "totalPages": 2}
    types = await event_types(app, order["id"])
    assert types.count("renewal.created") == 2 and types.count("renewal.canceled") == 1


async def test_refusals(client: httpx.AsyncClient, app: Any) -> None:
    unpaid = await create_order(client, "life-user")
    assert_error(await new_renewal(client, unpaid["id"]), 409, "ORDER_STATUS_CONFLICT")
    order = await active_order(client, app)
    assert_error(await new_renewal(client, order["id"], user="other"), 403, "ORDER_ACCESS_DENIED")
    for periods in (0, 13, "x"):
        assert_error(
            await new_renewal(client, order["id"], periods=periods), 400, "VALIDATION_ERROR"
        )
    response = await client.get(
        f"/api/v1/orders/{order['id']}/renewal-quote",
        params={"periods": 13},
        headers=auth("life-user"),
    )
    assert_error(response, 400, "VALIDATION_ERROR")
    assert_error(
        await new_renewal(client, order["id"], couponCode="EXPIRED10"), 400, "INVALID_COUPON"
    )
    url = f"/api/v1/orders/{order['id']}/renewals"
    for bad in ("not-a-uuid", "5f0c6d1e-0000-4000-8000-000000000000"):
        response = await client.post(f"{url}/{bad}/cancel", headers=auth("life-user"))
        assert_error(response, 404, "RENEWAL_NOT_FOUND")
        assert_error(await pay_renewal(client, bad), 404, "RENEWAL_NOT_FOUND")
    assert_error(
        await client.get(f"/api/v1/orders/{order['id']}/renewals", headers=auth("x")),
        403,
        "ORDER_ACCESS_DENIED",
    )


async def test_gone_plan_price_or_catalog_are_refused(
    client: httpx.AsyncClient, app: Any, catalog_app: Any
) -> None:
    order = await active_order(client, app)
    plan = catalog_app.state.mock.catalog.plans[PLAN_BASIC_ID]
    pricings = plan["pricings"]
    plan["pricings"] = [p for p in pricings if p["duration"] != "MONTHLY"]
    assert_error(await new_renewal(client, order["id"]), 400, "INVALID_DURATION")
    plan["pricings"] = pricings
    plan["isActive"] = False
    assert_error(await new_renewal(client, order["id"]), 400, "INVALID_PLAN")
    plan["isActive"] = True
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=catalog_app), base_url="http://catalog"
    ) as control:
        response = await control.post("/_mock/faults", json={"status": 500})
        assert response.status_code == 200, response.text
    assert_error(await new_renewal(client, order["id"]), 503, "CATALOG_SERVICE_UNAVAILABLE")
    assert (await detail(client, order["id"]))["status"] == "ACTIVE"


async def test_paid_renewal_extends_the_period_in_one_step(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    renewal = (await new_renewal(client, order["id"], periods=2)).json()["data"]
    paid = await pay_renewal(client, renewal["id"])
    assert paid.status_code == 200, paid.text
    body = paid.json()["data"]
    assert body["status"] == "PAID" and body["paidAt"] is not None
    assert body["previousExpiresAt"] == order["expiresAt"]
    expected = extend(parse(order["expiresAt"]), "MONTHLY", 2)
    assert parse(body["newExpiresAt"]) == expected

    after = await detail(client, order["id"])
    assert parse(after["expiresAt"]) == expected
    [renewed] = history(after, "RENEWED")
    assert renewed["metadata"] == {
        "renewalId": renewal["id"],
        "previousExpiresAt": order["expiresAt"],
        "newExpiresAt": body["newExpiresAt"],
    }
    # Twice: 409, and the period moved once.
    assert_error(await pay_renewal(client, renewal["id"]), 409, "PAYMENT_STATUS_CONFLICT")
    assert (await detail(client, order["id"]))["expiresAt"] == after["expiresAt"]
    [event] = await events_of(app, order["id"], "renewal.paid")
    assert event["renewal"]["id"] == renewal["id"]
    assert event["order"]["expiresAt"] == after["expiresAt"]


async def test_payment_failed_is_an_event_and_the_renewal_waits(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    renewal = (await new_renewal(client, order["id"])).json()["data"]
    failed = await pay_renewal(client, renewal["id"], "PAYMENT_FAILED")
    assert failed.status_code == 200
    assert failed.json()["data"]["status"] == "PENDING_PAYMENT"
    assert "renewal.payment_failed" in await event_types(app, order["id"])
    assert (await pay_renewal(client, renewal["id"])).status_code == 200


async def test_renewal_paid_after_expiry_counts_from_now(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    renewal = (await new_renewal(client, order["id"])).json()["data"]
    clock.advance(timedelta(days=40))  # past expiresAt, not yet past the grace... nor scanned
    paid = (await pay_renewal(client, renewal["id"])).json()["data"]
    paid_at = parse(paid["paidAt"])
    assert parse(paid["newExpiresAt"]) == extend(paid_at, "MONTHLY", 1)
    assert parse(paid["newExpiresAt"]) > parse(order["expiresAt"])


async def test_paid_renewal_restores_an_expired_suspension_but_not_an_admin_one(
    client: httpx.AsyncClient, app: Any
) -> None:
    expired = await active_order(client, app)
    admin = await active_order(client, app)
    renewals = {}
    for order in (expired, admin):
        renewals[order["id"]] = (await new_renewal(client, order["id"])).json()["data"]["id"]
    assert (await ops(client, admin["id"], "suspend", reason="abuse")).status_code == 200
    clock.advance(timedelta(days=33))
    await scan(app)
    assert (await detail(client, expired["id"]))["suspensionReason"] == "EXPIRED"

    for renewal_id in renewals.values():
        assert (await pay_renewal(client, renewal_id)).status_code == 200
    restored = await detail(client, expired["id"])
    assert restored["status"] == "ACTIVE"
    assert restored["suspendedAt"] is None and restored["suspensionReason"] is None
    assert parse(restored["expiresAt"]) > clock.now()
    assert restored["statusHistory"][-1]["previousStatus"] == "SUSPENDED"
    assert "order.unsuspended" in await event_types(app, expired["id"])
    assert [a["type"] for a in await actions_of(app, expired["id"])][-1] == "POWER_ON"

    still = await detail(client, admin["id"])
    assert still["status"] == "SUSPENDED" and still["suspensionReason"] == "ADMIN"
    assert history(still, "RENEWED")
    assert "POWER_ON" not in [a["type"] for a in await actions_of(app, admin["id"])]


async def test_paid_renewal_takes_back_a_scheduled_cancellation(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    response = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=auth("life-user"))
    assert response.json()["data"]["cancelAtPeriodEnd"] is True
    renewal = (await new_renewal(client, order["id"])).json()["data"]
    assert (await pay_renewal(client, renewal["id"])).status_code == 200
    after = await detail(client, order["id"])
    assert after["cancelAtPeriodEnd"] is False
    assert [e["newStatus"] for e in after["statusHistory"][-2:]] == [
        "RENEWED",
        "CANCEL_UNSCHEDULED",
    ]


async def test_idempotency_key_replays_the_first_renewal(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    headers = {**auth("life-user"), "Idempotency-Key": "renew-1"}
    url = f"/api/v1/orders/{order['id']}/renewals"
    first = await client.post(url, json={"periods": 2}, headers=headers)
    again = await client.post(url, json={"periods": 2}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    other = await client.post(url, json={"periods": 3}, headers=headers)
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    listed = await client.get(url, headers=auth("life-user"))
    assert listed.json()["meta"]["total"] == 1


async def test_ops_create_a_renewal_for_the_owner(client: httpx.AsyncClient, app: Any) -> None:
    order = await active_order(client, app)
    response = await client.post(
        f"/api/v1/internal/orders/{order['id']}/renewals",
        json={"periods": 12},
        headers=INTERNAL,
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["pricing"]["basePrice"] == 1200000
    listed = await client.get(f"/api/v1/orders/{order['id']}/renewals", headers=auth("life-user"))
    assert listed.json()["data"][0]["id"] == response.json()["data"]["id"]
    unknown = await client.post(
        "/api/v1/internal/orders/5f0c6d1e-0000-4000-8000-000000000000/renewals", headers=INTERNAL
    )
    assert_error(unknown, 404, "ORDER_NOT_FOUND")
    no_key = await client.post(f"/api/v1/internal/orders/{order['id']}/renewals")
    assert_error(no_key, 401, "UNAUTHORIZED")
