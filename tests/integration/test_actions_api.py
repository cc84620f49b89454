"""The server-actions API (SPEC sections 5 and 10): who may ask what, and when.

No engine runs here (`client` has no background duties): actions stay
PENDING, which is what the one-action-at-a-time rules need.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from mocks.catalog_service.data import (
    IMAGE_DEBIAN_ID,
    IMAGE_INACTIVE_ID,
    IMAGE_NOT_ALLOWED_ID,
)
from order_service.actions.models import ServerAction
from order_service.events.models import Event
from order_service.orders.models import Order
from tests.conftest import INTERNAL, auth
from tests.helpers import assert_error, create_order

OWNER = "actions-owner"


async def order_in(engine: AsyncEngine, client: httpx.AsyncClient, status: str) -> str:
    """An order of OWNER put straight into `status` (no provisioner runs here)."""
    order = await create_order(client, OWNER)
    async with engine.begin() as connection:
        await connection.execute(
            update(Order.__table__)
            .where(Order.__table__.c.id == uuid.UUID(order["id"]))
            .values(status=status)
        )
    return order["id"]


def post(client: httpx.AsyncClient, order_id: str, body: dict[str, Any], **kw: Any) -> Any:
    headers = kw.pop("headers", auth(OWNER))
    return client.post(f"/api/v1/orders/{order_id}/actions", json=body, headers=headers, **kw)


def post_ops(client: httpx.AsyncClient, order_id: str, body: dict[str, Any], **kw: Any) -> Any:
    headers = {**INTERNAL, **kw.pop("headers", {})}
    return client.post(
        f"/api/v1/internal/orders/{order_id}/actions", json=body, headers=headers, **kw
    )


async def test_reboot_is_accepted_listed_and_read(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order_id = await order_in(engine, client, "ACTIVE")

    response = await post(client, order_id, {"type": "REBOOT", "reason": "hung"})

    assert response.status_code == 202, response.text
    action = response.json()["data"]
    assert set(action) == {
        "id", "orderId", "type", "status", "requestedBy", "reason", "imageId",
        "errorCode", "errorMessage", "createdAt", "startedAt", "completedAt",
    }  # fmt: skip
    assert (action["orderId"], action["type"], action["status"]) == (order_id, "REBOOT", "PENDING")
    assert (action["requestedBy"], action["reason"]) == (f"user:{OWNER}", "hung")
    assert action["startedAt"] is None and action["completedAt"] is None
    one = await client.get(f"/api/v1/orders/{order_id}/actions/{action['id']}", headers=auth(OWNER))
    assert one.status_code == 200 and one.json()["data"] == action
    listing = await client.get(f"/api/v1/orders/{order_id}/actions", headers=auth(OWNER))
    assert listing.json() == {
        "data": [action],
        "meta": {"page": 1, "limit": 10, "total": 1, "totalPages": 1},
    }
    ops = await client.get(f"/api/v1/internal/orders/{order_id}/actions", headers=INTERNAL)
    assert ops.json()["data"] == [action]
    async with engine.connect() as connection:
        events = (
            await connection.execute(
                select(Event.__table__.c.type).where(
                    Event.__table__.c.order_id == uuid.UUID(order_id),
                    Event.__table__.c.type.like("action.%"),
                )
            )
        ).scalars()
        assert list(events) == ["action.requested"]


async def test_lists_are_newest_first_and_paginated(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order_id = await order_in(engine, client, "ACTIVE")
    ids = []
    for _ in range(3):
        response = await post(client, order_id, {"type": "REBOOT"})
        ids.append(response.json()["data"]["id"])
        # Finish it so the next one is accepted.
        async with engine.begin() as connection:
            await connection.execute(
                update(ServerAction.__table__)
                .where(ServerAction.__table__.c.id == uuid.UUID(ids[-1]))
                .values(status="COMPLETED")
            )

    page = await client.get(
        f"/api/v1/orders/{order_id}/actions", params={"limit": 2, "page": 1}, headers=auth(OWNER)
    )
    second = await client.get(
        f"/api/v1/orders/{order_id}/actions", params={"limit": 2, "page": 2}, headers=auth(OWNER)
    )

    assert [a["id"] for a in page.json()["data"]] == ids[::-1][:2]
    assert [a["id"] for a in second.json()["data"]] == ids[:1]
    assert page.json()["meta"] == {"page": 1, "limit": 2, "total": 3, "totalPages": 2}


async def test_unknown_and_malformed_action_ids_are_404(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order_id = await order_in(engine, client, "ACTIVE")
    other = await order_in(engine, client, "ACTIVE")
    action = (await post(client, other, {"type": "REBOOT"})).json()["data"]

    for action_id in (str(uuid.uuid4()), "not-a-uuid", action["id"]):  # the last: another order's
        response = await client.get(
            f"/api/v1/orders/{order_id}/actions/{action_id}", headers=auth(OWNER)
        )
        assert_error(response, 404, "ACTION_NOT_FOUND")
    missing = await client.get(f"/api/v1/orders/{uuid.uuid4()}/actions", headers=auth(OWNER))
    assert_error(missing, 404, "ORDER_NOT_FOUND")


async def test_another_users_order_is_403(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    order_id = await order_in(engine, client, "ACTIVE")
    action = (await post(client, order_id, {"type": "REBOOT"})).json()["data"]
    stranger = auth("someone-else")

    assert_error(
        await post(client, order_id, {"type": "REBOOT"}, headers=stranger),
        403,
        "ORDER_ACCESS_DENIED",
    )
    for path in ("actions", f"actions/{action['id']}"):
        response = await client.get(f"/api/v1/orders/{order_id}/{path}", headers=stranger)
        assert_error(response, 403, "ORDER_ACCESS_DENIED")


@pytest.mark.parametrize("type_", ["DESTROY", "FORMAT_DISK", "reboot", None])
async def test_only_requestable_types_are_accepted(
    client: httpx.AsyncClient, engine: AsyncEngine, type_: str | None
) -> None:
    order_id = await order_in(engine, client, "ACTIVE")
    body = {} if type_ is None else {"type": type_}

    assert_error(await post(client, order_id, body), 400, "VALIDATION_ERROR")
    assert_error(await post_ops(client, order_id, body), 400, "VALIDATION_ERROR")


async def test_order_status_rules_for_users_and_operators(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    suspended = await order_in(engine, client, "SUSPENDED")
    assert_error(await post(client, suspended, {"type": "REBOOT"}), 409, "SERVICE_SUSPENDED")
    by_ops = await post_ops(client, suspended, {"type": "POWER_OFF"})
    assert by_ops.status_code == 202, by_ops.text
    assert by_ops.json()["data"]["requestedBy"] == "admin"

    for status in ("PENDING_PAYMENT", "PROVISIONING", "FAILED", "TERMINATED", "CANCELED"):
        order_id = await order_in(engine, client, status)
        error = assert_error(
            await post(client, order_id, {"type": "REBOOT"}), 409, "ORDER_STATUS_CONFLICT"
        )
        assert error["details"]["currentStatus"] == status
        assert_error(
            await post_ops(client, order_id, {"type": "REBOOT"}), 409, "ORDER_STATUS_CONFLICT"
        )


async def test_one_action_at_a_time_including_the_systems(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order_id = await order_in(engine, client, "ACTIVE")
    first = (await post(client, order_id, {"type": "SHUTDOWN"})).json()["data"]

    user = assert_error(await post(client, order_id, {"type": "REBOOT"}), 409, "ACTION_IN_PROGRESS")
    ops = assert_error(
        await post_ops(client, order_id, {"type": "REBOOT"}), 409, "ACTION_IN_PROGRESS"
    )

    assert user["details"]["actionId"] == ops["details"]["actionId"] == first["id"]
    # A system action (lifecycle) blocks users too.
    async with engine.begin() as connection:
        await connection.execute(
            update(ServerAction.__table__)
            .where(ServerAction.__table__.c.id == uuid.UUID(first["id"]))
            .values(status="IN_PROGRESS", requested_by="system")
        )
    assert_error(await post(client, order_id, {"type": "POWER_ON"}), 409, "ACTION_IN_PROGRESS")


@pytest.mark.postgres_only
async def test_racing_requests_queue_exactly_one(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order_id = await order_in(engine, client, "ACTIVE")

    responses = await asyncio.gather(
        *(post(client, order_id, {"type": "REBOOT"}) for _ in range(10))
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [202] + [409] * 9, codes
    async with engine.connect() as connection:
        count = len(
            (
                await connection.execute(
                    select(ServerAction.__table__.c.id).where(
                        ServerAction.__table__.c.order_id == uuid.UUID(order_id)
                    )
                )
            ).all()
        )
    assert count == 1


@pytest.mark.parametrize(
    ("image_id", "expected"),
    [
        (None, "INVALID_IMAGE"),
        (IMAGE_NOT_ALLOWED_ID, "INVALID_IMAGE"),
        (IMAGE_INACTIVE_ID, "INVALID_IMAGE"),
        (str(uuid.uuid4()), "INVALID_IMAGE"),
        ("not-a-uuid", "VALIDATION_ERROR"),
    ],
)
async def test_rebuild_needs_an_active_image_allowed_for_the_plan(
    client: httpx.AsyncClient, engine: AsyncEngine, image_id: str | None, expected: str
) -> None:
    order_id = await order_in(engine, client, "ACTIVE")
    body = {"type": "REBUILD", "imageId": image_id}

    assert_error(await post(client, order_id, body), 400, expected)
    listing = await client.get(f"/api/v1/orders/{order_id}/actions", headers=auth(OWNER))
    assert listing.json()["data"] == []


async def test_rebuild_with_an_allowed_image_is_accepted(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order_id = await order_in(engine, client, "ACTIVE")

    response = await post(client, order_id, {"type": "REBUILD", "imageId": IMAGE_DEBIAN_ID})

    assert response.status_code == 202, response.text
    assert response.json()["data"]["imageId"] == IMAGE_DEBIAN_ID
    async with engine.connect() as connection:
        row = (await connection.execute(select(ServerAction.__table__))).mappings().one()
    assert row["image_slug"] == "debian-12-x64"


async def test_idempotency_key_replays_the_first_response(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order_id = await order_in(engine, client, "ACTIVE")
    key = {"Idempotency-Key": "reboot-1"}

    first = await post(client, order_id, {"type": "REBOOT"}, headers={**auth(OWNER), **key})
    again = await post(client, order_id, {"type": "REBOOT"}, headers={**auth(OWNER), **key})
    other = await post(client, order_id, {"type": "SHUTDOWN"}, headers={**auth(OWNER), **key})
    # The operator's keys are the operator's own.
    ops = await post_ops(client, order_id, {"type": "REBOOT"}, headers=key)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.content == first.content
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert_error(ops, 409, "ACTION_IN_PROGRESS")
    listing = await client.get(f"/api/v1/orders/{order_id}/actions", headers=auth(OWNER))
    assert listing.json()["meta"]["total"] == 1
