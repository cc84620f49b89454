"""Webhook endpoints and the feed's query rules (SPEC section 11): the API alone, no duties."""

from __future__ import annotations

import uuid

import httpx
import pytest
from standardwebhooks import Webhook

from order_service.events.outbox import EVENT_TYPES
from tests.conftest import INTERNAL
from tests.helpers import assert_error
from tests.webhooks import EVENTS, WEBHOOKS, read_feed, register

ENDPOINT_KEYS = {"id", "url", "events", "description", "isActive", "createdAt", "updatedAt"}


async def test_create_shows_the_secret_once_and_nothing_else_does(
    client: httpx.AsyncClient,
) -> None:
    created = await register(
        client, "https://billing.example.com/hooks", ["order.active"], description="billing"
    )
    assert set(created) == ENDPOINT_KEYS | {"secret"}
    assert created["secret"].startswith("whsec_")
    Webhook(created["secret"])  # the library reads it
    assert created["isActive"] is True and created["events"] == ["order.active"]

    one = await client.get(f"{WEBHOOKS}/{created['id']}", headers=INTERNAL)
    listing = await client.get(WEBHOOKS, headers=INTERNAL)
    patched = await client.patch(
        f"{WEBHOOKS}/{created['id']}", json={"description": "x"}, headers=INTERNAL
    )
    for response in (one, listing, patched):
        assert response.status_code == 200, response.text
        assert created["secret"] not in response.text
        assert '"secret"' not in response.text
    assert set(one.json()["data"]) == ENDPOINT_KEYS
    assert listing.json()["meta"] == {"page": 1, "limit": 10, "total": 1, "totalPages": 1}


async def test_rotation_returns_a_new_secret_once(client: httpx.AsyncClient) -> None:
    created = await register(client, "http://receiver.test/hook")
    rotated = await client.patch(
        f"{WEBHOOKS}/{created['id']}", json={"rotateSecret": True}, headers=INTERNAL
    )
    assert rotated.status_code == 200
    secret = rotated.json()["data"]["secret"]
    assert secret.startswith("whsec_") and secret != created["secret"]
    again = await client.get(f"{WEBHOOKS}/{created['id']}", headers=INTERNAL)
    assert secret not in again.text


async def test_patch_changes_url_events_and_active(client: httpx.AsyncClient) -> None:
    created = await register(client, "http://receiver.test/hook")
    response = await client.patch(
        f"{WEBHOOKS}/{created['id']}",
        json={"url": "https://other.test/x", "events": ["order.paid"], "isActive": False},
        headers=INTERNAL,
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["url"], data["events"], data["isActive"]) == (
        "https://other.test/x",
        ["order.paid"],
        False,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://x.test/hook", "events": ["*"]},
        {"url": "file:///etc/passwd", "events": ["*"]},
        {"url": "not a url", "events": ["*"]},
        {"url": "http://", "events": ["*"]},
        {"url": "http://x.test/hook", "events": []},
        {"url": "http://x.test/hook", "events": ["order.nope"]},
        {"url": "http://x.test/hook", "events": ["*", "order.paid"]},
        {"url": "http://x.test/hook", "events": ["webhook.ping"]},
        {"url": "http://x.test/hook"},
        {"events": ["*"]},
    ],
)
async def test_bad_endpoints_are_400(client: httpx.AsyncClient, body: dict) -> None:
    assert_error(await client.post(WEBHOOKS, json=body, headers=INTERNAL), 400, "VALIDATION_ERROR")


async def test_every_known_type_is_accepted(client: httpx.AsyncClient) -> None:
    created = await register(client, "http://x.test/hook", sorted(EVENT_TYPES))
    assert set(created["events"]) == EVENT_TYPES


async def test_bad_patch_is_400(client: httpx.AsyncClient) -> None:
    created = await register(client, "http://x.test/hook")
    for body in ({"url": "gopher://x"}, {"events": ["nope"]}, {"isActive": "maybe"}):
        response = await client.patch(f"{WEBHOOKS}/{created['id']}", json=body, headers=INTERNAL)
        assert_error(response, 400, "VALIDATION_ERROR")


async def test_unknown_and_malformed_ids_are_404(client: httpx.AsyncClient) -> None:
    created = await register(client, "http://x.test/hook")
    for webhook_id in (str(uuid.uuid4()), "not-a-uuid"):
        base = f"{WEBHOOKS}/{webhook_id}"
        for response in (
            await client.get(base, headers=INTERNAL),
            await client.patch(base, json={"isActive": True}, headers=INTERNAL),
            await client.delete(base, headers=INTERNAL),
            await client.get(f"{base}/deliveries", headers=INTERNAL),
            await client.post(f"{base}/ping", headers=INTERNAL),
        ):
            assert_error(response, 404, "WEBHOOK_NOT_FOUND")
    for delivery_id in (str(uuid.uuid4()), "nope"):
        response = await client.post(
            f"{WEBHOOKS}/{created['id']}/deliveries/{delivery_id}/redeliver", headers=INTERNAL
        )
        assert_error(response, 404, "DELIVERY_NOT_FOUND")


async def test_delete_is_204_then_404(client: httpx.AsyncClient) -> None:
    created = await register(client, "http://x.test/hook")
    ping = await client.post(f"{WEBHOOKS}/{created['id']}/ping", headers=INTERNAL)
    assert ping.status_code == 202
    response = await client.delete(f"{WEBHOOKS}/{created['id']}", headers=INTERNAL)
    assert response.status_code == 204 and response.content == b""
    assert_error(
        await client.get(f"{WEBHOOKS}/{created['id']}", headers=INTERNAL), 404, "WEBHOOK_NOT_FOUND"
    )


async def test_webhook_routes_need_the_api_key(client: httpx.AsyncClient) -> None:
    for method, path in (("GET", WEBHOOKS), ("POST", WEBHOOKS), ("GET", EVENTS)):
        response = await client.request(method, path, headers={"X-API-Key": "wrong"})
        assert_error(response, 401, "UNAUTHORIZED")


async def test_ping_is_a_delivery_not_an_event(client: httpx.AsyncClient) -> None:
    created = await register(client, "http://x.test/hook")
    ping = await client.post(f"{WEBHOOKS}/{created['id']}/ping", headers=INTERNAL)
    assert ping.status_code == 202
    delivery = ping.json()["data"]
    assert delivery["eventType"] == "webhook.ping" and delivery["status"] == "PENDING"
    assert set(delivery) == {
        "id", "endpointId", "eventId", "eventType", "status", "attempts", "nextAttemptAt",
        "lastStatusCode", "lastError", "lastDurationMs", "deliveredAt", "createdAt",
    }  # fmt: skip
    assert (await read_feed(client))["data"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"after": -1},
        {"after": "x"},
        {"limit": 0},
        {"limit": 501},
        {"orderId": "not-a-uuid"},
    ],
)
async def test_feed_query_rules(client: httpx.AsyncClient, params: dict) -> None:
    response = await client.get(EVENTS, params=params, headers=INTERNAL)
    assert_error(response, 400, "VALIDATION_ERROR")


async def test_empty_feed_next_is_after(client: httpx.AsyncClient) -> None:
    assert await read_feed(client, 42) == {"data": [], "meta": {"next": 42}}
    assert await read_feed(client) == {"data": [], "meta": {"next": 0}}
