"""Plan changes through the HTTP API (SPEC section 15): quote, create, pay, cancel, refusals.

The engine does not run here (no DigitalOcean droplet): a PAID plan change
queues its RESIZE action, which test_plan_changes_resize.py carries out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import update

from mocks.catalog_service.data import (
    IMAGE_DOCKER_ID,
    PLAN_BASIC_ID,
    PLAN_BUSINESS_ID,
    PLAN_CPU_ID,
    PLAN_INACTIVE_ID,
    PLAN_MINI_ID,
    PLAN_PRO_ID,
    PLAN_STANDARD_ID,
)
from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from order_service.orders.models import Order
from tests.conftest import INTERNAL, auth, make_settings
from tests.helpers import assert_error, create_order
from tests.lifecycle_helpers import (
    actions_of,
    active_order,
    detail,
    event_types,
    events_of,
    new_renewal,
    ops,
    parse,
    pay_renewal,
    tasks_t,
)

USER = "life-user"
CHANGE_KEYS = {
    "id",
    "orderId",
    "fromPlanId",
    "toPlanId",
    "toPlanName",
    "duration",
    "oldPrice",
    "newPrice",
    "amountDue",
    "currency",
    "resizeDisk",
    "status",
    "actionId",
    "errorCode",
    "errorMessage",
    "createdAt",
    "updatedAt",
    "paidAt",
    "completedAt",
}


@pytest.fixture
def fake_do() -> Any:
    return create_fake_do(FakeConfig(boot_seconds=0, action_seconds=0))


@pytest.fixture
async def app(database: Any, catalog_app: Any, fake_do: Any, clean_db: None) -> AsyncIterator[Any]:
    """The API alone, with DO's region and size lists from the fake (no duties)."""
    from order_service.app import create_app

    application = create_app(
        make_settings(database.url, digitalocean_api_url="http://do"),
        catalog_transport=httpx.ASGITransport(app=catalog_app),
        digitalocean_transport=httpx.ASGITransport(app=fake_do),
        start_provisioner=False,
    )
    async with application.router.lifespan_context(application):
        yield application


def base(order_id: str, ops_side: bool = False) -> str:
    return f"/api/v1/{'internal/' if ops_side else ''}orders/{order_id}"


async def quote(client: httpx.AsyncClient, order_id: str, plan_id: str) -> httpx.Response:
    return await client.get(
        f"{base(order_id)}/plan-change-quote", params={"planId": plan_id}, headers=auth(USER)
    )


async def change(
    client: httpx.AsyncClient, order_id: str, plan_id: str, **headers: str
) -> httpx.Response:
    return await client.post(
        f"{base(order_id)}/plan-changes", json={"planId": plan_id}, headers=auth(USER) | headers
    )


async def pay_change(
    client: httpx.AsyncClient, change_id: str, status: str = "PAID"
) -> httpx.Response:
    return await client.post(
        f"/api/v1/internal/plan-changes/{change_id}/payment-status",
        json={"status": status, "notes": "BCA transfer"},
        headers=INTERNAL,
    )


async def set_region(app: Any, order_id: str, region: str) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(tasks_t)
            .where(tasks_t.c.order_id == uuid.UUID(order_id))
            .values(do_region=region)
        )


async def test_quote_is_the_price_rule_on_live_prices(client: httpx.AsyncClient, app: Any) -> None:
    order = await active_order(client, app)
    response = await quote(client, order["id"], PLAN_STANDARD_ID)
    assert response.status_code == 200, response.text
    body = response.json()["data"]
    # Basic 100,000 - 10 % promo = 90,000; Standard 200,000 - 15,000 fixed promo = 185,000.
    assert body["fromPlanId"] == PLAN_BASIC_ID and body["toPlanId"] == PLAN_STANDARD_ID
    assert (body["oldPrice"], body["newPrice"], body["currency"]) == (90000, 185000, "IDR")
    assert body["toPlanName"] == "Standard 2GB" and body["duration"] == "MONTHLY"
    assert body["resizeDisk"] is True  # 25 -> 50 GB
    expires = parse(order["expiresAt"])
    start = expires - relativedelta(months=1)  # one calendar month ending at expiresAt
    assert body["periodSeconds"] == int((expires - start).total_seconds())
    assert 0 < body["remainingSeconds"] <= body["periodSeconds"]
    assert body["amountDue"] == 95000 * body["remainingSeconds"] // body["periodSeconds"]
    # Nothing is stored.
    listed = await client.get(f"{base(order['id'])}/plan-changes", headers=auth(USER))
    assert listed.json() == {
        "data": [],
        "meta": {"page": 1, "limit": 10, "total": 0, "totalPages": 0},
    }
    # A CPU/RAM-only move keeps the disk; a cheaper plan costs nothing.
    cpu = (await quote(client, order["id"], PLAN_CPU_ID)).json()["data"]
    assert cpu["resizeDisk"] is False and cpu["newPrice"] == 250000


async def test_create_pay_queues_the_resize_and_events(client: httpx.AsyncClient, app: Any) -> None:
    order = await active_order(client, app)
    created = await change(client, order["id"], PLAN_STANDARD_ID)
    assert created.status_code == 201, created.text
    body = created.json()["data"]
    assert set(body) == CHANGE_KEYS
    assert body["status"] == "PENDING_PAYMENT" and body["amountDue"] > 0
    assert body["actionId"] is None and body["paidAt"] is None
    assert await actions_of(app, order["id"]) == []

    failed = await pay_change(client, body["id"], "PAYMENT_FAILED")
    assert failed.status_code == 200 and failed.json()["data"]["status"] == "PENDING_PAYMENT"
    paid = await pay_change(client, body["id"])
    assert paid.status_code == 200, paid.text
    after = paid.json()["data"]
    assert after["status"] == "PAID" and after["paidAt"] is not None
    [action] = await actions_of(app, order["id"])
    assert (action["type"], action["status"], action["requested_by"]) == (
        "RESIZE",
        "PENDING",
        "system",
    )
    assert after["actionId"] == str(action["id"])
    assert_error(await pay_change(client, body["id"]), 409, "PAYMENT_STATUS_CONFLICT")
    # While it runs: no other action, no other change, no renewal, no cancel.
    other = await client.post(
        f"{base(order['id'])}/actions", json={"type": "REBOOT"}, headers=auth(USER)
    )
    assert assert_error(other, 409, "ACTION_IN_PROGRESS")["details"]["actionId"] == str(
        action["id"]
    )
    pending = assert_error(
        await change(client, order["id"], PLAN_CPU_ID), 409, "PLAN_CHANGE_PENDING"
    )
    assert pending["details"]["planChangeId"] == body["id"]
    assert_error(await new_renewal(client, order["id"]), 409, "PLAN_CHANGE_PENDING")
    cancel = await client.post(
        f"{base(order['id'])}/plan-changes/{body['id']}/cancel", headers=auth(USER)
    )
    assert_error(cancel, 409, "ORDER_STATUS_CONFLICT")
    # The order keeps its plan until DO is done.
    assert (await detail(client, order["id"]))["planId"] == PLAN_BASIC_ID
    types = await event_types(app, order["id"])
    assert [t for t in types if t.startswith("plan_change.")] == [
        "plan_change.created",
        "plan_change.payment_failed",
        "plan_change.paid",
    ]
    [event] = await events_of(app, order["id"], "plan_change.paid")
    assert event["planChange"]["id"] == body["id"] and event["order"]["id"] == order["id"]


async def test_nothing_due_is_paid_at_once(client: httpx.AsyncClient, app: Any) -> None:
    order = await active_order(client, app, planId=PLAN_CPU_ID)
    created = await change(client, order["id"], PLAN_STANDARD_ID)
    assert created.status_code == 201, created.text
    body = created.json()["data"]
    # CPU 250,000 -> Standard 185,000: cheaper, no credit, nothing due.
    assert body["amountDue"] == 0 and body["status"] == "PAID" and body["actionId"]
    types = await event_types(app, order["id"])
    assert types.count("plan_change.created") == 1 and types.count("plan_change.paid") == 1


async def test_cancel_and_list_newest_first(client: httpx.AsyncClient, app: Any) -> None:
    order = await active_order(client, app)
    first = (await change(client, order["id"], PLAN_STANDARD_ID)).json()["data"]
    url = f"{base(order['id'])}/plan-changes"
    canceled = await client.post(f"{url}/{first['id']}/cancel", headers=auth(USER))
    assert canceled.status_code == 200 and canceled.json()["data"]["status"] == "CANCELED"
    again = await client.post(f"{url}/{first['id']}/cancel", headers=auth(USER))
    assert_error(again, 409, "ORDER_STATUS_CONFLICT")
    unknown = await client.post(f"{url}/{uuid.uuid4()}/cancel", headers=auth(USER))
    assert_error(unknown, 404, "PLAN_CHANGE_NOT_FOUND")
    assert_error(
        await client.post(f"{url}/nope/cancel", headers=auth(USER)), 404, "PLAN_CHANGE_NOT_FOUND"
    )
    second = await client.post(
        f"{base(order['id'], True)}/plan-changes", json={"planId": PLAN_CPU_ID}, headers=INTERNAL
    )
    assert second.status_code == 201, second.text
    listed = await client.get(url, params={"limit": 1}, headers=auth(USER))
    assert [c["id"] for c in listed.json()["data"]] == [second.json()["data"]["id"]]
    assert listed.json()["meta"] == {"page": 1, "limit": 1, "total": 2, "totalPages": 2}
    ops_list = await client.get(f"{base(order['id'], True)}/plan-changes", headers=INTERNAL)
    assert ops_list.json()["meta"]["total"] == 2
    ops_cancel = await client.post(
        f"{base(order['id'], True)}/plan-changes/{second.json()['data']['id']}/cancel",
        headers=INTERNAL,
    )
    assert ops_cancel.json()["data"]["status"] == "CANCELED"
    assert (await event_types(app, order["id"])).count("plan_change.canceled") == 2


async def test_every_refusal(client: httpx.AsyncClient, app: Any, catalog_app: Any) -> None:
    order = await active_order(client, app)
    oid = order["id"]
    for send in (lambda p: quote(client, oid, p), lambda p: change(client, oid, p)):
        assert_error(await send(PLAN_BASIC_ID), 400, "VALIDATION_ERROR")  # its own plan
        assert_error(await send(PLAN_INACTIVE_ID), 400, "INVALID_PLAN")
        assert_error(await send(str(uuid.uuid4())), 400, "INVALID_PLAN")
        assert_error(await send("not-a-uuid"), 400, "VALIDATION_ERROR")
        small = assert_error(await send(PLAN_MINI_ID), 409, "PLAN_CHANGE_NOT_POSSIBLE")
        assert small["details"]["reason"] == "DISK_TOO_SMALL"
    # A yearly order on Pro has no active YEARLY price to move from / to.
    annual = await active_order(client, app, duration="ANNUAL")
    assert_error(await quote(client, annual["id"], PLAN_PRO_ID), 400, "INVALID_DURATION")
    # The size is not offered in the order's region.
    await set_region(app, oid, "blr1")
    far = assert_error(await quote(client, oid, PLAN_BUSINESS_ID), 409, "PLAN_CHANGE_NOT_POSSIBLE")
    assert far["details"] == {
        "reason": "SIZE_NOT_IN_REGION",
        "size": "s-4vcpu-8gb",
        "region": "blr1",
    }
    await set_region(app, oid, "sgp1")
    # Another user's order, unknown orders, states.
    assert_error(
        await client.get(
            f"{base(oid)}/plan-change-quote", params={"planId": PLAN_STANDARD_ID}, headers=auth("x")
        ),
        403,
        "ORDER_ACCESS_DENIED",
    )
    assert_error(await quote(client, str(uuid.uuid4()), PLAN_STANDARD_ID), 404, "ORDER_NOT_FOUND")
    unpaid = await create_order(client, USER)
    assert_error(await change(client, unpaid["id"], PLAN_STANDARD_ID), 409, "ORDER_STATUS_CONFLICT")
    assert (await ops(client, oid, "suspend")).status_code == 200
    assert_error(await change(client, oid, PLAN_STANDARD_ID), 409, "SERVICE_SUSPENDED")
    ops_side = await client.post(
        f"{base(oid, True)}/plan-changes", json={"planId": PLAN_STANDARD_ID}, headers=INTERNAL
    )
    assert_error(ops_side, 409, "SERVICE_SUSPENDED")
    # An unpaid renewal first: RENEWAL_PENDING (and the other way round, see above).
    other = await active_order(client, app)
    renewal = (await new_renewal(client, other["id"])).json()["data"]
    blocked = assert_error(
        await change(client, other["id"], PLAN_STANDARD_ID), 409, "RENEWAL_PENDING"
    )
    assert blocked["details"]["renewalId"] == renewal["id"]
    # Catalog down: 503, nothing stored.
    transport = httpx.ASGITransport(app=catalog_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as mock:
        await mock.post("/_mock/faults", json={"status": 503})
        assert_error(
            await quote(client, other["id"], PLAN_CPU_ID), 503, "CATALOG_SERVICE_UNAVAILABLE"
        )
        await mock.delete("/_mock/faults")


async def test_image_not_allowed(client: httpx.AsyncClient, app: Any, catalog_app: Any) -> None:
    order = await active_order(client, app, imageId=IMAGE_DOCKER_ID)
    # The plan stops allowing Docker (catalog's data changed since the order).
    plan = catalog_app.state.mock.catalog.plans[PLAN_CPU_ID]
    plan["allowedImageIds"] = [i for i in plan["allowedImageIds"] if i != IMAGE_DOCKER_ID]
    refused = assert_error(
        await quote(client, order["id"], PLAN_CPU_ID), 409, "PLAN_CHANGE_NOT_POSSIBLE"
    )
    assert refused["details"]["reason"] == "IMAGE_NOT_ALLOWED"


async def test_a_disk_grown_earlier_is_what_counts(client: httpx.AsyncClient, app: Any) -> None:
    # After Basic -> Standard grew the disk to 50 GB, CPU (25 GB) is too small even
    # though Basic (25 GB) would have fit it; a 50 GB plan needs no disk resize.
    order = await active_order(client, app, planId=PLAN_CPU_ID)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Order.__table__)
            .where(Order.__table__.c.id == uuid.UUID(order["id"]))
            .values(disk_gb=50)
        )
    small = assert_error(
        await quote(client, order["id"], PLAN_BASIC_ID), 409, "PLAN_CHANGE_NOT_POSSIBLE"
    )
    assert small["details"] == {"reason": "DISK_TOO_SMALL", "diskGb": 25, "serverDiskGb": 50}
    same = (await quote(client, order["id"], PLAN_STANDARD_ID)).json()["data"]
    assert same["resizeDisk"] is False


async def test_two_racing_pays_one_wins(client: httpx.AsyncClient, app: Any) -> None:
    order = await active_order(client, app)
    body = (await change(client, order["id"], PLAN_STANDARD_ID)).json()["data"]
    answers = await asyncio.gather(*(pay_change(client, body["id"]) for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]
    assert len(await actions_of(app, order["id"])) == 1
    assert_error(await pay_change(client, str(uuid.uuid4())), 404, "PLAN_CHANGE_NOT_FOUND")


async def test_idempotency_key_replays_the_first_change(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    first = await change(client, order["id"], PLAN_STANDARD_ID, **{"Idempotency-Key": "k-1"})
    again = await change(client, order["id"], PLAN_STANDARD_ID, **{"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    other = await change(client, order["id"], PLAN_CPU_ID, **{"Idempotency-Key": "k-1"})
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")


async def test_a_renewal_paid_first_counts_the_extra_period_in_full(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    renewal = (await new_renewal(client, order["id"], periods=2)).json()["data"]
    assert (await pay_renewal(client, renewal["id"])).status_code == 200
    body = (await quote(client, order["id"], PLAN_STANDARD_ID)).json()["data"]
    assert body["remainingSeconds"] > 2 * body["periodSeconds"]  # three months left
    assert body["amountDue"] == 95000 * body["remainingSeconds"] // body["periodSeconds"]
    assert body["amountDue"] > 2 * 95000


async def test_a_renewal_and_a_plan_change_racing_exclude_each_other(
    client: httpx.AsyncClient, app: Any
) -> None:
    for _ in range(3):
        order = await active_order(client, app)
        renewal, plan_change = await asyncio.gather(
            new_renewal(client, order["id"]), change(client, order["id"], PLAN_STANDARD_ID)
        )
        codes = sorted([renewal.status_code, plan_change.status_code])
        assert codes == [201, 409], (renewal.text, plan_change.text)
        loser = renewal if renewal.status_code == 409 else plan_change
        assert loser.json()["error"]["code"] in {"PLAN_CHANGE_PENDING", "RENEWAL_PENDING"}
