"""PAYMENT_CONCURRENCY: a burst of payments runs a few transactions at a time.

The rest wait for a turn before touching the database, so a storm leaves
connections and the event loop to reads. Every payment still succeeds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from order_service import reads_first
from order_service.config import Settings
from order_service.orders import service
from tests.conftest import INTERNAL, make_settings
from tests.helpers import api_only, assert_error, create_order, pay


async def _max_payments_in_flight(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, count: int
) -> int:
    order_ids = [(await create_order(client, f"user-{i}"))["id"] for i in range(count)]
    in_flight = 0
    highest = 0
    original = service.set_payment_status

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal in_flight, highest
        in_flight += 1
        highest = max(highest, in_flight)
        try:
            await asyncio.sleep(0.05)  # let the others pile up if nothing holds them
            return await original(*args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(service, "set_payment_status", counting)
    answers = await asyncio.gather(*(pay(client, order_id) for order_id in order_ids))
    assert [a.status_code for a in answers] == [200] * count
    return highest


@pytest.mark.parametrize(("cap", "expected"), [(2, 2), (20, 10)])
async def test_payments_in_flight_never_exceed_the_cap(
    settings: Settings,
    catalog_app: Any,
    clean_db: None,
    monkeypatch: pytest.MonkeyPatch,
    cap: int,
    expected: int,
) -> None:
    capped = make_settings(settings.database_url, payment_concurrency=cap)
    async with api_only(capped, catalog_app) as (_, client):
        # With a cap of 20, all 10 run at once: the cap is what holds them back.
        assert await _max_payments_in_flight(client, monkeypatch, 10) == expected


async def test_a_payment_sending_its_body_slowly_holds_no_turn(
    settings: Settings, catalog_app: Any, clean_db: None
) -> None:
    """The body is read before the turn is taken: with one turn, a payment whose
    client is still sending its body lets another payment through meanwhile."""
    capped = make_settings(settings.database_url, payment_concurrency=1)
    async with api_only(capped, catalog_app) as (_, client):
        slow_id = (await create_order(client, "slow-user"))["id"]
        fast_id = (await create_order(client, "fast-user"))["id"]
        fast_done = asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield b'{"status": '
            await asyncio.wait_for(fast_done.wait(), 10)
            yield b'"PAID"}'

        slow = asyncio.create_task(
            client.post(
                f"/api/v1/internal/orders/{slow_id}/payment-status",
                content=slow_body(),
                headers={**INTERNAL, "Content-Type": "application/json"},
            )
        )
        await asyncio.sleep(0.1)  # the slow payment is in, its body half sent
        assert (await pay(client, fast_id)).status_code == 200
        fast_done.set()
        answer = await slow
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["status"] == "PROVISIONING"


async def test_a_payment_is_still_checked_after_its_turn(
    settings: Settings, catalog_app: Any, clean_db: None
) -> None:
    """The door skips nothing: a bad key, a bad body and a body over the limit
    get the same envelopes as on any route."""
    capped = make_settings(settings.database_url, payment_concurrency=1, max_body_bytes=1024)
    async with api_only(capped, catalog_app) as (_, client):
        order_id = (await create_order(client, "checked-user"))["id"]
        path = f"/api/v1/internal/orders/{order_id}/payment-status"
        no_key = await client.post(path, json={"status": "PAID"})
        assert_error(no_key, 401, "UNAUTHORIZED")
        bad = await client.post(path, json={"status": "MAYBE"}, headers=INTERNAL)
        assert_error(bad, 400, "VALIDATION_ERROR")
        big = await client.post(
            path, json={"status": "PAID", "notes": "x" * 2048}, headers=INTERNAL
        )
        assert_error(big, 413, "PAYLOAD_TOO_LARGE")
        assert (await pay(client, order_id)).status_code == 200


async def _read_held_open(app: Any, answering: asyncio.Event, release: asyncio.Event) -> None:
    """A GET that stays in flight: its answer is held at the first message sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/health",
        "raw_path": b"/api/v1/health",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"order-service")],
        "client": ("127.0.0.1", 50000),
        "server": ("order-service", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answering.set()
            await release.wait()

    await app(scope, receive, send)


@pytest.mark.parametrize("yield_to_reads", [True, False], ids=["yields", "does-not-yield"])
async def test_a_payment_waits_for_the_reads_in_flight(
    settings: Settings,
    catalog_app: Any,
    clean_db: None,
    monkeypatch: pytest.MonkeyPatch,
    yield_to_reads: bool,
) -> None:
    """YIELD_TO_READS: a payment's statements wait while a GET that was in
    flight when it asked is still being answered, then it completes."""
    monkeypatch.setattr(reads_first, "MAX_WAIT_S", 10.0)  # the cap has its own test
    configured = make_settings(settings.database_url, yield_to_reads=yield_to_reads)
    async with api_only(configured, catalog_app) as (app, client):
        order_id = (await create_order(client, "polite-user"))["id"]
        answering, release = asyncio.Event(), asyncio.Event()
        read = asyncio.create_task(_read_held_open(app, answering, release))
        await asyncio.wait_for(answering.wait(), 5)
        payment = asyncio.create_task(pay(client, order_id))
        done, _ = await asyncio.wait({payment}, timeout=0.5)
        assert bool(done) is not yield_to_reads
        release.set()
        await read
        answer = await asyncio.wait_for(payment, 10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["status"] == "PROVISIONING"


async def test_a_stalled_read_delays_a_payment_by_at_most_the_cap(
    settings: Settings, catalog_app: Any, clean_db: None
) -> None:
    """A client slow to take its answer keeps its GET in flight: payments go on."""
    async with api_only(settings, catalog_app) as (app, client):
        order_id = (await create_order(client, "stalled-read-user"))["id"]
        answering, release = asyncio.Event(), asyncio.Event()
        read = asyncio.create_task(_read_held_open(app, answering, release))
        await asyncio.wait_for(answering.wait(), 5)
        answer = await asyncio.wait_for(pay(client, order_id), 10)  # not held by the read
        assert answer.status_code == 200, answer.text
        release.set()
        await read
