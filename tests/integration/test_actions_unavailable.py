"""DigitalOcean unreachable past the retries: the action fails DIGITALOCEAN_UNAVAILABLE;
and a process works only a few actions at once.

The engine is built here by hand on a DO client that does not retry, so the
three consecutive failures the engine tolerates take milliseconds, not the
client's real backoff; everything else is real (database, fake DO over HTTP).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from order_service.accounts.clients import OneClient
from order_service.actions.engine import ActionEngine, ActionsConfig
from order_service.actions.models import ServerAction
from order_service.actions.store import ActionStore
from order_service.db import create_sessionmaker, utcnow
from order_service.orders.models import Order
from order_service.provisioning.digitalocean import DigitalOceanClient
from order_service.provisioning.models import ProvisioningTask
from tests.conftest import API_KEY, auth
from tests.helpers import create_order, pay
from tests.servers import serve

OWNER = "unavailable-owner"


@pytest.fixture
async def fake_do() -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    async with (
        serve(create_fake_do(FakeConfig(action_seconds=0.1))) as url,
        httpx.AsyncClient(base_url=url) as control,
    ):
        yield url, control


async def active_order_with_droplet(
    client: httpx.AsyncClient, engine: AsyncEngine, control: httpx.AsyncClient
) -> str:
    order = await create_order(client, OWNER)
    assert (await pay(client, order["id"])).status_code == 200
    seeded = await control.post(
        "/_fake/droplets", json={"tags": [f"order-{order['id']}"], "status": "off"}
    )
    order_id = uuid.UUID(order["id"])
    async with engine.begin() as connection:
        await connection.execute(
            update(Order.__table__).where(Order.__table__.c.id == order_id).values(status="ACTIVE")
        )
        await connection.execute(
            update(ProvisioningTask.__table__)
            .where(ProvisioningTask.__table__.c.order_id == order_id)
            .values(status="SUCCESS", droplet_id=seeded.json()["droplet"]["id"])
        )
    return order["id"]


async def request_power_on(client: httpx.AsyncClient, order_id: str) -> str:
    response = await client.post(
        f"/api/v1/orders/{order_id}/actions", json={"type": "POWER_ON"}, headers=auth(OWNER)
    )
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


@asynccontextmanager
async def hand_built_engine(
    engine: AsyncEngine, do_url: str, **config: Any
) -> AsyncIterator[ActionEngine]:
    """An actions engine on a DO client that does not retry; scanned by the test, not started."""
    client = DigitalOceanClient(do_url, "fake-do-token", retry_attempts=1)
    actions = ActionEngine(
        ActionStore(create_sessionmaker(engine), "test-engine"),
        OneClient(client),
        ActionsConfig(poll_interval_s=0.02, timeout=timedelta(seconds=30), lease_s=5, **config),
    )
    try:
        yield actions
    finally:
        await actions.stop()
        await client.aclose()


async def workers_done(actions: ActionEngine) -> None:
    await asyncio.wait_for(asyncio.gather(*actions.runner.workers.values()), 10)


async def run_engine_until_done(engine: AsyncEngine, do_url: str, action_id: str) -> Any:
    async with hand_built_engine(engine, do_url) as actions:
        assert await actions.runner.scan() == 1
        await workers_done(actions)
    async with engine.connect() as connection:
        return (
            (
                await connection.execute(
                    select(ServerAction.__table__).where(
                        ServerAction.__table__.c.id == uuid.UUID(action_id)
                    )
                )
            )
            .mappings()
            .one()
        )


async def test_do_down_for_three_checks_fails_the_action(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    fake_do: tuple[str, httpx.AsyncClient],
) -> None:
    url, control = fake_do
    order_id = await active_order_with_droplet(client, engine, control)
    (await control.post("/_fake/config", json={"fail_next": {"get": 3}})).raise_for_status()
    action_id = await request_power_on(client, order_id)

    row = await run_engine_until_done(engine, url, action_id)

    assert (row["status"], row["error_code"]) == ("FAILED", "DIGITALOCEAN_UNAVAILABLE")
    assert row["error_message"]
    stats = (await control.get("/_fake/stats")).json()
    assert stats["server_errors"] == 3
    assert stats["actions"]["power_on"] == 0


async def test_do_down_for_two_checks_is_ridden_out(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    fake_do: tuple[str, httpx.AsyncClient],
) -> None:
    url, control = fake_do
    order_id = await active_order_with_droplet(client, engine, control)
    (await control.post("/_fake/config", json={"fail_next": {"get": 2}})).raise_for_status()
    action_id = await request_power_on(client, order_id)

    row = await run_engine_until_done(engine, url, action_id)

    assert (row["status"], row["error_code"]) == ("COMPLETED", None)
    assert (await control.get("/_fake/stats")).json()["actions"]["power_on"] == 1


async def test_a_process_works_at_most_max_in_flight_actions_at_once(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    fake_do: tuple[str, httpx.AsyncClient],
) -> None:
    url, control = fake_do
    for _ in range(3):
        await request_power_on(client, await active_order_with_droplet(client, engine, control))
    async with hand_built_engine(engine, url, max_in_flight=2) as actions:
        assert await actions.runner.scan() == 2  # the third waits for a free place
        assert await actions.runner.scan() == 0
        await workers_done(actions)
        assert await actions.runner.scan() == 1
        await workers_done(actions)
    assert (await control.get("/_fake/stats")).json()["actions"]["power_on"] == 3


async def test_an_action_past_its_deadline_asks_do_once_more_before_giving_up(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    fake_do: tuple[str, httpx.AsyncClient],
) -> None:
    # As after a process that was down longer than ACTION_TIMEOUT: the action is
    # IN_PROGRESS with an intent and no DO action id, started an hour ago, and
    # DO shows the droplet in its end state. SPEC §7: judged on DO's word.
    url, control = fake_do
    order_id = await active_order_with_droplet(client, engine, control)
    action_id = await request_power_on(client, order_id)
    droplet_id = (
        await client.get(f"/api/v1/internal/orders/{order_id}", headers={"X-API-Key": API_KEY})
    ).json()["data"]["provisioningTask"]["dropletId"]
    (
        await control.post(f"/_fake/droplets/{droplet_id}/status", json={"status": "active"})
    ).raise_for_status()
    an_hour_ago = utcnow() - timedelta(hours=1)
    async with engine.begin() as connection:
        await connection.execute(
            update(ServerAction.__table__)
            .where(ServerAction.__table__.c.id == uuid.UUID(action_id))
            .values(status="IN_PROGRESS", started_at=an_hour_ago, intent_at=an_hour_ago)
        )

    row = await run_engine_until_done(engine, url, action_id)

    assert (row["status"], row["error_code"]) == ("COMPLETED", None)
    assert (await control.get("/_fake/stats")).json()["actions"]["power_on"] == 0
