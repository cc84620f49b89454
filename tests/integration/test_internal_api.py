"""The ops API (/api/v1/internal/orders, X-API-Key) end to end on the real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.orders.models import Order, StatusHistory
from order_service.orders.schemas import DataEnvelope, ListEnvelope, OrderOut
from order_service.provisioning.models import ProvisioningTask
from tests.conftest import INTERNAL, auth
from tests.helpers import assert_error, create_order, pay

INTERNAL_ORDERS = "/api/v1/internal/orders"


def detail_path(order_id: str) -> str:
    return f"{INTERNAL_ORDERS}/{order_id}"


async def detail(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await client.get(detail_path(order_id), headers=INTERNAL)
    assert response.status_code == 200, response.text
    DataEnvelope[OrderOut].model_validate(response.json())
    return response.json()["data"]


async def history_rows(engine: AsyncEngine, order_id: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(StatusHistory.previous_status, StatusHistory.new_status, StatusHistory.actor)
            .where(StatusHistory.order_id == uuid.UUID(order_id))
            .order_by(StatusHistory.created_at, StatusHistory.id)
        )
        return [tuple(row) for row in rows]


async def force_failed(engine: AsyncEngine, order_id: str, *, droplet_id: int | None) -> None:
    """What the provisioner would leave behind after giving up (it is not running here)."""
    oid = uuid.UUID(order_id)
    now = datetime.now(UTC)
    tasks = ProvisioningTask.__table__
    async with engine.begin() as connection:
        await connection.execute(
            update(Order.__table__).where(Order.__table__.c.id == oid).values(status="FAILED")
        )
        await connection.execute(
            update(tasks)
            .where(tasks.c.order_id == oid)
            .values(
                status="FAILED",
                error_code="PROVISIONING_TIMEOUT",
                error_message="droplet was not active before the deadline",
                attempts=60,
                droplet_id=droplet_id,
                droplet_name="vps-test" if droplet_id else None,
                started_at=now,
                completed_at=now,
                requested_at=now,
            )
        )


# ---------------------------------------------------------------- payment status


async def test_paid_starts_provisioning(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    order = await create_order(client, "alice")
    response = await client.post(
        f"{detail_path(order['id'])}/payment-status",
        json={"status": "PAID", "notes": "BCA transfer #8812"},
        headers=INTERNAL,
    )
    assert response.status_code == 200, response.text
    body = DataEnvelope[OrderOut].model_validate(response.json()).data
    assert body.status == "PROVISIONING"
    assert body.paid_at is not None
    assert response.json()["data"]["paidAt"].endswith("Z")
    task = body.provisioning_task
    assert task is not None
    assert task.status == "PENDING"
    assert (task.do_region, task.do_size, task.do_image) == (
        "sgp1",
        "s-1vcpu-1gb",
        "ubuntu-22-04-x64",
    )
    assert task.droplet_id is None
    assert task.error_code is None
    assert task.attempts == 0
    assert [h.new_status for h in body.status_history or []] == [
        "PENDING_PAYMENT",
        "PAID",
        "PROVISIONING",
    ]
    paid_row = (body.status_history or [])[1]
    assert paid_row.reason == "BCA transfer #8812"
    assert paid_row.actor == "admin"

    # The owner sees the task too.
    mine = await client.get(f"/api/v1/orders/{order['id']}", headers=auth("alice"))
    assert mine.json()["data"]["provisioningTask"]["id"] == str(task.id)


async def test_paid_twice_is_a_conflict(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    order = await create_order(client)
    assert (await pay(client, order["id"])).status_code == 200
    error = assert_error(await pay(client, order["id"]), 409, "PAYMENT_STATUS_CONFLICT")
    assert error["details"]["currentStatus"] == "PROVISIONING"
    async with engine.connect() as connection:
        tasks = await connection.execute(select(func.count()).select_from(ProvisioningTask))
        assert tasks.scalar_one() == 1
    assert [row[1] for row in await history_rows(engine, order["id"])] == [
        "PENDING_PAYMENT",
        "PAID",
        "PROVISIONING",
    ]


async def test_payment_failed_is_recorded_and_payment_can_be_retried(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(client, "bob")
    failed = await client.post(
        f"{detail_path(order['id'])}/payment-status",
        json={"status": "PAYMENT_FAILED", "notes": "card declined"},
        headers=INTERNAL,
    )
    assert failed.status_code == 200, failed.text
    data = failed.json()["data"]
    assert data["status"] == "PENDING_PAYMENT"
    assert data["paidAt"] is None
    assert data["provisioningTask"] is None
    event = data["statusHistory"][-1]
    assert event["previousStatus"] == "PENDING_PAYMENT"
    assert event["newStatus"] == "PAYMENT_FAILED"
    assert event["actor"] == "admin"
    assert event["reason"] == "card declined"

    # A second failure is recorded too: the order still awaits payment.
    again = await pay(client, order["id"], "PAYMENT_FAILED")
    assert again.status_code == 200

    paid = await pay(client, order["id"])
    assert paid.status_code == 200, paid.text
    assert paid.json()["data"]["status"] == "PROVISIONING"
    assert await history_rows(engine, order["id"]) == [
        (None, "PENDING_PAYMENT", "user:bob"),
        ("PENDING_PAYMENT", "PAYMENT_FAILED", "admin"),
        ("PENDING_PAYMENT", "PAYMENT_FAILED", "admin"),
        ("PENDING_PAYMENT", "PAID", "admin"),
        ("PAID", "PROVISIONING", "system"),
    ]


@pytest.mark.parametrize("status", ["PAID", "PAYMENT_FAILED"])
async def test_payment_on_a_canceled_order_is_a_conflict(
    client: httpx.AsyncClient, engine: AsyncEngine, status: str
) -> None:
    order = await create_order(client, "carol")
    assert (
        await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=auth("carol"))
    ).is_success
    error = assert_error(await pay(client, order["id"], status), 409, "PAYMENT_STATUS_CONFLICT")
    assert error["details"]["currentStatus"] == "CANCELED"
    assert (await detail(client, order["id"]))["status"] == "CANCELED"
    assert len(await history_rows(engine, order["id"])) == 2


async def test_payment_failed_after_paid_is_a_conflict(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    await pay(client, order["id"])
    error = assert_error(
        await pay(client, order["id"], "PAYMENT_FAILED"), 409, "PAYMENT_STATUS_CONFLICT"
    )
    assert error["details"]["currentStatus"] == "PROVISIONING"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "REFUNDED"}, "status"),
        ({"status": "paid"}, "status"),
        ({}, "status"),
        ({"notes": "no status"}, "status"),
        ({"status": "PAID", "notes": "x" * 1001}, "notes"),
        ({"status": None}, "status"),
        ([], None),
        ("PAID", None),
    ],
    ids=["refunded", "lower-case", "empty", "no-status", "long-notes", "null", "list", "string"],
)
async def test_invalid_payment_body_is_400(
    client: httpx.AsyncClient, engine: AsyncEngine, body: Any, field: str | None
) -> None:
    order = await create_order(client)
    response = await client.post(
        f"{detail_path(order['id'])}/payment-status", json=body, headers=INTERNAL
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    fields = error["details"]["fields"]
    assert fields
    if field is not None:
        assert field in [f["field"] for f in fields]
    assert (await detail(client, order["id"]))["status"] == "PENDING_PAYMENT"
    assert len(await history_rows(engine, order["id"])) == 1


async def test_notes_of_exactly_1000_chars_are_fine(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    response = await client.post(
        f"{detail_path(order['id'])}/payment-status",
        json={"status": "PAID", "notes": "n" * 1000},
        headers=INTERNAL,
    )
    assert response.status_code == 200, response.text


async def test_missing_body_is_400(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    response = await client.post(f"{detail_path(order['id'])}/payment-status", headers=INTERNAL)
    assert_error(response, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "not-a-uuid", "1", "x" * 64])
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("POST", "/payment-status", {"status": "PAID"}),
        ("POST", "/cancel", None),
        ("POST", "/retry-provisioning", None),
    ],
    ids=["detail", "payment", "cancel", "retry"],
)
async def test_unknown_or_malformed_id_is_404(
    client: httpx.AsyncClient, order_id: str, method: str, suffix: str, body: Any
) -> None:
    response = await client.request(
        method, f"{detail_path(order_id)}{suffix}", json=body, headers=INTERNAL
    )
    assert_error(response, 404, "ORDER_NOT_FOUND")


# ------------------------------------------------------------------- admin reads


async def test_admin_list_filters_and_paginates(client: httpx.AsyncClient) -> None:
    alice = [await create_order(client, "alice") for _ in range(3)]
    bob = [await create_order(client, "bob") for _ in range(2)]
    await pay(client, alice[0]["id"])
    await pay(client, bob[1]["id"])

    everything = await client.get(INTERNAL_ORDERS, headers=INTERNAL)
    assert everything.status_code == 200
    body = ListEnvelope[OrderOut].model_validate(everything.json())
    assert body.meta.model_dump() == {"page": 1, "limit": 10, "total": 5, "totalPages": 1}
    # Newest first, all users.
    expected = [o["id"] for o in reversed(alice + bob)]
    assert [str(o.id) for o in body.data] == expected
    assert all(o.status_history is None for o in body.data)

    by_user = await client.get(INTERNAL_ORDERS, params={"userId": "alice"}, headers=INTERNAL)
    assert [o["id"] for o in by_user.json()["data"]] == [o["id"] for o in reversed(alice)]
    assert by_user.json()["meta"]["total"] == 3

    by_status = await client.get(
        INTERNAL_ORDERS, params={"status": "PROVISIONING"}, headers=INTERNAL
    )
    assert {o["id"] for o in by_status.json()["data"]} == {alice[0]["id"], bob[1]["id"]}
    assert all(o["provisioningTask"] for o in by_status.json()["data"])

    both = await client.get(
        INTERNAL_ORDERS, params={"status": "PENDING_PAYMENT", "userId": "bob"}, headers=INTERNAL
    )
    assert [o["id"] for o in both.json()["data"]] == [bob[0]["id"]]
    assert both.json()["meta"] == {"page": 1, "limit": 10, "total": 1, "totalPages": 1}

    page2 = await client.get(INTERNAL_ORDERS, params={"page": 2, "limit": 2}, headers=INTERNAL)
    assert page2.json()["meta"] == {"page": 2, "limit": 2, "total": 5, "totalPages": 3}
    assert [o["id"] for o in page2.json()["data"]] == expected[2:4]

    past = await client.get(INTERNAL_ORDERS, params={"page": 4, "limit": 2}, headers=INTERNAL)
    assert past.status_code == 200
    assert past.json() == {"data": [], "meta": {"page": 4, "limit": 2, "total": 5, "totalPages": 3}}

    nobody = await client.get(INTERNAL_ORDERS, params={"userId": "nobody"}, headers=INTERNAL)
    assert nobody.json() == {
        "data": [],
        "meta": {"page": 1, "limit": 10, "total": 0, "totalPages": 0},
    }


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"limit": 0}, {"limit": 101}, {"status": "NOPE"}, {"userId": "u" * 256}],
)
async def test_admin_list_rejects_bad_query(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await client.get(INTERNAL_ORDERS, params=params, headers=INTERNAL)
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"]["fields"]


async def test_admin_detail_has_history_oldest_first(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "dave")
    await pay(client, order["id"], "PAYMENT_FAILED")
    await pay(client, order["id"])

    data = await detail(client, order["id"])
    history = data["statusHistory"]
    assert [(h["previousStatus"], h["newStatus"], h["actor"]) for h in history] == [
        ("", "PENDING_PAYMENT", "user:dave"),
        ("PENDING_PAYMENT", "PAYMENT_FAILED", "admin"),
        ("PENDING_PAYMENT", "PAID", "admin"),
        ("PAID", "PROVISIONING", "system"),
    ]
    times = [h["createdAt"] for h in history]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    assert all(t.endswith("Z") for t in times)
    assert [i["itemType"] for i in data["items"]] == ["PLAN", "IMAGE"]
    assert data["provisioningTask"]["status"] == "PENDING"


async def test_admin_detail_of_any_users_order(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "erin")
    data = await detail(client, order["id"])
    assert data["userId"] == "erin"
    assert data["provisioningTask"] is None
    assert data["statusHistory"][0]["previousStatus"] == ""


# ------------------------------------------------------------------------ cancel


async def test_admin_cancel(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "frank")
    response = await client.post(
        f"{detail_path(order['id'])}/cancel", json={"reason": "fraud check"}, headers=INTERNAL
    )
    assert response.status_code == 200, response.text
    data = DataEnvelope[OrderOut].model_validate(response.json()).data
    assert data.status == "CANCELED"
    last = (data.status_history or [])[-1]
    assert (last.previous_status, last.new_status, last.actor, last.reason) == (
        "PENDING_PAYMENT",
        "CANCELED",
        "admin",
        "fraud check",
    )

    again = await client.post(f"{detail_path(order['id'])}/cancel", headers=INTERNAL)
    error = assert_error(again, 409, "ORDER_STATUS_CONFLICT")
    assert error["details"]["currentStatus"] == "CANCELED"


async def test_admin_cancel_without_body(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    response = await client.post(f"{detail_path(order['id'])}/cancel", headers=INTERNAL)
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "CANCELED"


async def test_admin_cannot_cancel_a_paid_order(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    await pay(client, order["id"])
    response = await client.post(f"{detail_path(order['id'])}/cancel", headers=INTERNAL)
    error = assert_error(response, 409, "ORDER_STATUS_CONFLICT")
    assert error["details"]["currentStatus"] == "PROVISIONING"


async def test_admin_cancel_reason_too_long_is_400(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    response = await client.post(
        f"{detail_path(order['id'])}/cancel", json={"reason": "r" * 1001}, headers=INTERNAL
    )
    assert_error(response, 400, "VALIDATION_ERROR")
    assert (await detail(client, order["id"]))["status"] == "PENDING_PAYMENT"


# ------------------------------------------------------------------------- retry


@pytest.mark.parametrize("state", ["PENDING_PAYMENT", "PROVISIONING", "CANCELED", "ACTIVE"])
async def test_retry_of_an_order_that_has_not_failed_is_a_conflict(
    client: httpx.AsyncClient, engine: AsyncEngine, state: str
) -> None:
    order = await create_order(client, "gina")
    if state in ("PROVISIONING", "ACTIVE"):
        await pay(client, order["id"])
    if state == "CANCELED":
        await client.post(f"{detail_path(order['id'])}/cancel", headers=INTERNAL)
    if state == "ACTIVE":
        async with engine.begin() as connection:
            await connection.execute(
                update(Order.__table__)
                .where(Order.__table__.c.id == uuid.UUID(order["id"]))
                .values(status="ACTIVE")
            )
    before = await history_rows(engine, order["id"])
    response = await client.post(f"{detail_path(order['id'])}/retry-provisioning", headers=INTERNAL)
    error = assert_error(response, 409, "ORDER_STATUS_CONFLICT")
    assert error["details"]["currentStatus"] == state
    assert await history_rows(engine, order["id"]) == before


@pytest.mark.parametrize("droplet_id", [None, 424242], ids=["no-droplet", "with-droplet"])
async def test_retry_of_a_failed_order(
    client: httpx.AsyncClient, engine: AsyncEngine, droplet_id: int | None
) -> None:
    order = await create_order(client, "hank")
    paid = (await pay(client, order["id"])).json()["data"]
    task_id = paid["provisioningTask"]["id"]
    await force_failed(engine, order["id"], droplet_id=droplet_id)
    failed = await detail(client, order["id"])
    assert failed["status"] == "FAILED"
    assert failed["provisioningTask"]["errorCode"] == "PROVISIONING_TIMEOUT"

    response = await client.post(
        f"{detail_path(order['id'])}/retry-provisioning",
        json={"reason": "DO incident over"},
        headers=INTERNAL,
    )
    assert response.status_code == 200, response.text
    data = DataEnvelope[OrderOut].model_validate(response.json()).data
    assert data.status == "PROVISIONING"
    task = data.provisioning_task
    assert task is not None
    assert str(task.id) == task_id  # the same task, not a second one
    assert task.status == "PENDING"
    assert task.error_code is None
    assert task.error_message is None
    assert task.completed_at is None
    assert task.attempts == 0
    # The droplet (if any) is kept so the provisioner reuses it.
    assert task.droplet_id == (str(droplet_id) if droplet_id else None)
    last = (data.status_history or [])[-1]
    assert (last.previous_status, last.new_status, last.actor, last.reason) == (
        "FAILED",
        "PROVISIONING",
        "admin",
        "DO incident over",
    )
    tasks = ProvisioningTask.__table__
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(tasks.c.id, tasks.c.requested_at, tasks.c.lease_owner).where(
                    tasks.c.order_id == uuid.UUID(order["id"])
                )
            )
        ).all()
    assert len(rows) == 1
    assert rows[0].requested_at is None  # the deadline starts again
    assert rows[0].lease_owner is None

    # Retrying again while it provisions is a conflict.
    second = await client.post(f"{detail_path(order['id'])}/retry-provisioning", headers=INTERNAL)
    assert_error(second, 409, "ORDER_STATUS_CONFLICT")


# -------------------------------------------------------------------------- auth

ROUTES = [
    ("GET", "", None),
    ("GET", "/{id}", None),
    ("POST", "/{id}/payment-status", {"status": "PAID"}),
    ("POST", "/{id}/cancel", None),
    ("POST", "/{id}/retry-provisioning", None),
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong-key"},
        {"X-API-Key": ""},
        {"X-API-Key": INTERNAL["X-API-Key"] + "x"},
        {"x-api-key": INTERNAL["X-API-Key"][:-1]},
        {"Authorization": "Bearer " + INTERNAL["X-API-Key"]},
    ],
    ids=["missing", "wrong", "empty", "longer", "prefix", "as-bearer"],
)
async def test_every_internal_route_needs_the_api_key(
    client: httpx.AsyncClient, engine: AsyncEngine, headers: dict[str, str]
) -> None:
    order = await create_order(client, "ivan")
    user_token = auth("ivan")
    for method, suffix, body in ROUTES:
        path = INTERNAL_ORDERS + suffix.format(id=order["id"])
        for attempt in (headers, {**headers, **user_token}):
            response = await client.request(method, path, json=body, headers=attempt)
            error = assert_error(response, 401, "UNAUTHORIZED")
            assert "details" not in error
    # Nothing happened to the order.
    assert await history_rows(engine, order["id"]) == [(None, "PENDING_PAYMENT", "user:ivan")]


async def test_auth_is_checked_before_the_body_and_the_id(client: httpx.AsyncClient) -> None:
    # An unauthenticated caller learns nothing about bodies or ids.
    bad_body = await client.post(
        f"{detail_path(str(uuid.uuid4()))}/payment-status", json={"status": "REFUNDED"}
    )
    assert_error(bad_body, 401, "UNAUTHORIZED")
    bad_id = await client.get(detail_path("not-a-uuid"))
    assert_error(bad_id, 401, "UNAUTHORIZED")
    bad_query = await client.get(INTERNAL_ORDERS, params={"limit": 0})
    assert_error(bad_query, 401, "UNAUTHORIZED")


async def test_api_key_does_not_open_user_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/orders", headers=INTERNAL)
    assert_error(response, 401, "UNAUTHORIZED")


async def test_items_read_back_in_the_order_they_were_created(client: httpx.AsyncClient) -> None:
    created = await create_order(client, "jane")
    mine = await client.get(f"/api/v1/orders/{created['id']}", headers=auth("jane"))
    listed = await client.get("/api/v1/orders", headers=auth("jane"))
    admin = await detail(client, created["id"])
    assert [i["itemType"] for i in created["items"]] == ["PLAN", "IMAGE"]
    assert mine.json()["data"]["items"] == created["items"]
    assert listed.json()["data"][0]["items"] == created["items"]
    assert admin["items"] == created["items"]


# ----------------------------------------------------- NUL characters (fuzz finds)


async def test_nul_in_user_id_filter_finds_nothing(client: httpx.AsyncClient) -> None:
    await create_order(client, "nina")
    response = await client.get(INTERNAL_ORDERS, params={"userId": "nina\x00"}, headers=INTERNAL)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "data": [],
        "meta": {"page": 1, "limit": 10, "total": 0, "totalPages": 0},
    }


@pytest.mark.parametrize(
    ("suffix", "body"),
    [
        ("/payment-status", {"status": "PAID", "notes": "BCA\x00"}),
        ("/payment-status", {"status": "PAYMENT_FAILED", "notes": "\x00"}),
        ("/cancel", {"reason": "fraud\x00check"}),
        ("/retry-provisioning", {"reason": "\x00"}),
    ],
    ids=["paid-notes", "failed-notes", "cancel-reason", "retry-reason"],
)
async def test_nul_in_free_text_is_400(
    client: httpx.AsyncClient, engine: AsyncEngine, suffix: str, body: dict[str, str]
) -> None:
    order = await create_order(client, "nina")
    response = await client.post(f"{detail_path(order['id'])}{suffix}", json=body, headers=INTERNAL)
    assert_error(response, 400, "VALIDATION_ERROR")
    assert len(await history_rows(engine, order["id"])) == 1
