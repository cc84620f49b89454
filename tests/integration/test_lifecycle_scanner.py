"""The lifecycle scan's five rules end to end (SPEC section 9), with the clock moved."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from prometheus_client import REGISTRY

from order_service import clock
from order_service.jsonresponse import iso
from tests.conftest import auth, make_settings
from tests.helpers import create_order, pay
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

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def move_to(moment: datetime) -> None:
    clock.advance(moment - clock.now())


def thresholds(order: dict[str, Any]) -> list[str]:
    return [entry["metadata"]["threshold"] for entry in history(order, "EXPIRING")]


async def test_unpaid_orders_are_canceled_after_the_ttl(
    client: httpx.AsyncClient, app: Any, database: Any
) -> None:
    unpaid = await create_order(client, "life-user")
    paid = await create_order(client, "life-user")
    await pay(client, paid["id"])
    clock.advance(timedelta(days=7) - MINUTE)
    assert (await scan(app)).canceled == 0
    never = make_settings(database.url, unpaid_order_ttl="0")
    clock.advance(2 * MINUTE)
    assert (await scan(app, settings=never)).canceled == 0  # UNPAID_ORDER_TTL=0: never
    result = await scan(app)
    assert result.canceled == 1
    order = await detail(client, unpaid["id"])
    assert order["status"] == "CANCELED"
    last = order["statusHistory"][-1]
    assert last["actor"] == "system" and "UNPAID_ORDER_TTL (P7D)" in last["reason"]
    assert "order.canceled" in await event_types(app, unpaid["id"])
    assert (await detail(client, paid["id"]))["status"] == "PROVISIONING"
    assert (await scan(app)).canceled == 0


async def test_one_reminder_per_threshold_and_period_never_repeated(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    expires = parse(order["expiresAt"])
    move_to(expires - 7 * DAY - MINUTE)
    assert (await scan(app)).reminded == 0
    clock.advance(2 * MINUTE)
    assert (await scan(app)).reminded == 1
    assert (await scan(app)).reminded == 0  # a new scanner (a restart) repeats nothing
    move_to(expires - 3 * DAY + MINUTE)
    assert (await scan(app)).reminded == 1
    move_to(expires - DAY + MINUTE)
    assert (await scan(app)).reminded == 1
    move_to(expires + MINUTE)
    assert (await scan(app)).reminded == 0
    after = await detail(client, order["id"])
    assert thresholds(after) == ["P7D", "P3D", "P1D"]
    assert history(after, "EXPIRING")[0]["metadata"]["expiresAt"] == order["expiresAt"]
    assert history(after, "EXPIRING")[0]["actor"] == "system"
    events = await events_of(app, order["id"], "order.expiring")
    assert [e["history"]["metadata"]["threshold"] for e in events] == ["P7D", "P3D", "P1D"]


async def test_a_late_scan_sends_one_reminder_and_skips_the_missed_ones(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    expires = parse(order["expiresAt"])
    # The scanner was down from before the 7-day mark until 2 days before the end.
    move_to(expires - 2 * DAY)
    assert (await scan(app)).reminded == 1
    assert (await scan(app)).reminded == 0
    move_to(expires - DAY + MINUTE)
    assert (await scan(app)).reminded == 1
    # The one sent late says how close the end really is.
    assert thresholds(await detail(client, order["id"])) == ["P3D", "P1D"]


async def test_thresholds_already_past_when_the_period_is_set_are_skipped(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    new_end = clock.now() + 2 * DAY
    assert (await ops(client, order["id"], "expiry", expiresAt=iso(new_end))).status_code == 200
    clock.advance(12 * 60 * MINUTE)
    assert (await scan(app)).reminded == 0
    move_to(new_end - DAY + MINUTE)
    assert (await scan(app)).reminded == 1
    move_to(new_end - MINUTE)
    assert (await scan(app)).reminded == 0
    assert thresholds(await detail(client, order["id"])) == ["P1D"]


async def test_a_renewal_starts_the_reminders_again(client: httpx.AsyncClient, app: Any) -> None:
    order = await active_order(client, app)
    expires = parse(order["expiresAt"])
    move_to(expires - 3 * DAY + MINUTE)
    result = await scan(app)
    assert result.reminded == 1  # P3D (late: P7D is skipped)
    # Within RENEWAL_INVOICE_LEAD (P7D) the same scan opened the next period's renewal.
    assert result.invoiced == 1
    listed = await client.get(f"/api/v1/orders/{order['id']}/renewals", headers=auth("life-user"))
    [renewal] = listed.json()["data"]
    paid = (await pay_renewal(client, renewal["id"])).json()["data"]
    new_end = parse(paid["newExpiresAt"])
    move_to(new_end - 7 * DAY + MINUTE)
    assert (await scan(app)).reminded == 1
    assert (await scan(app)).suspended == 0
    after = await detail(client, order["id"])
    assert thresholds(after) == ["P3D", "P7D"]
    assert history(after, "EXPIRING")[-1]["metadata"]["expiresAt"] == paid["newExpiresAt"]


async def test_a_scheduled_cancellation_terminates_at_the_end_of_the_period(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    response = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=auth("life-user"))
    assert response.status_code == 200
    expires = parse(order["expiresAt"])
    move_to(expires - MINUTE)
    assert (await scan(app)).ended == 0
    move_to(expires + MINUTE)
    result = await scan(app)
    assert result.ended == 1 and result.suspended == 0
    after = await detail(client, order["id"])
    assert after["status"] == "TERMINATED"
    assert after["terminationReason"] == "CANCELED_BY_USER"
    assert not history(after, "SUSPENDED")  # no suspension, no grace
    assert after["statusHistory"][-1]["actor"] == "system"
    assert [a["type"] for a in await actions_of(app, order["id"])] == ["DESTROY"]


async def test_expired_service_is_suspended_then_terminated(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    admin = await active_order(client, app)
    assert (await ops(client, admin["id"], "suspend")).status_code == 200
    renewal = (await new_renewal(client, order["id"])).json()["data"]
    expires = parse(order["expiresAt"])

    move_to(expires + DAY - MINUTE)  # within SUSPEND_GRACE
    assert (await scan(app)).suspended == 0
    assert (await detail(client, order["id"]))["status"] == "ACTIVE"
    move_to(expires + DAY + MINUTE)
    assert (await scan(app)).suspended == 1
    suspended = await detail(client, order["id"])
    assert suspended["status"] == "SUSPENDED" and suspended["suspensionReason"] == "EXPIRED"
    assert suspended["statusHistory"][-1]["actor"] == "system"
    actions = await actions_of(app, order["id"])
    assert [(a["type"], a["requested_by"]) for a in actions] == [
        ("SHUTDOWN", "system"),
        ("POWER_OFF", "system"),
    ]
    assert actions[1]["next_attempt_at"] == parse(suspended["suspendedAt"]) + timedelta(minutes=2)
    assert (await scan(app)).suspended == 0  # once

    suspended_at = parse(suspended["suspendedAt"])
    move_to(suspended_at + 7 * DAY - MINUTE)
    assert (await scan(app)).terminated == 0
    move_to(suspended_at + 7 * DAY + MINUTE)
    assert (await scan(app)).terminated == 1
    ended = await detail(client, order["id"])
    assert ended["status"] == "TERMINATED" and ended["terminationReason"] == "EXPIRED"
    assert (await actions_of(app, order["id"]))[-1]["type"] == "DESTROY"
    listed = await client.get(f"/api/v1/orders/{order['id']}/renewals", headers=auth("life-user"))
    assert [r["status"] for r in listed.json()["data"]] == ["CANCELED"]
    assert listed.json()["data"][0]["id"] == renewal["id"]
    # History stays, from the first row to the last.
    statuses = [entry["newStatus"] for entry in ended["statusHistory"]]
    assert statuses[0] == "PENDING_PAYMENT" and statuses[-1] == "TERMINATED"

    # An ADMIN suspension is never ended by the service.
    clock.advance(60 * DAY)
    await scan(app)
    still = await detail(client, admin["id"])
    assert still["status"] == "SUSPENDED" and still["suspensionReason"] == "ADMIN"


async def test_user_cancel_of_an_expired_suspension_terminates_now(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    move_to(parse(order["expiresAt"]) + DAY + MINUTE)
    await scan(app)
    response = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=auth("life-user"))
    assert response.status_code == 200, response.text
    body = response.json()["data"]
    assert body["status"] == "TERMINATED" and body["terminationReason"] == "CANCELED_BY_USER"
    actions = await actions_of(app, order["id"])
    assert [a["type"] for a in actions] == ["SHUTDOWN", "POWER_OFF", "DESTROY"]


async def test_a_backlog_drains_in_batches_in_one_scan(client: httpx.AsyncClient, app: Any) -> None:
    orders = [await active_order(client, app) for _ in range(23)]
    move_to(max(parse(o["expiresAt"]) for o in orders) + 2 * DAY)
    metric = ("order_service_lifecycle_changes_total", {"rule": "suspended"})
    before = REGISTRY.get_sample_value(*metric) or 0
    result = await scan(app, batch=5)
    assert result.suspended == 23 and result.failed == 0
    assert REGISTRY.get_sample_value(*metric) == before + 23
    for order in orders:
        assert (await detail(client, order["id"]))["status"] == "SUSPENDED"


async def test_the_background_duty_scans_by_itself(
    database: Any, catalog_app: Any, clean_db: None
) -> None:
    from order_service.app import create_app

    for enabled in (True, False):
        settings = make_settings(
            database.url,
            provisioning_enabled=False,
            lifecycle_enabled=enabled,
            lifecycle_scan_interval="0.1",
        )
        app = create_app(
            settings, catalog_transport=httpx.ASGITransport(app=catalog_app), start_provisioner=None
        )
        async with app.router.lifespan_context(app):
            assert ("lifecycle" in app.state.background.duties) is enabled
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
                order = await create_order(client, "life-user")
                clock.advance(timedelta(days=8))
                deadline = time.monotonic() + (5 if enabled else 0.5)
                while time.monotonic() < deadline:
                    status = (await detail(client, order["id"]))["status"]
                    if status == "CANCELED":
                        break
                    await asyncio.sleep(0.05)
                assert status == ("CANCELED" if enabled else "PENDING_PAYMENT")
        clock.reset()


async def test_an_ops_expiry_in_the_past_lets_the_next_scan_act(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    past = clock.now() - 2 * DAY
    response = await ops(client, order["id"], "expiry", expiresAt=iso(past), reason="fraud")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "ACTIVE"
    result = await scan(app)
    assert result.suspended == 1 and result.reminded == 0
    after = await detail(client, order["id"])
    assert after["status"] == "SUSPENDED" and after["suspensionReason"] == "EXPIRED"
