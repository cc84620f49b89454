"""PAYMENT_CONCURRENCY: a burst of payments runs a few transactions at a time.

The rest wait for a turn before touching the database, so a storm leaves
connections and the event loop to reads. Every payment still succeeds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from order_service.config import Settings
from order_service.orders import service
from tests.conftest import make_settings
from tests.helpers import api_only, create_order, pay


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
