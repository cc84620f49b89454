"""Webhook deliveries end to end (SPEC section 11): a real receiver over HTTP verifies
every signature with standardwebhooks; the relay and the dispatcher run in-process."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from order_service.config import Settings
from order_service.events.runtime import RunningEvents, start_events
from tests.conftest import INTERNAL, make_settings
from tests.helpers import create_order, pay
from tests.servers import serve
from tests.webhooks import (
    WEBHOOKS,
    Receiver,
    deliveries,
    eventually,
    register,
    whole_feed,
)

SCHEDULE = "PT0.1S,PT0.1S,PT0.1S"  # 4 attempts in all


@pytest.fixture
def settings(database: Any) -> Settings:
    return make_settings(database.url, webhook_retry_schedule=SCHEDULE, webhook_timeout="PT2S")


@pytest.fixture
async def duty(app: Any, settings: Settings) -> AsyncIterator[RunningEvents]:
    running = start_events(settings, app.state.sessionmaker)
    yield running
    await running.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    target = Receiver()
    async with serve(target) as url:
        yield target, url
        target.release()


async def test_events_arrive_signed_and_match_the_feed(
    client: httpx.AsyncClient, duty: RunningEvents, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    endpoint = await register(client, f"{url}/hook")
    order = await create_order(client, "hook-user")
    assert (await pay(client, order["id"])).status_code == 200

    await eventually(lambda: len(target.requests) >= 3, what="3 deliveries")
    feed = await whole_feed(client)
    assert [e["type"] for e in feed] == ["order.created", "order.paid", "order.provisioning"]
    assert [e["sequence"] for e in feed] == sorted(e["sequence"] for e in feed)
    received = sorted(
        (r.verify(endpoint["secret"]) for r in target.requests), key=lambda e: e["sequence"]
    )
    assert received == feed  # the body is the feed's event JSON, exactly
    for request in target.requests:
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-id"] == request.verify(endpoint["secret"])["id"]
        with pytest.raises(WebhookVerificationError):
            request.verify("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")
    event = feed[-1]
    assert set(event) == {"id", "sequence", "type", "createdAt", "orderId", "data"}
    assert event["orderId"] == order["id"]
    assert event["data"]["order"]["status"] == "PROVISIONING"
    assert event["data"]["history"]["newStatus"] == "PROVISIONING"

    await eventually(
        lambda: _all(client, endpoint["id"], "DELIVERED", 3), what="deliveries DELIVERED"
    )
    delivered = await deliveries(client, endpoint["id"])
    assert all(d["attempts"] == 1 and d["lastStatusCode"] == 200 for d in delivered)
    assert all(d["deliveredAt"] and d["lastDurationMs"] is not None for d in delivered)


async def _count(client: httpx.AsyncClient, endpoint_id: str, count: int) -> bool:
    return len(await deliveries(client, endpoint_id)) == count


async def _all(client: httpx.AsyncClient, endpoint_id: str, status: str, count: int) -> bool:
    rows = await deliveries(client, endpoint_id)
    return len(rows) == count and all(d["status"] == status for d in rows)


async def test_filters_and_no_backfill(
    client: httpx.AsyncClient, duty: RunningEvents, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    early = await create_order(client, "filter-user")  # before any endpoint: not sent
    await register(client, f"{url}/paid", ["order.paid"])
    await register(client, f"{url}/canceled", ["order.canceled", "order.created"])
    order = await create_order(client, "filter-user")
    assert (await pay(client, order["id"])).status_code == 200
    canceled = await client.post(f"/api/v1/internal/orders/{early['id']}/cancel", headers=INTERNAL)
    assert canceled.status_code == 200

    await eventually(lambda: len(target.requests) >= 3, what="3 deliveries")
    await asyncio.sleep(0.3)  # nothing else is coming
    assert len(target.requests) == 3
    types = sorted(_type(r.body) for r in target.requests)
    assert types == ["order.canceled", "order.created", "order.paid"]


def _type(body: str) -> str:
    import json

    return json.loads(body)["type"]


async def test_rotation_signs_with_the_new_secret_only(
    client: httpx.AsyncClient, duty: RunningEvents, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    endpoint = await register(client, f"{url}/hook")
    rotated = await client.patch(
        f"{WEBHOOKS}/{endpoint['id']}", json={"rotateSecret": True}, headers=INTERNAL
    )
    secret = rotated.json()["data"]["secret"]
    await create_order(client, "rotate-user")
    await eventually(lambda: len(target.requests) >= 1, what="a delivery")
    request = target.requests[0]
    assert request.verify(secret)["type"] == "order.created"
    with pytest.raises(WebhookVerificationError):
        request.verify(endpoint["secret"])


async def test_two_failures_then_delivered_on_the_third_attempt(
    client: httpx.AsyncClient, duty: RunningEvents, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    target.plan = [500, 500]
    endpoint = await register(client, f"{url}/hook", ["order.created"])
    await create_order(client, "retry-user")
    await eventually(lambda: _all(client, endpoint["id"], "DELIVERED", 1), what="DELIVERED")
    (delivery,) = await deliveries(client, endpoint["id"])
    assert delivery["attempts"] == 3
    assert delivery["lastStatusCode"] == 200 and delivery["lastError"] is None
    assert len(target.requests) == 3
    assert len({r.headers["webhook-id"] for r in target.requests}) == 1  # same message id
    # The waits follow the schedule (0.1 s +-20%), not the 1 s scan.
    gaps = [b.at - a.at for a, b in zip(target.requests, target.requests[1:], strict=False)]
    assert all(0.07 <= gap < 0.9 for gap in gaps), gaps


async def test_always_500_fails_after_the_schedule_then_redeliver_delivers(
    client: httpx.AsyncClient, duty: RunningEvents, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    target.default_status = 500
    endpoint = await register(client, f"{url}/hook", ["order.created"])
    await create_order(client, "fail-user")
    await eventually(lambda: _all(client, endpoint["id"], "FAILED", 1), what="FAILED")
    (delivery,) = await deliveries(client, endpoint["id"], "FAILED")
    assert delivery["attempts"] == 4  # the first + one per wait of the schedule
    assert delivery["lastStatusCode"] == 500 and delivery["lastError"] == "HTTP 500"
    assert delivery["nextAttemptAt"] is None
    assert len(target.requests) == 4

    target.default_status = 200
    response = await client.post(
        f"{WEBHOOKS}/{endpoint['id']}/deliveries/{delivery['id']}/redeliver", headers=INTERNAL
    )
    assert response.status_code == 202 and response.json()["data"]["status"] == "PENDING"
    await eventually(lambda: _all(client, endpoint["id"], "DELIVERED", 1), what="DELIVERED")
    assert len(target.requests) == 5


async def test_410_disables_the_endpoint_and_fails_its_pending_deliveries(
    client: httpx.AsyncClient, duty: RunningEvents, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    target.default_status = 410
    target.hang = True  # hold the answers until all three deliveries exist
    endpoint = await register(client, f"{url}/hook")
    order = await create_order(client, "gone-user")
    assert (await pay(client, order["id"])).status_code == 200
    await eventually(lambda: _count(client, endpoint["id"], 3), what="3 deliveries")
    target.release()
    await eventually(lambda: _all(client, endpoint["id"], "FAILED", 3), what="all FAILED")
    got = await client.get(f"{WEBHOOKS}/{endpoint['id']}", headers=INTERNAL)
    assert got.json()["data"]["isActive"] is False
    sent = len(target.requests)
    assert 1 <= sent <= 3
    # Disabled: new events make no deliveries; enabling again brings them back.
    await create_order(client, "gone-user")
    await asyncio.sleep(0.5)
    assert len(await deliveries(client, endpoint["id"])) == 3
    target.default_status = 200
    enabled = await client.patch(
        f"{WEBHOOKS}/{endpoint['id']}", json={"isActive": True}, headers=INTERNAL
    )
    assert enabled.json()["data"]["isActive"] is True
    await create_order(client, "gone-user")
    await eventually(lambda: len(target.requests) == sent + 1, what="delivery after re-enable")


async def test_an_operator_pause_keeps_pending_deliveries_until_enabled(
    client: httpx.AsyncClient, duty: RunningEvents, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    target.default_status = 503  # the first attempt fails: the delivery stays PENDING
    endpoint = await register(client, f"{url}/hook", ["order.created"])
    base = f"{WEBHOOKS}/{endpoint['id']}"
    await create_order(client, "pause-user")
    await eventually(lambda: len(target.requests) >= 1, what="the first attempt")
    paused = await client.patch(base, json={"isActive": False}, headers=INTERNAL)
    assert paused.json()["data"]["isActive"] is False
    await asyncio.sleep(0.2)  # an attempt already under way when the pause committed ends
    tried = len(target.requests)
    await create_order(client, "pause-user")  # written while paused: not queued for it
    await asyncio.sleep(0.6)  # several retry waits (0.1 s): none sent while paused
    assert len(target.requests) == tried
    pending = await deliveries(client, endpoint["id"])
    assert [d["status"] for d in pending] == ["PENDING"]

    target.default_status = 200
    enabled = await client.patch(base, json={"isActive": True}, headers=INTERNAL)
    assert enabled.json()["data"]["isActive"] is True
    await eventually(lambda: _all(client, endpoint["id"], "DELIVERED", 1), what="sent on enable")
    assert len(await deliveries(client, endpoint["id"])) == 1


async def test_ping_reaches_only_its_endpoint(
    client: httpx.AsyncClient, duty: RunningEvents, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    pinged = await register(client, f"{url}/a")
    await register(client, f"{url}/b")
    response = await client.post(f"{WEBHOOKS}/{pinged['id']}/ping", headers=INTERNAL)
    assert response.status_code == 202
    await eventually(lambda: len(target.requests) >= 1, what="the ping")
    await asyncio.sleep(0.3)
    assert len(target.requests) == 1
    body = target.requests[0].verify(pinged["secret"])
    assert body["type"] == "webhook.ping" and body["sequence"] is None
    assert body["data"] == {"endpointId": pinged["id"]}
    assert (await whole_feed(client)) == []


async def test_a_hanging_endpoint_does_not_slow_the_api(
    app: Any, client: httpx.AsyncClient, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    """Order create latency with 20 deliveries hanging vs. with none (a ratio, not a bound)."""
    target, url = receiver
    # Attempts must outlast the measurement: no timeout in the middle of it.
    patient = settings.model_copy(update={"webhook_timeout": timedelta(seconds=120)})
    duty = start_events(patient, app.state.sessionmaker)
    try:
        await _measure_with_hanging_endpoint(client, duty, target, url)
    finally:
        target.release()
        await duty.stop()


async def _measure_with_hanging_endpoint(
    client: httpx.AsyncClient, duty: RunningEvents, target: Receiver, url: str
) -> None:
    async def create_and_cancel(user: str) -> float:
        started = time.perf_counter()
        order = await create_order(client, user)
        elapsed = (time.perf_counter() - started) * 1000
        # Stay under the unpaid-orders limit.
        cancel = f"/api/v1/internal/orders/{order['id']}/cancel"
        assert (await client.post(cancel, headers=INTERNAL)).status_code == 200
        return elapsed

    async def median_create_ms(n: int = 25) -> float:
        return statistics.median([await create_and_cancel("latency-user") for _ in range(n)])

    # The same two endpoints in both runs: answering at once, then hanging.
    for name in ("a", "b"):  # two endpoints: 10 in flight each (the per-endpoint cap)
        await register(client, f"{url}/{name}", ["order.created"])
    await median_create_ms(5)  # warm-up: connections, caches
    baseline = await median_create_ms()
    await eventually(lambda: not duty.dispatcher._runner.workers, what="baseline delivered")

    target.hang = True
    sent = len(target.requests)
    for _ in range(10):
        await create_and_cancel("hang-user")
    await eventually(lambda: len(target.requests) >= sent + 20, what="20 hanging deliveries")
    hanging = await median_create_ms()
    assert len(duty.dispatcher._runner.workers) == 20  # still hanging while we measured
    print(f"order create median: {baseline:.1f} ms answered, {hanging:.1f} ms with 20 hanging")
    assert hanging < baseline * 2.5 + 5, (baseline, hanging)


async def test_a_dead_endpoint_gets_at_most_its_cap_in_flight_and_blocks_no_other(
    app: Any, client: httpx.AsyncClient, settings: Settings
) -> None:
    dead, alive = Receiver(hang=True), Receiver()
    patient = settings.model_copy(update={"webhook_timeout": timedelta(seconds=120)})
    duty = start_events(patient, app.state.sessionmaker)
    try:
        async with serve(dead) as dead_url, serve(alive) as alive_url:
            await register(client, f"{dead_url}/hook", ["order.created"])
            healthy = await register(client, f"{alive_url}/hook", ["order.created"])
            for n in range(15):
                await create_order(client, f"cap-user-{n}")
            await eventually(
                lambda: _all(client, healthy["id"], "DELIVERED", 15), what="healthy delivered"
            )
            await asyncio.sleep(1.5)  # more scans: the dead one stays at its cap
            assert len(dead.requests) == 10
            assert len(duty.dispatcher._runner.workers) == 10
            dead.release()
    finally:
        dead.release()
        await duty.stop()
