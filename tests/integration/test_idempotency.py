"""Idempotency-Key on POST /api/v1/orders (SPEC section 5), on PostgreSQL and SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from mocks.catalog_service.data import PLAN_STANDARD_ID
from order_service.orders.idempotency import fingerprint
from order_service.orders.models import IdempotencyKey, Order
from order_service.orders.schemas import CreateOrderRequest, DataEnvelope, OrderOut
from tests.conftest import auth
from tests.helpers import assert_error, order_body

ORDERS = "/api/v1/orders"
keys_t = IdempotencyKey.__table__


def headers(user: str, key: str) -> dict[str, str]:
    return {**auth(user), "Idempotency-Key": key}


async def post(
    client: httpx.AsyncClient, user: str, key: str | None, body: Any = None
) -> httpx.Response:
    extra = headers(user, key) if key is not None else auth(user)
    return await client.post(ORDERS, json=body or order_body(), headers=extra)


async def orders(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(Order))).scalar_one()


async def test_same_key_same_body_replays_the_first_response(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first = await post(client, "alice", "order-1", order_body(couponCode="HEMAT20"))
    assert first.status_code == 201, first.text
    DataEnvelope[OrderOut].model_validate(first.json())

    for _ in range(3):
        again = await post(client, "alice", "order-1", order_body(couponCode="HEMAT20"))
        assert again.status_code == 201
        assert again.content == first.content  # byte for byte
        assert again.headers["content-type"] == "application/json"
    assert await orders(engine) == 1


async def test_replay_is_the_first_response_even_after_the_order_changed(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first = await post(client, "alice", "k")
    order_id = first.json()["data"]["id"]
    canceled = await client.post(f"{ORDERS}/{order_id}/cancel", headers=auth("alice"))
    assert canceled.json()["data"]["status"] == "CANCELED"

    replay = await post(client, "alice", "k")
    assert replay.content == first.content
    assert replay.json()["data"]["status"] == "PENDING_PAYMENT"
    assert await orders(engine) == 1


async def test_same_fields_in_another_json_spelling_are_the_same_request(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first = await post(client, "alice", "spelling")
    body = order_body()
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    again = await client.post(
        ORDERS,
        content=reordered,
        headers={**headers("alice", "spelling"), "Content-Type": "application/json"},
    )
    assert again.status_code == 201
    assert again.content == first.content
    assert await orders(engine) == 1


@pytest.mark.parametrize(
    "other",
    [
        {"duration": "ANNUAL"},
        {"couponCode": "HEMAT20"},
        {"planId": PLAN_STANDARD_ID},
    ],
    ids=["duration", "coupon", "plan"],
)
async def test_same_key_other_body_is_422(
    client: httpx.AsyncClient, engine: AsyncEngine, other: dict[str, str]
) -> None:
    assert (await post(client, "bob", "order-2")).status_code == 201
    response = await post(client, "bob", "order-2", order_body(**other))
    assert_error(response, 422, "IDEMPOTENCY_KEY_REUSED")
    assert await orders(engine) == 1


async def test_key_is_scoped_to_the_user(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    alice = await post(client, "alice", "shared-key")
    bob = await post(client, "bob", "shared-key")
    assert alice.status_code == bob.status_code == 201
    assert alice.json()["data"]["id"] != bob.json()["data"]["id"]
    assert bob.json()["data"]["userId"] == "bob"
    # And another user's key does not make a different body "reused".
    carol = await post(client, "carol", "shared-key", order_body(duration="ANNUAL"))
    assert carol.status_code == 201
    assert await orders(engine) == 3


async def test_without_a_key_every_post_is_a_new_order(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    assert (await post(client, "dave", None)).status_code == 201
    assert (await post(client, "dave", None)).status_code == 201
    assert await orders(engine) == 2


async def test_key_of_255_chars_is_fine_and_256_is_400(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    assert (await post(client, "erin", "k" * 255)).status_code == 201
    error = assert_error(await post(client, "erin", "k" * 256), 400, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["Idempotency-Key"]
    assert await orders(engine) == 1


async def test_empty_key_is_400(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    assert_error(await post(client, "erin", ""), 400, "VALIDATION_ERROR")
    assert await orders(engine) == 0


async def test_a_failed_first_request_releases_the_key(
    client: httpx.AsyncClient, catalog_app: Any, engine: AsyncEngine
) -> None:
    catalog = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=catalog_app), base_url="http://catalog"
    )
    (await catalog.post("/_mock/faults", json={"status": 503})).raise_for_status()
    failed = await post(client, "frank", "retry-me")
    assert_error(failed, 503, "CATALOG_SERVICE_UNAVAILABLE")
    async with engine.connect() as connection:
        left = (await connection.execute(select(func.count()).select_from(keys_t))).scalar_one()
    assert left == 0

    (await catalog.delete("/_mock/faults")).raise_for_status()
    retried = await post(client, "frank", "retry-me")
    assert retried.status_code == 201, retried.text
    assert (await post(client, "frank", "retry-me")).content == retried.content
    assert await orders(engine) == 1
    await catalog.aclose()


async def test_a_refused_first_request_does_not_pin_the_key(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    refused = await post(client, "gina", "fix-and-retry", order_body(couponCode="NOPE"))
    assert_error(refused, 400, "INVALID_COUPON")
    # The client corrects the body and retries with the same key.
    fixed = await post(client, "gina", "fix-and-retry", order_body(couponCode="HEMAT20"))
    assert fixed.status_code == 201, fixed.text
    assert await orders(engine) == 1


async def test_an_expired_key_is_reusable(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    first = await post(client, "hank", "old-key")
    assert first.status_code == 201
    async with engine.begin() as connection:
        await connection.execute(
            update(keys_t).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    # A different body is not "reused" once the key has expired: it is a new request.
    other = await post(client, "hank", "old-key", order_body(duration="ANNUAL"))
    assert other.status_code == 201, other.text
    assert other.json()["data"]["id"] != first.json()["data"]["id"]
    assert await orders(engine) == 2
    # And the new use of the key is kept for replay like any other.
    assert (await post(client, "hank", "old-key", order_body(duration="ANNUAL"))).content == (
        other.content
    )
    assert await orders(engine) == 2


async def test_key_is_kept_24_hours(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await post(client, "ivan", "kept")
    async with engine.connect() as connection:
        row = (await connection.execute(select(keys_t))).mappings().one()
    kept_for = row["expires_at"] - row["created_at"]
    assert timedelta(hours=23, minutes=59) < kept_for <= timedelta(hours=24)


def _claim(user: str, key: str, *, locked_for: timedelta) -> Any:
    now = datetime.now(UTC)
    request_hash = fingerprint(CreateOrderRequest.model_validate(order_body()).fingerprint())
    return insert(keys_t).values(
        user_id=user,
        key=key,
        request_hash=request_hash,
        state="IN_PROGRESS",
        locked_until=now + locked_for,
        expires_at=now + timedelta(hours=24),
        created_at=now,
    )


async def test_a_key_in_flight_is_409(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(_claim("jane", "busy", locked_for=timedelta(seconds=60)))
    assert_error(await post(client, "jane", "busy"), 409, "IDEMPOTENCY_KEY_IN_USE")
    # A different body with a busy key is still "reused", not "in use".
    response = await post(client, "jane", "busy", order_body(duration="ANNUAL"))
    assert_error(response, 422, "IDEMPOTENCY_KEY_REUSED")
    assert await orders(engine) == 0


async def test_an_abandoned_claim_is_taken_over(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # A claim left by a process that died mid-request: its lock has run out.
    async with engine.begin() as connection:
        await connection.execute(_claim("kate", "orphan", locked_for=timedelta(seconds=-1)))
    taken = await post(client, "kate", "orphan")
    assert taken.status_code == 201, taken.text
    assert (await post(client, "kate", "orphan")).content == taken.content
    assert await orders(engine) == 1
