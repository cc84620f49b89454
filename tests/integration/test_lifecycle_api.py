"""Ops' and users' lifecycle changes through the HTTP API (SPEC sections 5 and 9)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx

from order_service import clock
from order_service.actions.writer import enqueue_action
from order_service.jsonresponse import iso
from order_service.orders.states import ActionType
from tests.conftest import auth
from tests.helpers import assert_error, create_order, pay
from tests.lifecycle_helpers import (
    actions_of,
    active_order,
    detail,
    event_types,
    fail,
    history,
    new_renewal,
    ops,
    parse,
)


def cancel(client: httpx.AsyncClient, order_id: str, user: str = "life-user") -> Any:
    return client.post(f"/api/v1/orders/{order_id}/cancel", headers=auth(user))


def uncancel(client: httpx.AsyncClient, order_id: str, user: str = "life-user") -> Any:
    return client.delete(f"/api/v1/orders/{order_id}/cancel", headers=auth(user))


async def test_user_schedules_and_takes_back_the_cancellation(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    scheduled = await cancel(client, order["id"])
    assert scheduled.status_code == 200, scheduled.text
    body = scheduled.json()["data"]
    assert body["status"] == "ACTIVE" and body["cancelAtPeriodEnd"] is True
    assert "statusHistory" not in body
    assert_error(await cancel(client, order["id"]), 409, "ORDER_STATUS_CONFLICT")
    assert_error(await cancel(client, order["id"], "other"), 403, "ORDER_ACCESS_DENIED")
    assert_error(await uncancel(client, order["id"], "other"), 403, "ORDER_ACCESS_DENIED")

    taken_back = await uncancel(client, order["id"])
    assert taken_back.status_code == 200, taken_back.text
    assert taken_back.json()["data"]["cancelAtPeriodEnd"] is False
    assert_error(await uncancel(client, order["id"]), 409, "ORDER_STATUS_CONFLICT")

    after = await detail(client, order["id"])
    [entry] = history(after, "CANCEL_SCHEDULED")
    assert entry["metadata"] == {"expiresAt": order["expiresAt"]}
    assert entry["actor"] == "user:life-user"
    assert len(history(after, "CANCEL_UNSCHEDULED")) == 1
    types = await event_types(app, order["id"])
    assert "order.cancel_scheduled" in types and "order.cancel_unscheduled" in types
    # No droplet work for a scheduled end.
    assert await actions_of(app, order["id"]) == []


async def test_user_cancel_by_status(client: httpx.AsyncClient, app: Any) -> None:
    unpaid = await create_order(client, "life-user")
    canceled = await cancel(client, unpaid["id"])
    assert canceled.json()["data"]["status"] == "CANCELED"
    assert_error(await cancel(client, unpaid["id"]), 409, "ORDER_STATUS_CONFLICT")
    provisioning = await create_order(client, "life-user")
    await pay(client, provisioning["id"])
    assert_error(await cancel(client, provisioning["id"]), 409, "ORDER_STATUS_CONFLICT")
    assert_error(await uncancel(client, unpaid["id"]), 409, "ORDER_STATUS_CONFLICT")
    missing = "5f0c6d1e-0000-4000-8000-000000000000"
    assert_error(await cancel(client, missing), 404, "ORDER_NOT_FOUND")
    assert_error(await uncancel(client, "nope"), 404, "ORDER_NOT_FOUND")


async def test_ops_suspend_and_unsuspend(client: httpx.AsyncClient, app: Any) -> None:
    order = await active_order(client, app)
    suspended = await ops(client, order["id"], "suspend", reason="abuse report #7")
    assert suspended.status_code == 200, suspended.text
    body = suspended.json()["data"]
    assert body["status"] == "SUSPENDED" and body["suspensionReason"] == "ADMIN"
    assert body["suspendedAt"] is not None
    assert body["statusHistory"][-1]["reason"] == "abuse report #7"
    assert body["statusHistory"][-1]["actor"] == "admin"
    actions = await actions_of(app, order["id"])
    assert [(a["type"], a["requested_by"]) for a in actions] == [
        ("SHUTDOWN", "system"),
        ("POWER_OFF", "system"),
    ]
    # The hard power-off waits SHUTDOWN_GRACE for the graceful shutdown.
    grace = actions[1]["next_attempt_at"] - parse(body["suspendedAt"])
    assert timedelta(minutes=2) - timedelta(seconds=1) <= grace <= timedelta(minutes=2)

    assert_error(await ops(client, order["id"], "suspend"), 409, "ORDER_STATUS_CONFLICT")
    # The user cannot cancel an ADMIN suspension away, nor renew it back on.
    assert_error(await cancel(client, order["id"]), 409, "SERVICE_SUSPENDED")

    back = await ops(client, order["id"], "unsuspend")
    assert back.status_code == 200, back.text
    body = back.json()["data"]
    assert body["status"] == "ACTIVE"
    assert body["suspendedAt"] is None and body["suspensionReason"] is None
    assert body["expiresAt"] == order["expiresAt"]  # unsuspending moves no period
    assert body["activatedAt"] == order["activatedAt"]
    assert (await actions_of(app, order["id"]))[-1]["type"] == "POWER_ON"
    assert_error(await ops(client, order["id"], "unsuspend"), 409, "ORDER_STATUS_CONFLICT")
    types = await event_types(app, order["id"])
    assert "order.suspended" in types and "order.unsuspended" in types


async def test_unsuspend_is_refused_while_the_period_is_over(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    assert (await ops(client, order["id"], "suspend")).status_code == 200
    clock.advance(timedelta(days=32))
    error = assert_error(await ops(client, order["id"], "unsuspend"), 409, "ORDER_STATUS_CONFLICT")
    assert "expir" in error["message"]
    later = iso(clock.now() + timedelta(days=10))
    changed = await ops(client, order["id"], "expiry", expiresAt=later, reason="goodwill")
    assert changed.status_code == 200, changed.text
    assert (await ops(client, order["id"], "unsuspend")).status_code == 200


async def test_ops_set_the_expiry(client: httpx.AsyncClient, app: Any) -> None:
    order = await active_order(client, app)
    new_end = "2031-05-31T12:00:00Z"
    response = await ops(client, order["id"], "expiry", expiresAt=new_end, reason="migration")
    assert response.status_code == 200, response.text
    body = response.json()["data"]
    assert body["expiresAt"] == new_end and body["status"] == "ACTIVE"
    [entry] = history(body, "EXPIRY_CHANGED")
    assert entry["metadata"] == {"previousExpiresAt": order["expiresAt"], "expiresAt": new_end}
    assert entry["reason"] == "migration"
    assert "order.expiry_changed" in await event_types(app, order["id"])
    # A time zone is required; the order must be ACTIVE or SUSPENDED.
    naive = await ops(client, order["id"], "expiry", expiresAt="2031-05-31T12:00:00")
    assert_error(naive, 400, "VALIDATION_ERROR")
    assert_error(await ops(client, order["id"], "expiry"), 400, "VALIDATION_ERROR")
    unpaid = await create_order(client, "life-user")
    refused = await ops(client, unpaid["id"], "expiry", expiresAt=new_end)
    assert_error(refused, 409, "ORDER_STATUS_CONFLICT")
    missing = await ops(client, str(uuid.uuid4()), "expiry", expiresAt=new_end)
    assert_error(missing, 404, "ORDER_NOT_FOUND")


# SPEC section 2: a timestamp in a body is an ISO 8601 string with a time zone.
NOT_ISO_WITH_A_ZONE = {
    "a number (unix seconds)": 5,
    "a large number": 1_900_000_000,
    "a float": 1.9e9,
    "a numeric string": "1900000000",
    "a date alone": "2031-05-31",
    "a date with a zone but no time": "2031-05-31Z",
    "a time without a zone": "2031-05-31T12:00:00",
    "a time alone": "12:00:00Z",
    "a boolean": True,
    "null": None,
    "a list": ["2031-05-31T12:00:00Z"],
}


async def test_an_expiry_must_be_an_iso_string_with_a_zone(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    for what, value in NOT_ISO_WITH_A_ZONE.items():
        refused = await ops(client, order["id"], "expiry", expiresAt=value)
        error = assert_error(refused, 400, "VALIDATION_ERROR")
        fields = error["details"]["fields"]
        assert [f["field"] for f in fields] == ["expiresAt"], (what, fields)
    untouched = await detail(client, order["id"])
    assert untouched["expiresAt"] == order["expiresAt"]
    assert not history(untouched, "EXPIRY_CHANGED")
    # An offset other than Z is a zone too; the order shows the moment in UTC.
    accepted = await ops(client, order["id"], "expiry", expiresAt="2031-05-31T19:00:00+07:00")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["data"]["expiresAt"] == "2031-05-31T12:00:00Z"


async def test_ops_terminate_a_failed_order(client: httpx.AsyncClient, app: Any) -> None:
    order = await create_order(client, "life-user")
    await pay(client, order["id"])
    await fail(app, order["id"])
    response = await ops(client, order["id"], "terminate", reason="customer gave up")
    assert response.status_code == 200, response.text
    body = response.json()["data"]
    assert body["status"] == "TERMINATED" and body["terminationReason"] == "ADMIN"
    assert body["terminatedAt"] is not None
    assert [a["type"] for a in await actions_of(app, order["id"])] == ["DESTROY"]
    assert_error(await ops(client, order["id"], "terminate"), 409, "ORDER_STATUS_CONFLICT")
    unpaid = await create_order(client, "life-user")
    assert_error(await ops(client, unpaid["id"], "terminate"), 409, "ORDER_STATUS_CONFLICT")


async def test_termination_cancels_the_open_renewal_and_pending_user_actions(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    renewal = (await new_renewal(client, order["id"])).json()["data"]
    async with app.state.sessionmaker() as session, session.begin():
        await enqueue_action(
            session, uuid.UUID(order["id"]), ActionType.REBOOT, requested_by="user:life-user"
        )
    assert (await ops(client, order["id"], "terminate")).status_code == 200
    listed = await client.get(f"/api/v1/orders/{order['id']}/renewals", headers=auth("life-user"))
    assert listed.json()["data"][0]["id"] == renewal["id"]
    assert listed.json()["data"][0]["status"] == "CANCELED"
    actions = await actions_of(app, order["id"])
    assert [(a["type"], a["status"], a["error_code"]) for a in actions] == [
        ("REBOOT", "CANCELED", "SUPERSEDED"),
        ("DESTROY", "PENDING", None),
    ]
    types = await event_types(app, order["id"])
    assert "renewal.canceled" in types and "order.terminated" in types
    # The REBOOT never reached DO: canceled, not failed (SPEC section 3).
    assert "action.canceled" in types and "action.failed" not in types
    # Terminated is final: no renewal, no cancel.
    assert_error(await new_renewal(client, order["id"]), 409, "ORDER_STATUS_CONFLICT")
    assert_error(await cancel(client, order["id"]), 409, "ORDER_STATUS_CONFLICT")


async def test_ops_endpoints_need_the_api_key(client: httpx.AsyncClient, app: Any) -> None:
    order = await active_order(client, app)
    for verb in ("suspend", "unsuspend", "terminate", "expiry"):
        response = await client.post(f"/api/v1/internal/orders/{order['id']}/{verb}")
        assert_error(response, 401, "UNAUTHORIZED")
        response = await client.post(
            f"/api/v1/internal/orders/{order['id']}/{verb}", headers={"X-API-Key": "wrong"}
        )
        assert_error(response, 401, "UNAUTHORIZED")
    assert (await detail(client, order["id"]))["status"] == "ACTIVE"
